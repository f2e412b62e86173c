"""Reward registry: in-tree providers register by decorator; third-party providers come from
the ``f5rl.rewards`` entry-point group and are imported only when asked for by name.

A package exposes a provider with, in its ``pyproject.toml``::

    [project.entry-points."f5rl.rewards"]
    my_reward = "my_package.rewards:MyReward"
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Any

from f5rl.rewards.base import RewardProvider

ENTRY_POINT_GROUP = "f5rl.rewards"
_REGISTRY: dict[str, type[RewardProvider]] = {}
_IN_TREE_LOADED = False


class UnknownProviderError(KeyError):
    """An unknown reward provider name. A ``KeyError`` (a lookup by name), but printed as its message:
    ``str(KeyError(m))`` would quote it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register(name: str):
    """Class decorator: make a provider available under ``name``."""

    def wrap(cls: type[RewardProvider]) -> type[RewardProvider]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"reward provider {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load_in_tree() -> None:
    global _IN_TREE_LOADED
    if not _IN_TREE_LOADED:
        importlib.import_module("f5rl.rewards.providers")  # light modules; models load in setup()
        _IN_TREE_LOADED = True


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of in-tree and installed third-party providers (nothing is imported for the latter)."""
    _load_in_tree()
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_provider_class(name: str) -> type[RewardProvider]:
    _load_in_tree()
    if name in _REGISTRY:
        return _REGISTRY[name]
    eps = _entry_points()
    if name in eps:
        cls = eps[name].load()
        if not (isinstance(cls, type) and issubclass(cls, RewardProvider)):
            raise TypeError(f"entry point {name!r} ({eps[name].value}) is not a f5rl RewardProvider subclass")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    names = available()
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownProviderError(f"unknown reward provider {name!r}.{hint} Available: {', '.join(names)}")


def build_provider(name: str, config: dict[str, Any] | None = None) -> RewardProvider:
    """Instantiate a provider; unknown config keys fail with the provider's name."""
    cls = get_provider_class(name)
    try:
        return cls(**(config or {}))
    except TypeError as err:
        raise TypeError(f"reward provider {name!r}: bad config {dict(config or {})}: {err}") from err


def parse_provider_config(items: list[str], flag: str) -> dict[str, Any]:
    """A provider config from a command line's ``KEY=VALUE`` items (``flag`` names them in errors); values
    are read as YAML, as Hydra reads an override: ``10`` is a number, ``[0, 5]`` a list, ``null`` None."""
    import yaml

    config: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {item!r}: give KEY=VALUE (e.g. {flag} window_s=10)")
        key = key.strip()
        if key in config:
            raise ValueError(f"{flag} gives {key!r} twice")
        config[key] = yaml.safe_load(value) if value.strip() else ""
    return config


def check_provider_config(name: str, config: dict[str, Any], flag: str) -> None:
    """Build (not set up: no model loads) provider ``name`` with ``config``; an unknown name, a key it does
    not take or a value it refuses fails here in one line that starts with ``flag``, the command line's flag
    that names the provider (``--asr``), or its ``_config`` flag (``--asr_config``) when a config was given."""
    flag = f"{flag}_config" if config else flag
    try:
        build_provider(name, config)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{flag}: {err}") from None

"""Compose Hydra configs shipped inside the package and validate them against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type, or a value is invalid."""


def config_dir() -> Path:
    """The folder of shipped Hydra configs (inside the installed package)."""
    return Path(__file__).resolve().parents[1] / "configs"


def available_configs() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def compose(name: str, overrides: list[str] | None = None):
    """Compose a shipped config with Hydra overrides (no working-directory change)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if name not in available_configs():
        raise ConfigError(f"no config named {name!r}; available: {', '.join(available_configs())}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name=name, overrides=list(overrides or []))


def validate(cfg: Any, schema: type) -> Any:
    """Merge a DictConfig into the dataclass ``schema``; unknown keys and wrong types raise
    :class:`ConfigError` naming the key. Returns the schema object after its ``check()``."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg = {k: v for k, v in cfg.items() if k != "hydra"}
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, cfg)
    except ConfigKeyError as err:
        raise ConfigError(f"unknown config key {err.full_key!r}: check its spelling ({err.msg})") from None
    except ValidationError as err:
        raise ConfigError(f"config key {err.full_key!r} has the wrong type: {err.msg}") from None
    obj = OmegaConf.to_object(merged)
    try:
        obj.check()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return obj


def validate_or_exit(cfg: Any, schema: type, *checks) -> Any:
    """:func:`validate` for command lines: a bad config prints one line and exits with status 2.
    ``checks`` are further cheap checks of the validated config by higher layers (e.g. that every
    reward provider accepts its ``config``), run before any model loads."""
    import sys

    try:
        out = validate(cfg, schema)
        for check in checks:
            check(out)
        return out
    except (ConfigError, ValueError, TypeError, KeyError, FileNotFoundError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"config error: {msg}", file=sys.stderr)
        sys.exit(2)


def precheck_command_line(default_name: str, argv: list[str] | None = None) -> None:
    """Compose the config a Hydra entry point is about to compose, from its command line: a
    misspelt key or a bad override prints one line (``config error: ...``) and exits with status 2,
    where Hydra itself would print a paragraph and exit 1. A command line with Hydra's own flags
    (``--multirun``, ``--cfg``, ...) is left to Hydra."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    name, overrides = default_name, []
    while args:
        a = args.pop(0)
        if a in ("-cn", "--config-name") and args:
            name = args.pop(0)
        elif a.startswith(("-cn=", "--config-name=")):
            name = a.split("=", 1)[1]
        elif a.startswith("-"):
            return  # Hydra's flags: its own handling
        elif not a.lstrip("+~").startswith("hydra."):
            overrides.append(a)
    try:
        compose(name, overrides)
    except Exception as err:  # Hydra's override and composition errors
        cause = err.__cause__ or err.__context__
        detail = str(cause).splitlines()[0] if cause is not None else ""
        head = str(err).splitlines()[0]
        hint = ""
        if "not in struct" in detail:
            key = head.split("'")[1] if "'" in head else "the key"
            hint = f": {key} is not a key of {name} (misspelt? a new key needs +{key}=...)"
        print(f"config error: {head}{hint or (' (' + detail + ')' if detail else '')}", file=sys.stderr)
        sys.exit(2)


def to_yaml(obj: Any) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(obj))


def write_config(cfg: Any, path: Path) -> None:
    """The resolved config as YAML, written atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_yaml(cfg))
    tmp.replace(path)


def flat_config(cfg: Any) -> dict:
    """``{"a.b.c": value}`` of a config dataclass (what loggers record as hyper-parameters)."""
    from dataclasses import asdict

    out = {}

    def walk(prefix: str, d: dict) -> None:
        for key, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{key}.", v)
            else:
                out[f"{prefix}{key}"] = v

    walk("", asdict(cfg))
    return out

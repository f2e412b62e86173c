"""Every ``pip install 'f5rl[X]'`` the code tells a user to run names an extra that exists."""

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_the_recipes_extras_exist():
    # pip install -e ".[rl]" and ".[trackio]" (F5-TTS RL README), ".[rewards]" (ours)
    assert {"rl", "trackio", "rewards", "whisper-base"} <= extras()


def test_every_extra_named_in_an_error_message_exists():
    named = {}
    for path in (ROOT / "src" / "f5rl").rglob("*.py"):
        for extra in re.findall(r"f5rl\[([\w,-]+)\]", path.read_text()):
            for e in extra.split(","):
                named.setdefault(e, path.name)
    # require(module, extra) builds the message from its second argument
    for path in (ROOT / "src" / "f5rl").rglob("*.py"):
        for extra in re.findall(r"require\(\"[\w.]+\", \"([\w-]+)\"\)", path.read_text()):
            named.setdefault(extra, path.name)
    assert "whisper-base" in named and "speaker" in named, named  # the scan finds both forms
    missing = {e: f for e, f in named.items() if e not in extras() and e != "extra"}
    assert not missing, f"messages name extras that pyproject.toml lacks: {missing}"

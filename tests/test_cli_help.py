"""Every command's flags have help text showing their default, and ``python -m f5rl`` lists the commands."""

import argparse
import importlib
import subprocess
import sys

import pytest

from f5rl.__main__ import COMMANDS


class _Parsed(Exception):
    def __init__(self, parser):
        self.parser = parser


def parser_of(module: str) -> argparse.ArgumentParser:
    """The parser ``module.main`` builds (captured when it starts parsing; nothing runs)."""
    mod = importlib.import_module(module)

    def capture(self, *a, **k):
        raise _Parsed(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        mod.main([])
    except _Parsed as got:
        return got.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{module}.main never parsed its arguments")


ARGPARSE_COMMANDS = [m for m, hydra in COMMANDS.values() if not hydra]


@pytest.mark.parametrize("module", ARGPARSE_COMMANDS)
def test_every_flag_has_help_and_shows_its_default(module):
    ap = parser_of(module)
    bare = [a.option_strings or [a.dest] for a in ap._actions
            if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not bare, f"{module}: flags without help: {bare}"
    assert "(default:" in ap.format_help(), f"{module}: --help does not show defaults"


def test_python_m_f5rl_lists_every_command_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "f5rl"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("  ")]
    assert len(lines) == len(COMMANDS) >= 18
    for name, (module, _) in COMMANDS.items():
        line = next(ln for ln in lines if ln.split()[0] == name)
        assert f"python -m {module}" in proc.stdout and len(line.split()) > 3, line

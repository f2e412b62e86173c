"""Command-line error handling shared by the entry points: bad input is one line and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# what a user's input can raise: a missing file, a bad value, a missing field, a corrupt checkpoint
BAD_INPUT = (FileNotFoundError, ValueError, KeyError, RuntimeError)


@contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """Turn bad-input exceptions into ``prog: error: <message>`` on stderr and exit status 2. The
    traceback is kept with ``F5RL_DEBUG=1`` (or ``HYDRA_FULL_ERROR=1``), for bug reports."""
    try:
        yield
    except BAD_INPUT as err:
        if os.environ.get("F5RL_DEBUG") == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{prog}: error: {msg}", file=sys.stderr)
        sys.exit(2)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every flag's help ends with its default; the description keeps its line breaks."""


def command_parser(doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of an f5rl command: its description is the module docstring's first
    line, and ``--help`` shows each flag's default."""
    return argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None,
                                   formatter_class=_HelpFormatter)

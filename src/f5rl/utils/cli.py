"""Command-line error handling shared by the entry points: bad input is one line and exit status 2."""

from __future__ import annotations

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

"""Thread budgets of the processes f5rl starts."""

from __future__ import annotations


def thread_env(threads: int) -> dict[str, str]:
    """Environment that gives a child process ``threads`` intra-op threads: torch reads ``OMP_NUM_THREADS``
    (and MKL its own variable) once, when it starts."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

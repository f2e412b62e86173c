"""Synthesis on this thread, scoring on a worker thread: generation that keeps both busy.

Scoring a sample (Whisper, a speaker encoder) costs a fraction of synthesising it on a CPU, and on
a GPU machine the scorers run on the CPU while the GPU synthesises. Running them one after the
other also costs more than the sum of its parts on a CPU: CTranslate2 (faster-whisper) runs its
OpenMP work on worker threads of its own, and once their idle team exists libgomp counts more
threads than cores and stops letting torch's threads spin between operations, which made every
later synthesis about 2x slower here. Overlapping the two stages avoids both costs. Synthesis keeps
every core and the scorers get half of them beside it: scoring (0.7 s of Whisper tiny.en per clip)
fills the gaps of synthesis (2.7 s per clip of the shipped demo base at 16 NFE on 2 cores), so
halving synthesis's threads to give the scorers cores of their own was the slower split here
(4.85 s against 4.11 s per scored sample, ``prefs.generate`` on 12 held-out rows).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def share_cores(device: str | torch.device) -> Iterator[int]:
    """Share the CPU between synthesis and scoring: yields the thread count for the scorers (half the
    cores, at least one, beside synthesis's intra-op threads); with GPU synthesis the CPU is theirs.
    torch's thread count is restored afterwards (a scorer may change it)."""
    total = torch.get_num_threads()
    try:
        yield total if not str(device).startswith("cpu") else max(1, total // 2)
    finally:
        torch.set_num_threads(total)


def thread_config(provider: str, threads: int) -> dict[str, Any]:
    """``{"cpu_threads": threads}`` for reward providers that take it (the Whisper ones), else ``{}``."""
    from f5rl.rewards.registry import get_provider_class

    params = inspect.signature(get_provider_class(provider).__init__).parameters
    return {"cpu_threads": threads} if "cpu_threads" in params else {}


def run_overlapped(items: Iterable[Any], produce: Callable[[Any], Any], consume: Callable[[Any, Any], Any],
                   depth: int = 2) -> list[Any]:
    """``produce(item)`` on this thread and ``consume(item, produced)`` on one worker thread, in item
    order, at most ``depth`` consumptions waiting; returns what ``consume`` returned. An error stops
    the run and is raised here: after an error in ``produce`` what was already produced is still
    consumed (finished work is kept); after an error in ``consume`` the waiting items are dropped."""
    results: list[Any] = []
    pool = ThreadPoolExecutor(1, thread_name_prefix="f5rl-score")
    pending: deque = deque()
    consumer_failed = False

    def collect() -> None:
        nonlocal consumer_failed
        try:
            results.append(pending.popleft().result())
        except BaseException:
            consumer_failed = True
            raise

    try:
        for item in items:
            pending.append(pool.submit(consume, item, produce(item)))
            while len(pending) > depth:
                collect()
        while pending:
            collect()
    finally:
        pool.shutdown(wait=True, cancel_futures=consumer_failed)
    return results

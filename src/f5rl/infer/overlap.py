"""Synthesis on this thread, scoring on a worker thread: generation that keeps both busy.

Scoring a sample (Whisper, a speaker encoder) takes about as long as synthesising it on a CPU,
and on a GPU machine the scorers run on the CPU while the GPU synthesises. Running them one after
the other also costs more than the sum of its parts on a CPU: CTranslate2 (faster-whisper) runs
its OpenMP work on worker threads of its own, and once their idle team exists libgomp counts more
threads than cores and stops letting torch's threads spin between operations, which made every
later synthesis about 2x slower here (0.55 s → 1.1 s per sample, small torch ops 4x). Overlapping
the two stages, each with its own share of the cores, avoids both costs: 1.7 s → 0.95 s per
scored sample on 2 cores.
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
def split_cores(device: str | torch.device) -> Iterator[int]:
    """Share the CPU between synthesis (torch's intra-op threads, for the duration) and scoring
    (the thread count yielded, for the scorers). With GPU synthesis the CPU is the scorers'."""
    total = torch.get_num_threads()
    if not str(device).startswith("cpu"):
        yield total
        return
    synth = max(1, total // 2)
    torch.set_num_threads(synth)
    try:
        yield max(1, total - synth)
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

"""Synthesis/scoring overlap: order, errors, thread shares."""

import threading

import pytest
import torch

from f5rl.infer.overlap import run_overlapped, share_cores, thread_config


def test_consume_runs_on_one_worker_thread_in_item_order():
    main, seen = threading.get_ident(), []

    def produce(i):
        assert threading.get_ident() == main
        return i * i

    def consume(i, sq):
        seen.append((i, threading.get_ident()))
        return sq + 1

    out = run_overlapped(range(7), produce, consume, depth=2)
    assert out == [i * i + 1 for i in range(7)]
    assert [i for i, _ in seen] == list(range(7))
    assert len({t for _, t in seen}) == 1 and seen[0][1] != main


@pytest.mark.parametrize("stage", ["produce", "consume"])
def test_an_error_in_either_stage_stops_the_run_and_is_raised(stage):
    consumed, produced = [], []

    def produce(i):
        produced.append(i)
        if stage == "produce" and i == 3:
            raise RuntimeError("bad row 3")
        return i

    def consume(i, _):
        if stage == "consume" and i == 3:
            raise RuntimeError("bad row 3")
        consumed.append(i)

    with pytest.raises(RuntimeError, match="bad row 3"):
        run_overlapped(range(50), produce, consume, depth=2)
    # produce error: what was produced before it is still consumed (finished work kept); consume error:
    # nothing after the failed item is consumed, and production stopped within the queue depth
    assert consumed == [0, 1, 2] and max(produced) <= 3 + 2 + 1


def test_cores_are_shared_on_cpu_and_restored():
    before = torch.get_num_threads()
    with share_cores("cpu") as scorer_threads:
        # synthesis keeps every core; the scorers get half of them beside it
        assert torch.get_num_threads() == before and scorer_threads == max(1, before // 2)
        torch.set_num_threads(1)  # e.g. a scorer that sets torch's threads
    assert torch.get_num_threads() == before
    with share_cores("cuda:0") as scorer_threads:  # GPU synthesis: the CPU is the scorers'
        assert torch.get_num_threads() == before and scorer_threads == before
    assert thread_config("whisper_asr", 3) == {"cpu_threads": 3}
    assert thread_config("resemblyzer_sim", 3) == {}

import pytest

from f5rl.data.sampler import DynamicBatchSampler

LENS = [50, 10, 40, 30, 20, 60, 70, 15, 25, 35]


def test_frame_batches_respect_limits_and_cover_everything():
    s = DynamicBatchSampler(LENS, batch_size=100, batch_type="frame", max_samples=3, seed=0)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(LENS)))
    assert all(sum(LENS[i] for i in b) <= 100 and len(b) <= 3 for b in batches)


def test_items_longer_than_the_budget_are_dropped_or_rejected():
    s = DynamicBatchSampler([10, 500, 20], batch_size=100)
    assert sorted(i for b in s for i in b) == [0, 2]
    with pytest.raises(ValueError, match="batch_size_per_gpu"):
        DynamicBatchSampler([500, 600], batch_size=100)


def test_epochs_are_deterministic_and_reshuffled():
    s = DynamicBatchSampler(LENS, batch_size=3, batch_type="sample", seed=1)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(0)
    assert list(s) == e0
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != e0 and sorted(map(sorted, e1)) != [] and len(e1) == 4


def test_skip_resumes_mid_epoch():
    s = DynamicBatchSampler(LENS, batch_size=2, batch_type="sample", seed=3)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip_batches=3)
    assert list(s) == full[3:]
    assert list(s) == full  # the skip applies once


def test_repeat_and_mini_repeat_layout():
    s = DynamicBatchSampler(LENS[:4], batch_size=2, batch_type="sample", shuffle=False, repeat_count=2,
                            mini_repeat_count=3)
    assert list(s) == [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2
    assert len(s) == 4


def test_replicas_get_disjoint_equal_shares():
    shares = [list(DynamicBatchSampler(LENS, batch_size=2, batch_type="sample", seed=0, num_replicas=2, rank=r))
              for r in (0, 1)]
    assert len(shares[0]) == len(shares[1])
    flat = [i for share in shares for b in share for i in b]
    assert len(flat) == len(set(flat))

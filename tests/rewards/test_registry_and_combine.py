import math
import subprocess
import sys
import textwrap

import pytest
import torch

from f5rl.rewards import RewardBatch, RewardOutput, RewardProvider, build_provider
from f5rl.rewards.combine import (
    RewardSet,
    group_normalized_sum,
    harmonic,
    normalized_sum,
    rank_shaping,
    weighted_sum,
)

NAN = math.nan


def test_import_is_light():
    code = ("import sys, f5rl.rewards as r; r.available(); "
            "bad = [m for m in ('funasr', 'faster_whisper', 'resemblyzer', 'speechmos', 'ctranslate2') "
            "if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(KeyError) as err:
        build_provider("whisper_asrr")
    msg = str(err.value)
    assert "Did you mean whisper_asr" in msg and "resemblyzer_sim" in msg and "funasr_wer" in msg


def test_bad_provider_config_names_the_provider():
    with pytest.raises(TypeError, match="duration"):
        build_provider("duration", {"no_such_option": 1})


def test_entry_point_provider_found_by_name_from_config(tmp_path):
    """A provider declared only through an installed entry point (a tiny dist built here)."""
    pkg = tmp_path / "src" / "shout_reward"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import torch
        from f5rl.rewards import RewardOutput, RewardProvider

        class ShoutReward(RewardProvider):
            components = ("peak",)

            def compute(self, batch):
                peak = torch.stack([a.abs().max() for a in batch.audio])
                return RewardOutput(peak, {"peak": peak})
    """))
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "shout-reward"
        version = "0.0.1"
        [project.entry-points."f5rl.rewards"]
        shout = "shout_reward:ShoutReward"
        [tool.setuptools.packages.find]
        where = ["src"]
    """))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    code = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(target)!r})
        from f5rl.rewards import available, RewardBatch
        from f5rl.rewards.combine import RewardSet
        assert "shout" in available(), available()
        rs = RewardSet.from_config([{{"name": "shout", "weight": 2.0}}])
        out = rs(RewardBatch([torch.tensor([0.1, -0.5]), torch.tensor([0.25])], ["a", "b"]))
        print(out.reward.tolist(), out.metrics["reward/shout/peak"].tolist())
        assert out.reward.tolist() == [1.0, 0.5]
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_combiners_by_hand():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.5, NAN, 0.0]])  # 2 providers x 3 samples
    w = torch.tensor([1.0, 3.0])
    out = weighted_sum(s, w)
    assert out[0].item() == pytest.approx(2.5) and math.isnan(out[1].item()) and out[2].item() == pytest.approx(3.0)
    # normalized: valid samples 0 and 2; provider 0 -> (-1, +1), provider 1 -> (+1, -1)
    n = normalized_sum(s, w)
    assert n[0].item() == pytest.approx(-1 + 3, abs=1e-4) and n[2].item() == pytest.approx(1 - 3, abs=1e-4)
    assert math.isnan(n[1].item())
    r = rank_shaping(torch.tensor([[3.0, 1.0, 2.0, 2.0]]), torch.tensor([1.0]))
    assert r.tolist() == pytest.approx([1.0, 0.0, 0.5, 0.5])
    # harmonic: CER 0 -> U_cer 1; NLL = tau ln 2 -> U_nll 0.5; R = 1 / (0.5/1 + 0.5/0.5) = 2/3
    h = harmonic(torch.tensor([0.0]), torch.tensor([math.log(2.0)]), beta_c=10, tau_n=1, lambda_c=0.5, lambda_n=0.5)
    assert h.item() == pytest.approx(2 / 3, rel=1e-5)


def test_group_normalized_sum_standardises_each_provider_within_each_group():
    """Group A (samples 0-2): provider 0 scores 1, 2, 3 -> z -1.2247, 0, +1.2247; provider 1 scores 0.90,
    0.91, 0.92 (a spread 100x smaller) -> the same z. Group B (3-4): provider 0 ties (z 0), provider 1
    0.5, 0.7 -> -1, +1. Over the whole batch (normalized_sum) provider 1's within-group spread would be
    drowned by the gap between the groups (0.91 against 0.6)."""
    s = torch.tensor([[1.0, 2.0, 3.0, 5.0, 5.0], [0.90, 0.91, 0.92, 0.5, 0.7]])
    w = torch.tensor([3.0, 1.0])
    g = torch.tensor([0, 0, 0, 1, 1])
    out = group_normalized_sum(s, w, g)
    z = math.sqrt(1.5)  # (x - mean) / population std of (1, 2, 3)
    assert out.tolist() == pytest.approx([-4 * z, 0.0, 4 * z, -1.0, 1.0], abs=1e-3)
    # provider 1 moves the reward as much as provider 0 per unit of weight, inside a group
    flat = normalized_sum(s, w)
    assert abs(flat[2] - flat[0]) > 0 and abs(out[2] - out[0]) / 4 == pytest.approx(2 * z, abs=1e-3)
    # NaN (an unscorable sample) stays NaN and is left out of its group's statistics
    s2 = s.clone()
    s2[1, 1] = NAN
    out2 = group_normalized_sum(s2, w, g)
    assert math.isnan(out2[1].item())
    assert out2[0].item() == pytest.approx(3 * -1.0 + -1.0, abs=1e-3)  # group A's valid samples: 0 and 2
    # one group spanning the batch equals normalized_sum
    one = group_normalized_sum(s, w, torch.zeros(5, dtype=torch.long))
    assert one.tolist() == pytest.approx(normalized_sum(s, w).tolist(), abs=1e-5)


def test_reward_set_group_mode_uses_the_groups_it_is_given():
    rs = RewardSet.from_config([{"name": "duration"}], mode="group_normalized_sum")
    out = {"duration": RewardOutput(torch.tensor([1.0, 3.0, 10.0, 30.0]), {})}
    grouped = rs.combine(out, groups=torch.tensor([0, 0, 1, 1])).reward
    assert grouped.tolist() == pytest.approx([-1.0, 1.0, -1.0, 1.0], abs=1e-4)
    whole = rs.combine(out).reward  # no groups: the batch is one group
    assert whole.tolist() == pytest.approx(normalized_sum(torch.tensor([[1.0, 3.0, 10.0, 30.0]]),
                                                          torch.tensor([1.0])).tolist(), abs=1e-5)
    # held-out validation compares batches: there the plain weighted sum, not a mean-zero z-score
    assert rs.comparable(out).tolist() == pytest.approx([1.0, 3.0, 10.0, 30.0])
    for mode in ("normalized_sum", "rank_shaping"):
        assert RewardSet.from_config([{"name": "duration", "weight": 2.0}], mode=mode).comparable(out).tolist() \
            == pytest.approx([2.0, 6.0, 20.0, 60.0])
    assert RewardSet.from_config([{"name": "duration", "weight": 2.0}]).comparable(out).tolist() \
        == pytest.approx([2.0, 6.0, 20.0, 60.0])


class _Fixed(RewardProvider):
    """Scores = the per-sample value in metadata["v"]; raises on 'boom'."""

    components = ("v",)

    def compute(self, batch):
        if any(t == "boom" for t in batch.texts):
            raise RuntimeError("boom text")
        v = torch.tensor([m["v"] for m in batch.metadata], dtype=torch.float32)
        return RewardOutput(v, {"v": v})


def _batch(texts, values):
    return RewardBatch([torch.zeros(240) + i for i in range(len(texts))], texts, metadata=[{"v": v} for v in values])


def test_one_failing_sample_is_nan_not_the_batch(caplog):
    p = _Fixed()
    out = p(_batch(["ok", "boom", "fine"], [1.0, 2.0, 3.0]))
    assert out.scores[0].item() == 1.0 and out.scores[2].item() == 3.0 and math.isnan(out.scores[1].item())
    assert "boom text" in out.reasons[1] and "not scored" in caplog.text


def test_cache_by_audio_hash():
    calls = []

    class Counting(_Fixed):
        def compute(self, batch):
            calls.append(len(batch))
            return super().compute(batch)

    p = Counting(cache_size=8)
    p(_batch(["a", "b"], [1.0, 2.0]))
    out = p(_batch(["a", "b", "c"], [1.0, 2.0, 5.0]))
    assert calls == [2, 1] and out.scores.tolist() == [1.0, 2.0, 5.0]


def test_reward_set_metrics_and_nan_propagation():
    rs = RewardSet.from_config([{"name": "duration", "weight": 1.0},
                                {"name": "mel_energy", "weight": 2.0, "config": {"target": -4.0}}])
    mel = [torch.full((10, 100), -4.0), torch.full((10, 100), -5.0)]
    batch = RewardBatch([torch.zeros(24000), torch.zeros(12000)], ["a" * 14, "b" * 14], mel=mel)
    out = rs(batch)
    # duration: 1 s vs 14/14 s -> 0; 0.5 s -> -ln 2. energy: 0, -1 (x2)
    assert out.reward.tolist() == pytest.approx([0.0, -math.log(2) - 2.0], abs=1e-5)
    assert set(out.metrics) >= {"reward/duration", "reward/duration/duration", "reward/mel_energy/energy"}
    with pytest.raises(ValueError, match="mode"):
        RewardSet.from_config([{"name": "duration"}], mode="max")
    with pytest.raises(ValueError, match="empty"):
        RewardSet.from_config([])


def test_reward_batch_validates_lengths():
    with pytest.raises(ValueError, match="texts"):
        RewardBatch([torch.zeros(10)], ["a", "b"])

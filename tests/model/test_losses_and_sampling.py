"""Hand-computed checks of the loss and the sampler pieces (DESIGN §6)."""

import math

import pytest
import torch

from f5rl.model.sampling import (
    cfg_combine,
    epss_timesteps,
    estimate_duration,
    lens_to_mask,
    span_mask,
    sway,
    time_grid,
)
from f5rl.rl.gaussian_nll import gaussian_nll_elementwise
from f5rl.rl.masked import masked_mean


def test_gaussian_nll_two_elements_by_hand():
    mu = torch.tensor([[[1.0, 0.0]]])
    u = torch.tensor([[[0.0, 2.0]]])
    ln_sig = torch.tensor([[[0.0, math.log(2.0)]]])
    t = torch.tensor([0.5])
    # e1 = 1/(2+1e-6) + 0 + 0.25*0 ; e2 = 4/(8+1e-6) + ln2 + 0.25*ln2
    e1 = 1 / (2 + 1e-6)
    e2 = 4 / (8 + 1e-6) + 1.25 * math.log(2)
    out = gaussian_nll_elementwise(mu, ln_sig, u, t, t_weight=1.0)
    assert torch.allclose(out, torch.tensor([[[e1, e2]]]), atol=1e-6)
    assert masked_mean(out, torch.tensor([[True]]).unsqueeze(-1)).item() == pytest.approx((e1 + e2) / 2, abs=1e-6)
    # the t² term scales with its weight
    no_t = gaussian_nll_elementwise(mu, ln_sig, u, t, t_weight=0.0)
    assert no_t[0, 0, 1].item() == pytest.approx(4 / (8 + 1e-6) + math.log(2), abs=1e-6)


def test_masked_mean_ignores_unmasked_frames():
    x = torch.arange(12.0).view(1, 3, 4)
    assert masked_mean(x, torch.tensor([[False, True, False]]).unsqueeze(-1)).item() == pytest.approx(5.5)


def test_cfg_combination():
    assert cfg_combine(torch.tensor(1.0), torch.tensor(3.0), 2.0).item() == -3.0  # 1 + 2·(1−3)
    assert cfg_combine(torch.tensor(1.0), torch.tensor(3.0), 0.0).item() == 1.0


def test_sway_by_hand():
    t = torch.tensor([0.0, 0.5, 1.0])
    out = sway(t, -1.0)
    assert out[0].item() == 0.0 and out[2].item() == pytest.approx(1.0)
    assert out[1].item() == pytest.approx(0.5 - (math.cos(math.pi / 4) - 0.5), abs=1e-7)
    assert torch.equal(sway(t, None), t)


def test_epss_grids():
    assert epss_timesteps(7).mul(32).tolist() == [0, 2, 4, 6, 8, 16, 24, 32]
    assert epss_timesteps(5).mul(32).tolist() == [0, 2, 4, 8, 16, 32]
    assert epss_timesteps(32) is None
    assert torch.allclose(time_grid(32, None), torch.linspace(0, 1, 33))
    assert torch.allclose(time_grid(16, None, use_epss=False), torch.linspace(0, 1, 17))
    assert time_grid(16, None)[1].item() == pytest.approx(1 / 32)
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)


def test_span_mask_by_hand_and_within_lengths():
    lens = torch.tensor([10, 6])
    m = span_mask(lens, torch.tensor([0.5, 1.0]), torch.tensor([0.5, 0.3]), 10)
    assert m[0].nonzero().view(-1).tolist() == [2, 3, 4, 5, 6]  # span 5 from ⌊5·0.5⌋ = 2
    assert m[1].nonzero().view(-1).tolist() == [0, 1, 2, 3, 4, 5]
    g = torch.Generator().manual_seed(0)
    lens = torch.randint(5, 50, (64,), generator=g)
    m = span_mask(lens, torch.rand(64, generator=g) * 0.3 + 0.7, torch.rand(64, generator=g), 50)
    assert not (m & ~lens_to_mask(lens, 50)).any()
    assert (m.sum(1) == (lens * 0 + m.sum(1))).all() and (m.sum(1) >= (0.7 * lens).long()).all()


def test_duration_heuristic():
    assert estimate_duration(100, "abcd", "abcdefgh") == 300
    assert estimate_duration(100, "abcd", "abcdefgh", speed=2.0) == 200
    assert estimate_duration(100, "é", "ab") == 200  # F5 counts UTF-8 bytes: "é" is 2
    words = lambda t: len(t.split())  # noqa: E731 - a phoneme model passes its token count instead
    assert estimate_duration(100, "one two", "three four five six", length=words) == 300
    with pytest.raises(ValueError, match="speed"):
        estimate_duration(100, "a", "b", speed=0)

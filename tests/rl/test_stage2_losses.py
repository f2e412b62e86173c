"""Hand-computed and Monte-Carlo checks of the stage-2 loss pieces (DESIGN §7)."""

import math
import random

import pytest
import torch

from f5rl.rl.gaussian import cfg_gaussian, f5r_density, f5r_kl, gaussian_kl, gaussian_log_prob
from f5rl.rl.grpo import choose_train_steps, f5r_policy_loss, group_advantages, ppo_clip_loss


def test_f5r_density_by_hand():
    # f = 1, mu = 0, sigma = 2: exp(-1/8) / 2
    p = f5r_density(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(math.log(2.0)))
    assert p.item() == pytest.approx(math.exp(-1 / 8) / 2, rel=1e-6)


def test_cfg_gaussian_by_hand_and_by_sampling():
    mu_c, mu_u = torch.tensor(1.0), torch.tensor(3.0)
    ls_c, ls_u = torch.tensor(math.log(0.5)), torch.tensor(math.log(2.0))
    mu, ls = cfg_gaussian(mu_c, ls_c, mu_u, ls_u, 2.0)
    # mu = 3·1 − 2·3 = −3 ; var = 9·0.25 + 4·4 = 18.25
    assert mu.item() == pytest.approx(-3.0) and torch.exp(2 * ls).item() == pytest.approx(18.25, rel=1e-6)
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.randn(400_000, generator=g), torch.randn(400_000, generator=g)
    f = 3 * (mu_c + 0.5 * e1) - 2 * (mu_u + 2.0 * e2)  # F5R's sampling formula
    assert f.mean().item() == pytest.approx(-3.0, abs=0.03) and f.var().item() == pytest.approx(18.25, rel=0.01)
    # log-prob of the CFG Gaussian equals the normal log density
    x = torch.tensor(0.5)
    expected = -0.5 * (x + 3) ** 2 / 18.25 - 0.5 * math.log(2 * math.pi * 18.25)
    assert gaussian_log_prob(x, mu, ls).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gaussian_kl_closed_form_vs_monte_carlo():
    mu_p, ls_p, mu_q, ls_q = torch.tensor(0.3), torch.tensor(-0.2), torch.tensor(-0.1), torch.tensor(0.4)
    closed = gaussian_kl(mu_p, ls_p, mu_q, ls_q).item()
    x = mu_p + torch.exp(ls_p) * torch.randn(1_000_000, generator=torch.Generator().manual_seed(1))
    mc = (gaussian_log_prob(x, mu_p, ls_p) - gaussian_log_prob(x, mu_q, ls_q)).mean().item()
    assert closed == pytest.approx(mc, abs=3e-3)
    assert gaussian_kl(mu_p, ls_p, mu_p, ls_p).item() == pytest.approx(0.0, abs=1e-7)
    # F5R's KL is the closed form plus 1/2
    assert f5r_kl(mu_p, ls_p, mu_q, ls_q).item() == pytest.approx(closed + 0.5, rel=1e-6)


def test_group_advantages_by_hand():
    r = torch.tensor([1.0, 3.0, 2.0, 2.0, 5.0, float("nan"), 7.0])
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    out = group_advantages(r, ids, eps=1e-4)
    # group 0: mean 2, std 1 -> -1/(1+1e-4), +1/(1+1e-4); group 1: std 0 -> 0; group 2: one valid -> 0
    assert out.adv[:2].tolist() == pytest.approx([-1 / 1.0001, 1 / 1.0001])
    assert out.adv[2:].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert out.valid.tolist() == [True] * 5 + [False, True]
    assert out.zero_std_ratio.item() == pytest.approx(3 / 4)  # groups 1, 2 and 3 carry no signal
    clipped = group_advantages(torch.tensor([0.0, 0.0, 0.0, 10.0]), torch.zeros(4, dtype=torch.long), clip=1.0)
    assert clipped.adv.max().item() == 1.0 and clipped.adv.min().item() == pytest.approx(-1 / math.sqrt(3), rel=1e-3)


def test_group_advantages_without_std_scaling_and_with_a_minimum_spread():
    """Dr. GRPO (``norm="none"``): A = r − mean, so a group whose rewards differ by a little gets small
    advantages instead of ±1; ``min_spread`` (DMOSpeech 2's skip of groups with a reward range below
    0.01) zeroes groups whose range of valid rewards is below it."""
    r = torch.tensor([1.0, 3.0, 2.0, 2.004, 5.0, float("nan"), 7.0, 0.0, 0.3, 0.6])
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 4, 4])
    plain = group_advantages(r, ids, norm="none")
    # group 0: mean 2 -> -1, +1; group 1: mean 2.002 -> -0.002, +0.002; group 4: mean 0.3 -> -0.3, 0, 0.3
    assert plain.adv.tolist() == pytest.approx([-1.0, 1.0, -0.002, 0.002, 0.0, 0.0, 0.0, -0.3, 0.0, 0.3], abs=1e-6)
    assert plain.low_spread_ratio.item() == 0.0
    scaled = group_advantages(r, ids, eps=1e-4)  # GRPO: group 1's 0.004 difference becomes ±1
    assert scaled.adv[2:4].tolist() == pytest.approx([-0.002 / 0.0021, 0.002 / 0.0021], rel=1e-3)
    skipped = group_advantages(r, ids, eps=1e-4, min_spread=0.01)
    assert skipped.adv[2:4].tolist() == [0.0, 0.0]  # range 0.004 < 0.01: no signal
    assert skipped.adv[:2].tolist() == pytest.approx([-1 / 1.0001, 1 / 1.0001])  # range 2: kept
    std4 = 0.06 ** 0.5  # group 4: population variance (0.09 + 0 + 0.09) / 3
    assert skipped.adv[7:].tolist() == pytest.approx([-0.3 / (std4 + 1e-4), 0.0, 0.3 / (std4 + 1e-4)], rel=1e-5)
    # groups 1 (range 0.004), 2 (one valid member) and 3 (one member) have less than the minimum range
    assert skipped.low_spread_ratio.item() == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="norm"):
        group_advantages(r, ids, norm="max")


def test_ppo_clip_by_hand():
    logp = torch.tensor([[math.log(1.5), math.log(0.5)]], requires_grad=True)
    old = torch.zeros(1, 2)
    adv = torch.tensor([1.0, -1.0])
    out = ppo_clip_loss(logp, old, adv, clip_eps=0.2)
    # sample 0: min(1.5·1, 1.2·1) = 1.2 ; sample 1: min(0.5·−1, 0.8·−1) = −0.8 ; loss = −(1.2 − 0.8)/2
    assert out.loss.item() == pytest.approx(-0.2)
    assert out.metrics["stats/clip_frac"].item() == 1.0
    out.loss.backward()
    assert logp.grad.abs().sum().item() == 0.0  # both clipped: no gradient
    on_policy = ppo_clip_loss(torch.zeros(1, 2, requires_grad=True), old, adv, 0.2)
    assert on_policy.metrics["stats/approx_kl"].item() == 0.0


def test_f5r_policy_loss_by_hand():
    f = torch.zeros(1, 1, 2, 1)
    mu = torch.zeros(1, 1, 2, 1)
    ls = torch.zeros(1, 1, 2, 1)
    mask = torch.tensor([[True, False]])
    out = f5r_policy_loss(f, mu, ls, torch.tensor([2.0]), mask, kl=torch.full((1, 1, 2, 1), 3.0), kl_weight=0.5)
    # p = exp(0)/1 = 1 on the one target frame -> pro_adv = 2 ; loss = −2 + 0.5·3
    assert out.loss.item() == pytest.approx(-0.5)
    assert out.metrics["loss/pro_adv"].item() == 2.0 and out.metrics["loss/kl"].item() == 3.0


def test_choose_train_steps():
    rng = random.Random(0)
    assert choose_train_steps(10, "window", 3, rng) == [0, 1, 2]
    assert choose_train_steps(10, "all", 3, rng) == list(range(10))
    picked = choose_train_steps(10, "random", 4, rng)
    assert len(picked) == 4 and len(set(picked)) == 4
    kept = [choose_train_steps(30, "random", 4, random.Random(s), loss="f5r", skip_grad_prob=0.95) for s in range(200)]
    assert all(k[:2] == [0, 1] for k in kept)
    extra = sum(len(k) - 2 for k in kept) / (200 * 28)
    assert extra == pytest.approx(0.05, abs=0.02)


def test_principled_estimator_is_unbiased_on_a_toy_problem():
    """1-D policy N(θ, σ²), reward r(x) = −(x − c)²: J(θ) = −(θ − c)² − σ², ∇J = −2(θ − c).
    The gradient of the on-policy PPO surrogate with A = r (score-function estimator) averages
    to the analytic gradient."""
    theta0, sigma, c = 0.5, 0.7, 2.0
    g = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(400):
        theta = torch.tensor(theta0, requires_grad=True)
        x = (theta.detach() + sigma * torch.randn(64, generator=g))
        r = -(x - c) ** 2
        logp = gaussian_log_prob(x, theta, torch.tensor(math.log(sigma)))
        loss = ppo_clip_loss(logp.unsqueeze(0), logp.detach().unsqueeze(0), r, clip_eps=0.2).loss
        (grad,) = torch.autograd.grad(-loss, theta)  # ascent direction of the surrogate
        grads.append(grad.item())
    grads = torch.tensor(grads)
    mean, se = grads.mean().item(), grads.std().item() / math.sqrt(len(grads))
    analytic = -2 * (theta0 - c)
    print(f"toy GRPO gradient: MC {mean:.3f} ± {se:.3f} (analytic {analytic:.3f})")
    assert abs(mean - analytic) < 3 * se


def test_advantage_weighted_loss_by_hand():
    from f5rl.rl.grpo import advantage_weighted_loss

    err = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.5, 2.0])
    valid = torch.tensor([True, True, True, False])
    drift = torch.tensor([0.1, 0.2, 0.3, 9.0])
    out = advantage_weighted_loss(err, adv, valid, drift, drift_weight=2.0)
    # (1·1 − 1·2 + 0.5·3) / 3 valid = 0.5/3; drift mean over valid 0.2, times 2
    assert out.loss.item() == pytest.approx(0.5 / 3 + 0.4)
    out.loss.backward()
    assert err.grad.tolist() == pytest.approx([1 / 3, -1 / 3, 0.5 / 3, 0.0])  # the invalid rollout gets nothing
    assert advantage_weighted_loss(err, adv, valid).metrics.keys() == {"loss/awm", "stats/err_mean"}
    # rl.awm_negative_weight=0: the below-average rollout no longer pushes, (1·1 + 0.5·3) / 3
    pos = advantage_weighted_loss(err, adv, valid, negative_weight=0.0)
    assert pos.loss.item() == pytest.approx(2.5 / 3)
    half = advantage_weighted_loss(err, adv, valid, negative_weight=0.5)
    assert half.loss.item() == pytest.approx((1 - 0.5 * 2 + 1.5) / 3)

"""Group-relative advantages and the two stage-2 policy losses (DESIGN §7), pure functions.

Legend: ``b`` rollouts, ``k`` kept (gradient-carrying) ODE steps, ``n`` frames, ``m`` mel bins.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from torch import Tensor

from f5rl.rl.gaussian import f5r_density, f5r_kl
from f5rl.rl.masked import masked_mean


@dataclass
class Advantages:
    adv: Tensor  # (b,) zero where the reward is NaN
    valid: Tensor  # (b,) bool: reward was scorable
    zero_std_ratio: Tensor  # fraction of groups whose rewards are all equal (no signal)
    group_mean: Tensor  # (b,) mean of the sample's group
    group_std: Tensor  # (b,)
    # fraction of groups whose range of valid rewards is below ``min_spread`` (given zero advantages)
    low_spread_ratio: Tensor = field(default_factory=lambda: torch.tensor(0.0))


ADVANTAGE_NORMS = ("std", "none")


def group_advantages(rewards: Tensor, group_ids: Tensor, eps: float = 1e-4, clip: float | None = None,
                     norm: str = "std", min_spread: float = 0.0) -> Advantages:
    """``A = (r − mean_group) / (std_group + eps)`` over the valid (non-NaN) members of each group.

    ``rewards (b,)``, ``group_ids (b,)`` long. Std is the population std of the group (GRPO);
    a group with one valid member gets A = 0. NaN rewards get A = 0 and ``valid = False``.
    ``norm="none"`` leaves out the division (Dr. GRPO, Liu et al. 2025): dividing by the std makes a
    group whose rewards differ only by the judge's noise pull as hard as one with a real difference.
    Groups whose range of valid rewards (max − min) is below ``min_spread`` get A = 0 (DMOSpeech 2
    skips groups with a range below 0.01)."""
    if norm not in ADVANTAGE_NORMS:
        raise ValueError(f"advantage norm={norm!r} is not known; use one of {ADVANTAGE_NORMS}")
    valid = ~torch.isnan(rewards)
    r = torch.where(valid, rewards, torch.zeros_like(rewards))
    groups, inv = torch.unique(group_ids, return_inverse=True)
    g = len(groups)
    count = torch.zeros(g, dtype=r.dtype, device=r.device).index_add_(0, inv, valid.to(r.dtype))
    total = torch.zeros(g, dtype=r.dtype, device=r.device).index_add_(0, inv, r)
    mean = total / count.clamp_min(1)
    dev = torch.where(valid, r - mean[inv], torch.zeros_like(r))
    var = torch.zeros(g, dtype=r.dtype, device=r.device).index_add_(0, inv, dev.square()) / count.clamp_min(1)
    std = var.sqrt()
    # range of the valid rewards per group (a group with fewer than two valid members has no signal anyway)
    inf = float("inf")
    high = torch.full((g,), -inf, dtype=r.dtype, device=r.device).scatter_reduce(
        0, inv, rewards.masked_fill(~valid, -inf), "amax")
    low = torch.full((g,), inf, dtype=r.dtype, device=r.device).scatter_reduce(
        0, inv, rewards.masked_fill(~valid, inf), "amin")
    signal = (count > 1) & (high - low >= min_spread)
    scaled = dev / (std[inv] + eps) if norm == "std" else dev
    adv = torch.where(valid & signal[inv], scaled, torch.zeros_like(r))
    if clip is not None:
        adv = adv.clamp(-clip, clip)
    zero_std = ((std <= 1e-12) | (count <= 1)).float().mean()
    low_spread = (~signal).float().mean() if min_spread > 0 else torch.tensor(0.0)
    return Advantages(adv, valid, zero_std, mean[inv], std[inv], low_spread)


@dataclass
class PolicyLoss:
    loss: Tensor
    metrics: dict[str, Tensor]


def ppo_clip_loss(logp: Tensor, old_logp: Tensor, adv: Tensor, clip_eps: float, valid: Tensor | None = None
                  ) -> PolicyLoss:
    """PPO/GRPO clipped surrogate on per-(step, rollout) log-probs.

    ``logp``/``old_logp (k, b)`` are log-probs of the stored samples summed over target
    elements and divided by the number of target elements (a per-element average, so long
    utterances do not dominate); ``adv (b,)``. Loss ``−mean(min(ρA, clip(ρ, 1±ε)A))``."""
    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(0)
    unclipped = ratio * a
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * a
    mask = torch.ones_like(ratio, dtype=torch.bool) if valid is None else valid.unsqueeze(0).expand_as(ratio)
    loss = -masked_mean(torch.minimum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_frac = masked_mean(((ratio - 1).abs() > clip_eps).float(), mask)
        approx_kl = masked_mean((ratio - 1) - (logp - old_logp), mask)  # k3 estimator of KL(old‖new)
    return PolicyLoss(loss, {"stats/clip_frac": clip_frac, "stats/approx_kl": approx_kl,
                             "stats/ratio_mean": masked_mean(ratio.detach(), mask)})


def f5r_policy_loss(f: Tensor, mu_c: Tensor, ln_sig_c: Tensor, adv: Tensor, frame_mask: Tensor,
                    kl: Tensor | None = None, kl_weight: float = 0.0) -> PolicyLoss:
    """F5R-TTS parity loss on kept steps: ``−mean(A·p) + β·mean(KL)``.

    ``f, mu_c, ln_sig_c (k, b, n, m)``: sampled velocities and the conditional head's output;
    ``adv (b,)``; ``frame_mask (b, n)`` target frames; ``kl (k, b, n, m)`` the F5R KL term."""
    p = f5r_density(f, mu_c, ln_sig_c)
    mask = frame_mask[None, :, :, None]
    pro_adv = masked_mean(adv[None, :, None, None] * p, mask)
    loss = -pro_adv
    metrics = {"loss/pro_adv": pro_adv.detach()}
    if kl is not None:
        kl_mean = masked_mean(kl, mask)
        loss = loss + kl_weight * kl_mean
        metrics["loss/kl"] = kl_mean.detach()
    return PolicyLoss(loss, metrics)


def advantage_weighted_loss(err: Tensor, adv: Tensor, valid: Tensor, drift: Tensor | None = None,
                            drift_weight: float = 0.0, negative_weight: float = 1.0) -> PolicyLoss:
    """Advantage-weighted matching (AWM, 2025): GRPO's group-relative advantages weight
    the flow-matching error of each rollout's own output, ``mean_i(A_i · e_i) + β·mean_i(d_i)``.

    ``err (b,)``: per-rollout flow-matching error of the policy (target elements, fixed noise and t);
    ``adv (b,)``, ``valid (b,)`` bool; ``drift (b,)``: per-rollout squared distance between the policy's
    and the reference's velocity at the same points (the regulariser). Minimising pulls the velocity
    field toward above-average rollouts and away from below-average ones; the flow-matching target
    is fixed given the output, so the estimate has far less variance than log-prob ratios of every
    sampled step in a ~10⁴-dimensional action space.

    ``negative_weight`` scales the weights of below-average rollouts (``A_i < 0``): their term
    *raises* a flow-matching error, which has no upper bound, so 0 keeps only the pull toward the
    better rollouts (weights ``max(A_i, 0)``)."""
    w = torch.where(adv < 0, negative_weight * adv, adv)
    w = torch.where(valid, w, torch.zeros_like(adv))
    n = valid.sum().clamp_min(1)
    weighted = (w * err).sum() / n
    loss = weighted
    metrics = {"loss/awm": weighted.detach(), "stats/err_mean": masked_mean(err.detach(), valid)}
    if drift is not None and drift_weight > 0:
        d = masked_mean(drift, valid)
        loss = loss + drift_weight * d
        metrics["loss/kl"] = d.detach()
    return PolicyLoss(loss, metrics)


def choose_train_steps(steps: int, mode: str, k: int, rng: random.Random, loss: str = "grpo",
                       skip_grad_prob: float = 0.95) -> list[int]:
    """``grpo``: ``k`` random steps, the first ``k`` (``window``) or all; ``f5r``: each step kept
    with probability ``1 − skip_grad_prob``, the first two always (as F5R-TTS does)."""
    if loss == "f5r":
        return [i for i in range(steps) if i < 2 or rng.random() >= skip_grad_prob]
    if mode == "all" or k >= steps:
        return list(range(steps))
    if mode == "window":
        return list(range(k))
    return sorted(rng.sample(range(steps), k))


__all__ = ["Advantages", "PolicyLoss", "advantage_weighted_loss", "choose_train_steps", "f5r_kl", "f5r_policy_loss",
           "group_advantages", "ppo_clip_loss"]

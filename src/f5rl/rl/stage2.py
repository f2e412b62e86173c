"""Stage-2 objectives evaluated on a recorded rollout: one ODE step at a time, so the trainer can
back-propagate step by step and keep memory at one forward pass.

* :func:`grpo_step_loss` (principled): log-prob of the stored velocity under the current
  CFG-combined Gaussian, PPO ratio against the rollout's log-prob, clipped surrogate; closed-form
  Gaussian KL to the reference model evaluated on the **policy's own stored state**.
* :func:`f5r_step_loss` (parity with F5R-TTS): density term of the conditional branch and the
  F5R KL against the reference model's outputs on the reference's **own** rollout.
* :func:`choose_train_steps`: which ODE steps carry gradient.
"""

from __future__ import annotations

import random

import torch
from torch import Tensor

from f5rl.model.dit import DiT
from f5rl.rl.gaussian import f5r_kl, gaussian_kl, gaussian_log_prob
from f5rl.rl.grpo import PolicyLoss, f5r_policy_loss, ppo_clip_loss
from f5rl.rollout.gaussian import Rollout, per_element_mean, step_gaussian


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


def grpo_step_loss(policy: DiT, ref: DiT | None, ro: Rollout, step: int, adv: Tensor, valid: Tensor,
                   clip_eps: float, kl_weight: float) -> PolicyLoss:
    """Clipped-ratio loss (+ β·KL) of one recorded step; gradients flow into ``policy``."""
    x, f, t = ro.states[step], ro.samples[step], ro.times[step].expand(x_batch(ro))
    dt = ro.times[step + 1] - ro.times[step]
    mu, ln_sig = step_gaussian(policy, x, ro.cond, ro.text, t, dt, ro.mask, ro.cfg_strength, ro.kind)
    logp = per_element_mean(gaussian_log_prob(f, mu, ln_sig), ro.target)
    out = ppo_clip_loss(logp.unsqueeze(0), ro.old_logp[step].unsqueeze(0), adv, clip_eps, valid)
    loss, metrics = out.loss, dict(out.metrics)
    metrics["loss/policy"] = out.loss.detach()
    if ref is not None and kl_weight > 0:
        with torch.no_grad():
            mu_r, ln_sig_r = step_gaussian(ref, x, ro.cond, ro.text, t, dt, ro.mask, ro.cfg_strength, ro.kind)
        # per rollout over its target elements, then over rollouts (as the policy term): a mean of
        # per-rollout terms, so the processes' average gradient is that of their concatenated batch
        kl = per_element_mean(gaussian_kl(mu, ln_sig, mu_r, ln_sig_r), ro.target).mean()
        loss = loss + kl_weight * kl
        metrics["loss/kl"] = kl.detach()
    return PolicyLoss(loss, metrics)


def f5r_step_loss(policy: DiT, ref_rollout: Rollout | None, ref: DiT | None, ro: Rollout, step: int, adv: Tensor,
                  kl_weight: float) -> PolicyLoss:
    """F5R-TTS's objective on one recorded step (conditional branch density, F5R KL)."""
    x, f, t = ro.states[step], ro.samples[step], ro.times[step].expand(x_batch(ro))
    out = policy(x, ro.cond, ro.text, t, mask=ro.mask, cfg_infer=ro.cfg_strength > 0)
    b = x.shape[0]
    mu_c, ln_sig_c = out.mu.float()[:b], out.ln_sig.float()[:b]
    kl = None
    if ref is not None and ref_rollout is not None and kl_weight > 0:
        with torch.no_grad():
            r = ref(ref_rollout.states[step], ref_rollout.cond, ref_rollout.text, t, mask=ref_rollout.mask)
        kl = f5r_kl(mu_c, ln_sig_c, r.mu.float(), r.ln_sig.float()).unsqueeze(0)
    return f5r_policy_loss(f.unsqueeze(0), mu_c.unsqueeze(0), ln_sig_c.unsqueeze(0), adv, ro.target, kl, kl_weight)


def x_batch(ro: Rollout) -> int:
    return ro.states.shape[1]

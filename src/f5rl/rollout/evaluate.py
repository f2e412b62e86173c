"""Evaluate a network on recorded data: the only place stage 2 and DPO call the DiT.

* :func:`velocity_gaussian` / :func:`step_gaussian`: the distribution of one Euler step's sampled
  velocity (CFG packing; the σ head's Gaussian, or Flow-GRPO's SDE step of a deterministic model);
* :func:`ode_velocity` / :func:`guided_velocity`: the deterministic velocity of a step without noise;
* :func:`grpo_step_loss` (principled): log-prob of the stored velocity under the current
  CFG-combined Gaussian, PPO ratio against the rollout's log-prob, clipped surrogate; closed-form
  Gaussian KL to the reference model evaluated on the **policy's own stored state**;
* :func:`f5r_step_loss` (parity with F5R-TTS): density term of the conditional branch and the F5R
  KL against the reference model's outputs on the reference's **own** rollout;
* :func:`flow_errors`: a sample's flow-matching error under given noise, time and span (DPO);
* :func:`awm_step_loss`: advantage-weighted flow matching on the rollouts' own outputs (``rl.loss=awm``).

Every function takes the network to evaluate as an argument (the policy, a frozen reference, a
LoRA base view): nothing is swapped into a model's attributes. The math is in ``f5rl.rl``.

Legend: ``b`` rollouts, ``n`` frames, ``m`` mel bins, ``t`` text tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from f5rl.model.dit import DiT, VelocityOutput
from f5rl.model.sampling import cfg_combine
from f5rl.rl.gaussian import cfg_gaussian, f5r_kl, gaussian_kl, gaussian_log_prob
from f5rl.rl.grpo import PolicyLoss, advantage_weighted_loss, f5r_policy_loss, ppo_clip_loss
from f5rl.rl.masked import masked_mean
from f5rl.rl.sde import sde_step_gaussian
from f5rl.rollout.record import Rollout, StepKind


def step_gaussian(model: DiT, x: Tensor, cond: Tensor, text: Tensor, t: Tensor, dt: Tensor, mask: Tensor | None,
                  cfg_strength: float, kind: StepKind) -> tuple[Tensor, Tensor]:
    """Mean and log-std of the sampled Euler velocity of one step, for either rollout kind."""
    if kind.mode == "gaussian":
        mu, ln_sig, _ = velocity_gaussian(model, x, cond, text, t, mask, cfg_strength)
        return mu, ln_sig
    v = guided_velocity(model, x, cond, text, t, mask, cfg_strength)
    return sde_step_gaussian(v, x.float(), t.view(-1, 1, 1).float(), dt.float(), kind.sde_noise, kind.t_floor)


def ode_velocity(model: DiT, x: Tensor, cond: Tensor, text: Tensor, t: Tensor, mask: Tensor | None,
                 cfg_strength: float, kind: StepKind) -> Tensor:
    """The deterministic Euler velocity of one step, as inference takes it: the σ head's (CFG-combined)
    mean, or a deterministic model's velocity (not the SDE drift: its correction term assumes the
    step's noise is added); float32."""
    if kind.mode == "gaussian":
        return velocity_gaussian(model, x, cond, text, t, mask, cfg_strength)[0]
    return guided_velocity(model, x, cond, text, t, mask, cfg_strength)


def guided_velocity(model, x: Tensor, cond: Tensor, text: Tensor, t: Tensor, mask: Tensor | None,
                    cfg_strength: float) -> Tensor:
    """``model``'s (mean) velocity, CFG-combined when ``cfg_strength`` > 0 (conditional and
    unconditional rows in one packed forward); float32."""
    if cfg_strength > 0:
        out = model(x, cond, text, t, mask=mask, cfg_infer=True)
        v_c, v_u = out.mu.float().chunk(2, dim=0)
        return cfg_combine(v_c, v_u, cfg_strength)
    return model(x, cond, text, t, mask=mask).mu.float()


def velocity_gaussian(model: DiT, x: Tensor, cond: Tensor, text: Tensor, t: Tensor, mask: Tensor | None,
                      cfg_strength: float) -> tuple[Tensor, Tensor, VelocityOutput]:
    """Mean and log-std of the policy's (CFG-combined) velocity at ``x``; float32."""
    if cfg_strength > 0:
        out = model(x, cond, text, t, mask=mask, cfg_infer=True)
        mu_c, mu_u = out.mu.float().chunk(2, dim=0)
        ls_c, ls_u = out.ln_sig.float().chunk(2, dim=0)
        mu, ln_sig = cfg_gaussian(mu_c, ls_c, mu_u, ls_u, cfg_strength)
    else:
        out = model(x, cond, text, t, mask=mask)
        mu, ln_sig = out.mu.float(), out.ln_sig.float()
    return mu, ln_sig, out




def grpo_step_loss(policy: DiT, ref: DiT | None, ro: Rollout, step: int, adv: Tensor, valid: Tensor,
                   clip_eps: float, kl_weight: float) -> PolicyLoss:
    """Clipped-ratio loss (+ β·KL) of one recorded step; gradients flow into ``policy``."""
    if ro.noisy is not None and step not in ro.noisy:
        raise ValueError(f"rollout step {step} sampled no noise (noisy steps {list(ro.noisy)}): it has no "
                         "log-prob to train; train the steps that sampled noise")
    x, f, t = ro.states[step], ro.samples[step], ro.times[step].expand(x_batch(ro))
    dt = ro.times[step + 1] - ro.times[step]
    mu, ln_sig = step_gaussian(policy, x, ro.cond, ro.text, t, dt, ro.mask, ro.cfg_strength, ro.kind)
    logp = masked_mean(gaussian_log_prob(f, mu, ln_sig), ro.target.unsqueeze(-1), dim=(1, 2))
    out = ppo_clip_loss(logp.unsqueeze(0), ro.old_logp[step].unsqueeze(0), adv, clip_eps, valid)
    loss, metrics = out.loss, dict(out.metrics)
    metrics["loss/policy"] = out.loss.detach()
    if ref is not None and kl_weight > 0:
        with torch.no_grad():
            mu_r, ln_sig_r = step_gaussian(ref, x, ro.cond, ro.text, t, dt, ro.mask, ro.cfg_strength, ro.kind)
        # per rollout over its target elements, then over rollouts (as the policy term): a mean of
        # per-rollout terms, so the processes' average gradient is that of their concatenated batch
        kl = masked_mean(gaussian_kl(mu, ln_sig, mu_r, ln_sig_r), ro.target.unsqueeze(-1), dim=(1, 2)).mean()
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


def flow_velocity(network, x1: Tensor, x0: Tensor, time: Tensor, text: Tensor, mask: Tensor | None, span: Tensor,
                  cfg_strength: float = 0.0) -> Tensor:
    """``network``'s velocity ``(b, n, m)`` (float32) at ``x_t = (1−t)·x0 + t·x1`` with the span zeroed
    in the condition (the infill task of training); its flow-matching target is ``x1 − x0``. With
    ``cfg_strength`` w > 0 it is the guided velocity ``v_c + w·(v_c − v_u)`` that CFG sampling follows
    (conditional and unconditional rows in one packed forward)."""
    t = time.view(-1, 1, 1)
    xt = (1 - t) * x0 + t * x1
    cond = torch.where(span.unsqueeze(-1), torch.zeros_like(x1), x1)
    return guided_velocity(network, xt, cond, text, time, mask, cfg_strength)


def span_mse(a: Tensor, b: Tensor, span: Tensor) -> Tensor:
    """Per-sample ``mean((a − b)²)`` over the span's elements: ``a, b (b, n, m)``, ``span (b, n)`` → ``(b,)``."""
    return masked_mean((a - b).square(), span.unsqueeze(-1), dim=(1, 2))


def reference_drift(v: Tensor, ref, x1: Tensor, x0: Tensor, time: Tensor, text: Tensor, mask: Tensor | None,
                    span: Tensor, cfg_strength: float = 0.0) -> Tensor:
    """Per-sample squared distance ``(b,)`` over the span of a policy velocity ``v (b, n, m)`` (taken at
    ``x0``, ``time``) from the frozen ``ref``'s velocity at the same point: the velocity-drift regulariser of
    advantage-weighted matching (AWM), a KL between the two Gaussian paths up to a constant."""
    with torch.no_grad():
        v_ref = flow_velocity(ref, x1, x0, time, text, mask, span, cfg_strength)
    return span_mse(v, v_ref, span)


def flow_errors(network, x1: Tensor, x0: Tensor, time: Tensor, text: Tensor, mask: Tensor | None, span: Tensor
                ) -> Tensor:
    """Per-sample flow-matching error ``mean((v − u)²)`` over span elements ``(b,)`` of ``network``:
    the quantity flow-matching DPO compares between chosen and rejected (with the same ``x0``,
    ``time`` and ``span``)."""
    mu = flow_velocity(network, x1, x0, time, text, mask, span)
    return span_mse(mu, x1 - x0, span)


def online_dpo_pair_loss(policy: DiT, ref: DiT, x_w: Tensor, x_l: Tensor, x0: Tensor, time: Tensor, text: Tensor,
                         mask: Tensor | None, span: Tensor, beta: float, loss_type: str, reward_gap: Tensor,
                         sft_weight: float, drift_weight: float) -> PolicyLoss:
    """Flow-matching DPO on pairs ``x_w, x_l (b, n, m)`` (chosen, rejected) sharing ``x0``, ``time (b,)`` and
    ``span``, against the frozen ``ref`` (``f5rl.rl.dpo.preference_loss``), plus ``sft_weight`` × the chosen
    error (the offline recipe's CFM term) and ``drift_weight`` × the squared distance of the policy's velocity
    on the chosen from the reference's (AWM's regulariser): on-policy pairs are the policy's own samples, so
    without it fitting the chosen feeds back into the next rollouts and nothing holds the policy near the
    reference once the preference term saturates (measured on the demo base: it delays the collapse from about
    10 updates to about 120, it does not prevent it; docs/grpo_measurements.md)."""
    from f5rl.rl.dpo import preference_loss

    mu_w = flow_velocity(policy, x_w, x0, time, text, mask, span)
    e_w = span_mse(mu_w, x_w - x0, span)
    e_l = flow_errors(policy, x_l, x0, time, text, mask, span)
    with torch.no_grad():
        mu_w_ref = flow_velocity(ref, x_w, x0, time, text, mask, span)
        r_w = span_mse(mu_w_ref, x_w - x0, span)
        r_l = flow_errors(ref, x_l, x0, time, text, mask, span)
    out = preference_loss(e_w, e_l, r_w, r_l, beta, loss_type, reward_gap=reward_gap)
    drift = span_mse(mu_w, mu_w_ref, span).mean()
    loss = out.loss + sft_weight * e_w.mean() + drift_weight * drift
    metrics = {"loss/preference": out.loss.detach(), "loss/drift": drift.detach(),
               "dpo/chosen_error": e_w.mean().detach(), "dpo/rejected_error": e_l.mean().detach(), **out.metrics}
    return PolicyLoss(loss, metrics)


def awm_step_loss(policy: DiT, ref: DiT | None, ro: Rollout, adv: Tensor, valid: Tensor, time: Tensor, x0: Tensor,
                  drift_weight: float, negative_weight: float = 1.0, guidance: float = 0.0,
                  drift_time: Tensor | None = None, drift_x0: Tensor | None = None) -> PolicyLoss:
    """Advantage-weighted flow matching on the rollouts' own outputs at flow times ``time (b,)`` with
    noise ``x0``; the regulariser is the squared distance to the reference's velocity at the same
    points (per rollout over its generated elements), plus the same distance at flow times
    ``drift_time (b,)`` with noise ``drift_x0`` when given (``rl.awm_drift_time_range``; logged as
    ``loss/kl_own``). ``guidance`` w > 0 fits the CFG-combined
    velocity ``v_c + w·(v_c − v_u)`` instead of the conditional one (``rl.awm_guided``): rollouts
    sampled with CFG are then matched by the field that sampled them, and inference's guidance is
    not applied a second time on top of a conditional branch that already moved toward guided output."""
    if (drift_time is None) != (drift_x0 is None):
        raise ValueError("awm_step_loss: give drift_time and drift_x0 together (the drift's own points), or neither")
    x1 = ro.mel.float()
    mu = flow_velocity(policy, x1, x0, time, ro.text, ro.mask, ro.target, guidance)
    err = span_mse(mu, x1 - x0, ro.target)
    if ref is None or drift_weight <= 0:
        return advantage_weighted_loss(err, adv, valid, None, 0.0, negative_weight)

    # The fit's points always keep their term: measured on the demo base, a drift taken only at other
    # flow times leaves the noise-end fit unheld, and the policy broke (docs/grpo_measurements.md).
    drift = reference_drift(mu, ref, x1, x0, time, ro.text, ro.mask, ro.target, guidance)
    own = None
    if drift_time is not None:  # one more policy forward at the drift's own points
        v_own = flow_velocity(policy, x1, drift_x0, drift_time, ro.text, ro.mask, ro.target, guidance)
        own = reference_drift(v_own, ref, x1, drift_x0, drift_time, ro.text, ro.mask, ro.target, guidance)
        drift = drift + own
    out = advantage_weighted_loss(err, adv, valid, drift, drift_weight, negative_weight)
    if own is not None:
        out.metrics["loss/kl_own"] = masked_mean(own.detach(), valid)
    return out


def x_batch(ro: Rollout) -> int:
    return ro.states.shape[1]

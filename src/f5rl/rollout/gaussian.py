"""Stochastic ODE rollouts from the Gaussian velocity head (stage 2, DESIGN §7).

At every Euler step (or at the chosen noisy steps, the others deterministic) the velocity is *sampled*
from the CFG-combined Gaussian
``N(μ_cfg, σ_cfg²)`` (``f5rl.rl.gaussian``), which is the distribution of F5R-TTS's
``(1+w)(μ_c + σ_c ε) − w(μ_u + σ_u ε')``. Everything the losses need is recorded detached:
the state before each step, the sampled velocity and its log-probability, the time grid and
the masks (``record.py``). The step distributions, for the σ head and for Flow-GRPO's SDE on a
deterministic model, are computed in ``evaluate.py``.

Legend: ``s`` ODE steps, ``b`` rollouts, ``n`` frames, ``m`` mel bins, ``t`` text tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from f5rl.model.dit import DiT
from f5rl.model.sampling import lens_to_mask
from f5rl.rl.gaussian import gaussian_log_prob
from f5rl.rl.masked import masked_mean
from f5rl.rollout.evaluate import ode_velocity, step_gaussian
from f5rl.rollout.record import Rollout, StepKind, time_points
from f5rl.utils.precision import autocast


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise on ``device``, drawn on the generator's own device (a CPU generator
    cannot fill a CUDA tensor): the same seed gives the same rollout on every device."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@torch.no_grad()
def gaussian_rollout(
    model: DiT,
    cond: Tensor,  # (b, n_c, m) ground-truth mel; frames < prompt_lens are the prompt
    text: Tensor,  # (b, t) ids of the full text
    durations: Tensor,  # (b,) total frames
    prompt_lens: Tensor,  # (b,)
    *,
    steps: int = 30,
    steps_plus_one: bool = False,
    cfg_strength: float = 2.0,
    sway_sampling_coef: float | None = -1.0,
    precision: str = "no",
    generator: torch.Generator | None = None,
    mode: str = "gaussian",
    sde_noise: float = 0.7,
    shared_start: int = 1,
    noisy_steps: Sequence[int] | None = None,
) -> Rollout:
    """Roll out ``b`` samples with sampled velocities (model in its current mode): from the σ
    head (``mode=gaussian``) or Flow-GRPO SDE noise on a deterministic model (``mode=sde``).

    ``shared_start`` = g > 1: each block of g consecutive rows (a GRPO group) starts from the same
    initial noise, so the members differ only by the noise sampled along the way, which is what the
    log-probs (and so the gradient) see (DanceGRPO's shared initial noise, Xue et al., 2025).

    ``noisy_steps``: the steps that sample noise (None: every step); every other step takes the
    deterministic Euler step of inference. Training only those steps (MixGRPO, Li et al., 2025; Flow-GRPO's
    SDE window) credits the reward differences of a group to the steps that made them."""
    if mode == "gaussian" and not model.has_sigma_head:
        raise ValueError("Gaussian rollouts need the σ head: model.use_rl_head=true (then warm it up, stage 1), "
                         "or use rl.rollout=sde for a deterministic model")
    device = cond.device
    b, _, m = cond.shape
    total = int(durations.max())
    cond = torch.nn.functional.pad(cond, (0, 0, 0, max(total - cond.shape[1], 0)))[:, :total]
    prompt_mask = lens_to_mask(prompt_lens, total)
    step_cond = torch.where(prompt_mask.unsqueeze(-1), cond, torch.zeros_like(cond))
    valid = lens_to_mask(durations, total)
    mask = None if bool((durations == total).all()) else valid
    target = valid & ~prompt_mask
    times = time_points(steps, steps_plus_one, sway_sampling_coef).to(device)
    kind = StepKind(mode, sde_noise, float(times[1]))
    noisy = None if noisy_steps is None else tuple(sorted(set(int(k) for k in noisy_steps)))
    if noisy and not (noisy[0] >= 0 and noisy[-1] < len(times) - 1):
        raise ValueError(f"noisy steps {list(noisy)} must be among the rollout's steps 0 to {len(times) - 2}")
    if b % shared_start:
        raise ValueError(f"{b} rollouts do not split into blocks of {shared_start} sharing their start noise")
    x = randn((b // shared_start, total, m), generator, device).repeat_interleave(shared_start, dim=0)
    x = x * valid.unsqueeze(-1)
    states, samples, logps = [], [], []
    with model.cached_text(), autocast(device, precision):
        for k in range(len(times) - 1):
            t, dt = times[k], times[k + 1] - times[k]
            if noisy is None or k in noisy:
                mu, ln_sig = step_gaussian(model, x, step_cond, text, t.expand(b), dt, mask, cfg_strength, kind)
                f = (mu + torch.exp(ln_sig) * randn(mu.shape, generator, device)) * valid.unsqueeze(-1)
                logp = masked_mean(gaussian_log_prob(f, mu, ln_sig), target.unsqueeze(-1), dim=(1, 2))
            else:  # the ODE step: nothing sampled, so nothing to credit (log-prob 0, never trained)
                f = ode_velocity(model, x, step_cond, text, t.expand(b), mask, cfg_strength, kind) * valid.unsqueeze(-1)
                logp = torch.zeros(b, device=device)
            states.append(x)
            samples.append(f)
            logps.append(logp)
            x = x + dt * f
    mel = torch.where(prompt_mask.unsqueeze(-1), cond, x) * valid.unsqueeze(-1)
    return Rollout(mel, torch.stack(states), torch.stack(samples), times, torch.stack(logps), step_cond, text, mask,
                   target, prompt_lens, durations, cfg_strength, kind, noisy)

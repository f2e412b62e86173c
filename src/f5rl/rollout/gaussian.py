"""Stochastic ODE rollouts from the Gaussian velocity head (stage 2, DESIGN §7).

At every Euler step the velocity is *sampled* from the CFG-combined Gaussian
``N(μ_cfg, σ_cfg²)`` (``f5rl.rl.gaussian``), which is the distribution of F5R-TTS's
``(1+w)(μ_c + σ_c ε) − w(μ_u + σ_u ε')``. Everything the losses need is recorded detached:
the state before each step, the sampled velocity and its log-probability, the time grid and
the masks. ``flow-GRPO``-style SDE rollouts of a deterministic model live in ``sde.py``.

Legend: ``s`` ODE steps, ``b`` rollouts, ``n`` frames, ``m`` mel bins, ``t`` text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from f5rl.model.dit import DiT, VelocityOutput
from f5rl.model.sampling import lens_to_mask, sway
from f5rl.rl.gaussian import cfg_gaussian, gaussian_log_prob
from f5rl.utils.precision import autocast


@dataclass(frozen=True)
class StepKind:
    """How a step's velocity is random: the σ head (``gaussian``) or Flow-GRPO noise (``sde``)."""

    mode: str = "gaussian"
    sde_noise: float = 0.7
    t_floor: float = 0.0  # sde: noise level used at t=0 (the next grid time)


@dataclass
class Rollout:
    mel: Tensor  # (b, n, m) final output, prompt region copied from the ground truth
    states: Tensor  # (s, b, n, m) x before each step
    samples: Tensor  # (s, b, n, m) sampled velocities
    times: Tensor  # (s + 1,)
    old_logp: Tensor  # (s, b) log-prob of the samples averaged over target elements
    cond: Tensor  # (b, n, m) prompt mel, zero elsewhere
    text: Tensor  # (b, t)
    mask: Tensor | None  # (b, n) valid frames (None when all rollouts have the same length)
    target: Tensor  # (b, n) generated frames: prompt_len <= i < duration
    prompt_lens: Tensor  # (b,)
    durations: Tensor  # (b,)
    cfg_strength: float
    kind: StepKind = StepKind()

    @property
    def steps(self) -> int:
        return self.samples.shape[0]

    def generated(self, i: int) -> Tensor:
        return self.mel[i, int(self.prompt_lens[i]): int(self.durations[i])]


def time_points(steps: int, steps_plus_one: bool, sway_coef: float | None) -> Tensor:
    """F5R's grid: ``steps`` points from 0 to 1 (``steps − 1`` Euler steps), or ``steps + 1``
    points with ``steps_plus_one``; then sway."""
    n = steps + 1 if steps_plus_one else steps
    if n < 2:
        raise ValueError(f"rl.steps={steps} gives no Euler step; use >= 2")
    return sway(torch.linspace(0, 1, n), sway_coef)


def step_gaussian(model: DiT, x: Tensor, cond: Tensor, text: Tensor, t: Tensor, dt: Tensor, mask: Tensor | None,
                  cfg_strength: float, kind: StepKind) -> tuple[Tensor, Tensor]:
    """Mean and log-std of the sampled Euler velocity of one step, for either rollout kind."""
    if kind.mode == "gaussian":
        mu, ln_sig, _ = velocity_gaussian(model, x, cond, text, t, mask, cfg_strength)
        return mu, ln_sig
    from f5rl.rollout.sde import sde_step_gaussian

    if cfg_strength > 0:
        out = model(x, cond, text, t, mask=mask, cfg_infer=True)
        v_c, v_u = out.mu.float().chunk(2, dim=0)
        v = v_c + cfg_strength * (v_c - v_u)
    else:
        v = model(x, cond, text, t, mask=mask).mu.float()
    return sde_step_gaussian(v, x.float(), t.view(-1, 1, 1).float(), dt.float(), kind.sde_noise, kind.t_floor)


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


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise on ``device``, drawn on the generator's own device (a CPU generator
    cannot fill a CUDA tensor): the same seed gives the same rollout on every device."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def cat_rollouts(parts: list[Rollout]) -> Rollout:
    """One rollout holding the rows of ``parts`` (same steps, grid, CFG and kind), padded to the
    longest frame and text length: what one process would have recorded for the whole batch."""
    first = parts[0]
    n = max(p.mel.shape[1] for p in parts)
    t = max(p.text.shape[1] for p in parts)

    def frames(x: Tensor, dim: int) -> Tensor:  # pad the frame axis ``dim`` with zeros
        pad = [0, 0] * (x.ndim - dim - 1) + [0, n - x.shape[dim]]
        return torch.nn.functional.pad(x, pad)

    def valid(p: Rollout) -> Tensor:
        return lens_to_mask(p.durations, n)

    durations = torch.cat([p.durations for p in parts])
    return Rollout(
        mel=torch.cat([frames(p.mel, 1) for p in parts]),
        states=torch.cat([frames(p.states, 2) for p in parts], dim=1),
        samples=torch.cat([frames(p.samples, 2) for p in parts], dim=1),
        times=first.times,
        old_logp=torch.cat([p.old_logp for p in parts], dim=1),
        cond=torch.cat([frames(p.cond, 1) for p in parts]),
        text=torch.cat([torch.nn.functional.pad(p.text, (0, t - p.text.shape[1]), value=-1) for p in parts]),
        mask=None if bool((durations == n).all()) else torch.cat([valid(p) for p in parts]),
        target=torch.cat([frames(p.target, 1) for p in parts]),
        prompt_lens=torch.cat([p.prompt_lens for p in parts]),
        durations=durations, cfg_strength=first.cfg_strength, kind=first.kind,
    )


def per_element_mean(x: Tensor, target: Tensor) -> Tensor:
    """Mean over target frames and mel bins: ``(b, n, m)``, ``(b, n)`` → ``(b,)``."""
    w = target.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(dim=(1, 2)) / (target.sum(dim=1).to(x.dtype) * x.shape[-1]).clamp_min(1)


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
) -> Rollout:
    """Roll out ``b`` samples with sampled velocities (model in its current mode): from the σ
    head (``mode=gaussian``) or Flow-GRPO SDE noise on a deterministic model (``mode=sde``)."""
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
    x = randn((b, total, m), generator, device)
    x = x * valid.unsqueeze(-1)
    states, samples, logps = [], [], []
    with model.cached_text(), autocast(device, precision):
        for k in range(len(times) - 1):
            t, dt = times[k], times[k + 1] - times[k]
            mu, ln_sig = step_gaussian(model, x, step_cond, text, t.expand(b), dt, mask, cfg_strength, kind)
            eps = randn(mu.shape, generator, device)
            f = (mu + torch.exp(ln_sig) * eps) * valid.unsqueeze(-1)
            states.append(x)
            samples.append(f)
            logps.append(per_element_mean(gaussian_log_prob(f, mu, ln_sig), target))
            x = x + dt * f
    mel = torch.where(prompt_mask.unsqueeze(-1), cond, x) * valid.unsqueeze(-1)
    return Rollout(mel, torch.stack(states), torch.stack(samples), times, torch.stack(logps), step_cond, text, mask,
                   target, prompt_lens, durations, cfg_strength, kind)

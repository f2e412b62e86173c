"""What a stochastic rollout records for the stage-2 losses (DESIGN §7), and its time grid.

Legend: ``s`` ODE steps, ``b`` rollouts, ``n`` frames, ``m`` mel bins, ``t`` text tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from f5rl.model.sampling import lens_to_mask
from f5rl.utils.timegrid import sway


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
    # steps that sampled noise (None: every step); the others took the deterministic Euler step, so
    # they carry no log-prob to train (MixGRPO's mix of SDE and ODE steps)
    noisy: tuple[int, ...] | None = None

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


def cat_rollouts(parts: list[Rollout]) -> Rollout:
    """One rollout holding the rows of ``parts`` (same steps, grid, CFG, kind and noisy steps), padded to the
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
        durations=durations, cfg_strength=first.cfg_strength, kind=first.kind, noisy=first.noisy,
    )

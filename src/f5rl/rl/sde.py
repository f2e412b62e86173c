"""Flow-GRPO's ODE→SDE conversion for a deterministic velocity model (Liu et al., 2025).

With ``x_t = (1−t)ε + t·x₁`` (t=0 noise, t=1 data) and velocity ``v = x₁ − ε``, the score is
``∇log p_t(x) = −(x − t·v)/(1−t)``, and the SDE

    dx = [v − σ_t² (x − t·v) / (2(1−t))] dt + σ_t dW,    σ_t = a·sqrt((1−t)/t)

has the same marginals as the ODE. One Euler–Maruyama step is Gaussian, so writing it as a
sampled velocity ``f = (x_{k+1} − x_k)/dt ~ N(drift, σ_t²/dt)`` reuses the Gaussian-rollout
losses unchanged. At t=0 (pure noise) σ_t is infinite; as Flow-GRPO does, the first step uses
the noise level of the next grid point.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sde_sigma(t: Tensor, a: float, t_floor: float) -> Tensor:
    """Diffusion coefficient ``a·sqrt((1−t)/t)`` with ``t`` floored at ``t_floor``."""
    t = t.clamp(min=t_floor, max=1 - 1e-6)
    return a * torch.sqrt((1 - t) / t)


def sde_step_gaussian(v: Tensor, x: Tensor, t: Tensor, dt: Tensor, a: float, t_floor: float) -> tuple[Tensor, Tensor]:
    """Mean and log-std of the sampled velocity of one Euler–Maruyama step (elementwise)."""
    sigma = sde_sigma(t, a, t_floor)
    tc = t.clamp(max=1 - 1e-6)
    drift = v - sigma.square() * (x - tc * v) / (2 * (1 - tc))
    ln_sig = torch.log(sigma) - 0.5 * torch.log(dt)
    return drift, ln_sig.expand_as(drift)

"""Flow-time reparametrisations shared by samplers, rollouts and losses (pure)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sway(t: Tensor, coef: float | None) -> Tensor:
    """Sway sampling (F5-TTS): ``t + s·(cos(πt/2) − 1 + t)``; s < 0 packs times near t=0 (noise)."""
    if coef is None or coef == 0:
        return t
    return t + coef * (torch.cos(math.pi / 2 * t) - 1 + t)

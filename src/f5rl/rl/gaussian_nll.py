"""Gaussian negative log-likelihood of the velocity (stage 1 warmup, F5R-TTS).

For target velocity ``u``, predicted mean ``μ`` and log-std ``ln σ`` at flow time ``t``:

    ℓ = (μ − u)² / (2σ² + 1e-6) + ln σ + λ_t · t² · ln σ

The first two terms are the Gaussian NLL up to the constant ½ ln 2π; the ``λ_t t² ln σ`` term
(λ_t = 1 in F5R) pushes σ down near the data end of the path, where the velocity is predictable.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gaussian_nll_elementwise(mu: Tensor, ln_sig: Tensor, target: Tensor, t: Tensor,
                             t_weight: float = 1.0) -> Tensor:
    """Elementwise loss ``(b, n, m)``; ``t`` is ``(b,)`` and broadcast over frames and bins."""
    t = t.reshape(-1, *([1] * (mu.ndim - 1))).to(mu.dtype)
    var2 = 2.0 * torch.exp(2.0 * ln_sig)
    return (mu - target).square() / (var2 + 1e-6) + ln_sig + t_weight * t.square() * ln_sig

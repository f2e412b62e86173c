"""Gaussian pieces of the stage-2 losses (DESIGN §7), elementwise and pure.

The policy samples an Euler velocity per ODE step. With classifier-free guidance of strength
``w`` and independent draws for the conditional and unconditional branches,

    f = (1+w)(μ_c + σ_c ε) − w(μ_u + σ_u ε')  ~  N(μ_cfg, σ_cfg²),
    μ_cfg = (1+w) μ_c − w μ_u,     σ_cfg² = (1+w)² σ_c² + w² σ_u²,

so the exact log-probability of a sampled velocity is that of ``N(μ_cfg, σ_cfg²)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def cfg_gaussian(mu_c: Tensor, ln_sig_c: Tensor, mu_u: Tensor, ln_sig_u: Tensor, w: float) -> tuple[Tensor, Tensor]:
    """Mean and log-std of the CFG-combined velocity (see module docstring); elementwise."""
    mu = (1 + w) * mu_c - w * mu_u
    var = (1 + w) ** 2 * torch.exp(2 * ln_sig_c) + w**2 * torch.exp(2 * ln_sig_u)
    return mu, 0.5 * torch.log(var)


def gaussian_log_prob(x: Tensor, mu: Tensor, ln_sig: Tensor) -> Tensor:
    """``log N(x; μ, σ²)`` elementwise."""
    return -0.5 * ((x - mu) * torch.exp(-ln_sig)).square() - ln_sig - 0.5 * LOG_2PI


def gaussian_kl(mu_p: Tensor, ln_sig_p: Tensor, mu_q: Tensor, ln_sig_q: Tensor) -> Tensor:
    """Closed-form ``KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²))`` elementwise."""
    var_ratio_term = (torch.exp(2 * ln_sig_p) + (mu_p - mu_q).square()) / (2 * torch.exp(2 * ln_sig_q))
    return ln_sig_q - ln_sig_p + var_ratio_term - 0.5


def f5r_kl(mu: Tensor, ln_sig: Tensor, mu_ref: Tensor, ln_sig_ref: Tensor) -> Tensor:
    """F5R-TTS's KL term: ``lnσ_ref − lnσ_θ + (σ_θ² + (μ_θ−μ_ref)²)/(2σ_ref²)`` (the closed form
    without its constant −½, exactly as the reference code computes it)."""
    return ln_sig_ref - ln_sig + (torch.exp(2 * ln_sig) + (mu - mu_ref).square()) / (2 * torch.exp(2 * ln_sig_ref))


def f5r_density(f: Tensor, mu_c: Tensor, ln_sig_c: Tensor) -> Tensor:
    """F5R-TTS's policy term ``p = exp(−(f − μ_c)²/(2σ_c²)) / σ_c`` (an unnormalised Gaussian
    density of the sampled velocity under the conditional branch only)."""
    return torch.exp(-(f - mu_c).square() / (2 * torch.exp(2 * ln_sig_c)) - ln_sig_c)

"""Pieces of the flow-matching ODE sampler (DESIGN §6), as small pure functions.

Time convention: t=0 noise, t=1 data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from f5rl.utils.timegrid import sway

# Empirically Pruned Step Sampling (F5-TTS v1): hand-picked grids in units of 1/32 for low NFE.
EPSS_GRIDS: dict[int, tuple[int, ...]] = {
    5: (0, 2, 4, 8, 16, 32),
    6: (0, 2, 4, 6, 8, 16, 32),
    7: (0, 2, 4, 6, 8, 16, 24, 32),
    10: (0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32),
    12: (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32),
    16: (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32),
}


def epss_timesteps(steps: int) -> Tensor | None:
    """The EPSS grid of ``steps`` intervals, or None when there is none for that count."""
    grid = EPSS_GRIDS.get(steps)
    return None if grid is None else torch.tensor(grid, dtype=torch.float32) / 32


def time_grid(steps: int, sway_coef: float | None = -1.0, use_epss: bool = True) -> Tensor:
    """``steps + 1`` times from 0 to 1: EPSS where defined, else uniform; then sway."""
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    t = epss_timesteps(steps) if use_epss else None
    if t is None:
        t = torch.linspace(0, 1, steps + 1)
    return sway(t, sway_coef)


def cfg_combine(v_cond: Tensor, v_uncond: Tensor, strength: float) -> Tensor:
    """Classifier-free guidance ``v = v_c + w·(v_c − v_u)``."""
    return v_cond + (v_cond - v_uncond) * strength


def estimate_duration(ref_frames: int, ref_text: str, gen_text: str, speed: float = 1.0,
                      length: Callable[[str], int] | None = None) -> int:
    """F5 heuristic: total frames = prompt frames + prompt rate × generated text length / speed.

    ``length`` measures text (default: UTF-8 bytes, F5's rule; a phoneme model passes its token count,
    which tracks speaking time more closely than spelling does)."""
    length = length or (lambda t: len(t.encode("utf-8")))
    ref_len = max(length(ref_text), 1)
    gen_len = length(gen_text)
    if speed <= 0:
        raise ValueError(f"speed={speed} must be > 0")
    return ref_frames + int(ref_frames / ref_len * gen_len / speed)


def make_generators(seeds: int | Sequence[int] | None, batch: int, device: torch.device | str = "cpu"
                    ) -> list[torch.Generator] | None:
    """One generator per sample (int: the same seed for all, as F5 does), or None for global RNG."""
    if seeds is None:
        return None
    if isinstance(seeds, int):
        seeds = [seeds] * batch
    if len(seeds) != batch:
        raise ValueError(f"got {len(seeds)} seeds for a batch of {batch}")
    return [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]


def per_sample_noise(lengths: Sequence[int], dim: int, generators: list[torch.Generator] | None,
                     device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                     total: int | None = None) -> Tensor:
    """Standard normal ``(b, N, dim)``; row i has ``lengths[i]`` frames drawn from its own
    generator (so batched equals single) and zeros after."""
    total = max(lengths) if total is None else total
    out = torch.zeros(len(lengths), total, dim, dtype=dtype)
    for i, n in enumerate(lengths):
        gen = generators[i] if generators is not None else None
        out[i, :n] = torch.randn(n, dim, generator=gen, dtype=torch.float32).to(dtype)
    return out.to(device)


def lens_to_mask(lens: Tensor, length: int | None = None) -> Tensor:
    length = int(lens.max()) if length is None else length
    return torch.arange(length, device=lens.device).unsqueeze(0) < lens.unsqueeze(1)


def span_mask(lens: Tensor, frac: Tensor, rand: Tensor, length: int | None = None) -> Tensor:
    """Infill mask ``(b, n)``: a span of ``⌊frac·len⌋`` frames starting at ``⌊(len−span)·rand⌋``."""
    span = (frac * lens).long()
    start = ((lens - span) * rand).long().clamp(min=0)
    length = int(lens.max()) if length is None else length
    idx = torch.arange(length, device=lens.device).unsqueeze(0)
    return (idx >= start.unsqueeze(1)) & (idx < (start + span).unsqueeze(1))

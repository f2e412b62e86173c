"""Splitting ground-truth utterances into a prompt and a target to infill (DESIGN §7)."""

from __future__ import annotations

import torch
from torch import Tensor


def prompt_lengths(lens: Tensor, frac_range: tuple[float, float], mode: str,
                   generator: torch.Generator | None = None) -> Tensor:
    """Prompt frames per utterance ``(b,)`` from utterance frames ``lens (b,)``.

    * ``per_sample``: each utterance draws its own fraction from ``U(lo, hi)``;
    * ``range``: one fraction for the batch, applied to each utterance's own length;
    * ``min``: one fraction for the batch applied to the shortest utterance, so every prompt has
      the same number of frames (F5R's layout for batched rollouts).
    At least one prompt frame and one target frame are kept."""
    lo, hi = frac_range
    b = lens.shape[0]
    if mode == "per_sample":
        frac = lo + (hi - lo) * torch.rand(b, generator=generator)
        out = (frac * lens.float().cpu()).long()
    elif mode == "range":
        frac = lo + (hi - lo) * torch.rand((), generator=generator)
        out = (frac * lens.float().cpu()).long()
    elif mode == "min":
        frac = lo + (hi - lo) * torch.rand((), generator=generator)
        out = torch.full((b,), int(frac * int(lens.min())), dtype=torch.long)
    else:
        raise ValueError(f"rl.prompt_length_mode={mode!r}; use min, per_sample or range")
    return torch.minimum(out.clamp(min=1), lens.cpu() - 1).to(lens.device)

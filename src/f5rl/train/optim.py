"""Optimiser and learning-rate schedule of F5-TTS training.

AdamW (or bitsandbytes' 8-bit AdamW on CUDA); the schedule rises linearly from ~0 to the peak
over ``num_warmup_updates`` and then falls linearly to ~0 at the last update.
"""

from __future__ import annotations

import logging

import torch
from torch.optim.lr_scheduler import LambdaLR

log = logging.getLogger(__name__)

_FLOOR = 1e-8  # F5's LinearLR start/end factor


def build_optimizer(params, lr: float, weight_decay: float, bnb: bool, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; with ``bnb`` the 8-bit AdamW of bitsandbytes on CUDA. On CPU 8-bit AdamW is not
    available and the run falls back to torch AdamW with a warning (the recipe still runs)."""
    if bnb:
        if device.type != "cuda":
            log.warning("optim.bnb_optimizer=true needs a CUDA device; using torch.optim.AdamW on %s", device.type)
        else:
            try:
                import bitsandbytes as bnb_mod
            except ImportError as err:
                raise ImportError("optim.bnb_optimizer=true needs bitsandbytes: pip install 'f5rl[bnb]'") from err
            return bnb_mod.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay)
    fused = device.type == "cuda"
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def lr_factor(update: int, warmup: int, total: int) -> float:
    """Multiplier of the peak learning rate after ``update`` optimiser updates."""
    if warmup > 0 and update < warmup:
        return _FLOOR + (1 - _FLOOR) * update / warmup
    decay = max(total - warmup, 1)
    return max(_FLOOR, 1 + (_FLOOR - 1) * min(update - warmup, decay) / decay)


def build_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda u: lr_factor(u, warmup, total))

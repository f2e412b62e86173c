"""Exponential moving average of model weights, with F5-TTS's checkpoint layout.

The state dict holds ``initted``, ``step`` and ``ema_model.<name>`` tensors (as ``ema_pytorch``
writes them), so released EMA files and f5rl checkpoints are interchangeable. The decay warms up
as ``1 − (1 + k)^(−2/3)`` (k = updates after ``update_after_step``) and is capped at ``beta``;
before ``update_after_step`` the EMA copies the online weights.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EMA(nn.Module):
    def __init__(self, model: nn.Module, beta: float = 0.9999, update_after_step: int = 100,
                 update_every: int = 10, power: float = 2 / 3) -> None:
        super().__init__()
        self.beta, self.update_after_step, self.update_every, self.power = beta, update_after_step, update_every, power
        self.ema_model = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("initted", torch.tensor(False))
        self.register_buffer("step", torch.tensor(0))

    def current_decay(self) -> float:
        k = int(self.step) - self.update_after_step - 1
        if k <= 0:
            return 0.0
        return min(self.beta, 1 - (1 + k) ** -self.power)

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> None:
        for e, p in zip(self.ema_model.state_dict().values(), model.state_dict().values()):
            e.copy_(p)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Call once per optimiser update."""
        self.step += 1
        step = int(self.step)
        if step % self.update_every != 0:
            return
        if step <= self.update_after_step or not bool(self.initted):
            self.copy_from(model)
            self.initted.fill_(True)
            return
        decay = self.current_decay()
        online = model.state_dict()
        for name, e in self.ema_model.state_dict().items():
            p = online[name]
            if e.dtype.is_floating_point:
                e.lerp_(p.to(e.dtype), 1 - decay)
            else:
                e.copy_(p)

    def load_ema_state(self, state: dict[str, Tensor]) -> None:
        self.load_state_dict(state, strict=True)

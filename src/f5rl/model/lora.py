"""Low-rank adapters on the DiT's linear layers, with F5 checkpoint names kept intact.

A wrapped layer keeps its frozen ``weight``/``bias`` under the original names and adds
``lora_A (r, in)`` and ``lora_B (out, r)``; its output is ``W x + b + (α/r)·B A x`` (B starts at
zero, so training starts from the base model). peft's injection renames base weights to
``base_layer.weight``, which would break loading released F5 checkpoints; this module avoids
that. With adapters disabled the network is exactly the base model, which stage 2 uses as its
reference without a second copy in memory; :func:`merge_lora_state` folds adapters into plain
F5-format weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.ff.0.0", "ff.ff.2")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = nn.Parameter(base.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(base.bias.detach().clone(), requires_grad=False) if base.bias is not None else None
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.register_buffer("lora_scale", torch.tensor(alpha / rank))  # saved, so merges need no config
        self.dropout = nn.Dropout(dropout)
        self.enabled = True

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x, self.weight, self.bias)
        if not self.enabled:
            return out
        return out + F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B) * self.lora_scale


def apply_lora(model: nn.Module, rank: int = 16, alpha: float = 32.0, dropout: float = 0.0,
               targets: tuple[str, ...] = DEFAULT_TARGETS, train_also: tuple[str, ...] = ("proj_out_ln_sig",)) -> int:
    """Wrap every ``nn.Linear`` whose name ends with one of ``targets``; freeze everything except
    the adapters and modules named in ``train_also``. Returns the number of wrapped layers."""
    if rank < 1:
        raise ValueError(f"model.lora.rank={rank} must be >= 1")
    if tuple(targets) == ("all-linear",):  # every linear layer but the output projections (PEFT's rule)
        names = [n for n, m in model.named_modules()
                 if isinstance(m, nn.Linear) and n.rpartition(".")[2] not in ("proj_out", "proj_out_ln_sig")]
    else:
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.endswith(tuple(targets))]
    if not names:
        raise ValueError(f"model.lora.targets={list(targets)} match no linear layer of the model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout))
    for n, p in model.named_parameters():
        p.requires_grad = "lora_" in n or any(n.startswith(t + ".") for t in train_also)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("LoRA rank %d on %d layers: %.2fM trainable parameters", rank, len(names), trainable / 1e6)
    return len(names)


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """Inside, the model computes exactly its base weights."""
    layers = lora_layers(model)
    for m in layers:
        m.enabled = False
    try:
        yield
    finally:
        for m in layers:
            m.enabled = True


class BaseModelView:
    """The base model of a LoRA-adapted DiT as a frozen reference: calls run with adapters
    disabled, in eval mode and without gradients.

    Layers trained in full beside the adapters (``model.lora.train_also``, e.g. the σ head) move
    during training, so disabling the adapters alone would not give the initial model: the view
    keeps a frozen copy of those parameters (taken when it is made) and evaluates the network with
    them swapped in functionally (``torch.func.functional_call``), never touching the policy."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.frozen = {n: p.detach().clone() for n, p in model.named_parameters()
                       if p.requires_grad and "lora_" not in n}

    @property
    def has_sigma_head(self) -> bool:
        return self.model.has_sigma_head

    def cached_text(self):
        return self.model.cached_text()

    @property
    def training(self) -> bool:
        return False

    def train(self, mode: bool = True) -> BaseModelView:
        return self

    def eval(self) -> BaseModelView:
        return self

    def __call__(self, *args, **kwargs):
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), adapters_disabled(self.model):
                return torch.func.functional_call(self.model, self.frozen, args, kwargs, strict=False)
        finally:
            self.model.train(was)


def merge_lora_state(state: dict[str, Tensor], alpha_over_rank: float | None = None) -> dict[str, Tensor]:
    """Fold ``lora_A``/``lora_B`` into their ``weight`` (``W + (α/r)·B A``) and drop them.

    ``alpha_over_rank`` is the adapters' scale; it is read from ``lora_scale`` entries when the
    state carries them (f5rl writes one per layer)."""
    out = {k: v for k, v in state.items() if not any(s in k for s in ("lora_A", "lora_B", "lora_scale"))}
    for key in state:
        if key.endswith("lora_A"):
            prefix = key[: -len("lora_A")]
            scale = state.get(prefix + "lora_scale")
            s = float(scale) if scale is not None else alpha_over_rank
            if s is None:
                raise ValueError(f"no LoRA scale for {prefix[:-1]}; pass alpha/rank")
            w = out[prefix + "weight"]
            out[prefix + "weight"] = (w.float() + s * state[prefix + "lora_B"].float() @ state[key].float()).to(w.dtype)
    return out

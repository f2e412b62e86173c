"""The one masked mean every loss reduces with (pure)."""

from __future__ import annotations

from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Mean of ``x`` over the true entries of ``mask`` (broadcastable to ``x``), over ``dim``
    (every dimension when None). Entries with no true mask entry give 0, not NaN.

    E.g. ``x (b, n, m)`` with ``mask (b, n, 1)``: ``dim=None`` is the mean over all target
    elements of the batch; ``dim=(1, 2)`` the per-sample mean over its own target elements ``(b,)``."""
    w = mask.expand_as(x).to(x.dtype)
    if dim is None:
        return (x * w).sum() / w.sum().clamp_min(1)
    return (x * w).sum(dim=dim) / w.sum(dim=dim).clamp_min(1)

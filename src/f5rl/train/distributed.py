"""Gradient synchronisation for losses that do not run through the DDP-wrapped module.

Stage 2 and DPO evaluate the policy network directly (one ODE step at a time, or once per
chosen/rejected sample, against a reference network), not through ``DistributedDataParallel``'s
``forward``, so DDP's reducer never arms its hooks and never averages their gradients. Those
trainers average the gradients explicitly, once per optimiser step, after every backward of the
step: the same result as DDP (the mean of the processes' gradients), one all-reduce per bucket.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

BUCKET_ELEMENTS = 32 * 1024 * 1024  # 128 MB of fp32 gradients per all-reduce


def all_reduce_gradients(params: Iterable[torch.nn.Parameter], num_processes: int) -> None:
    """Replace every trainable parameter's gradient with its mean over all processes.

    A parameter without a gradient on this process counts as a zero gradient, so every process
    reduces the same list of tensors in the same order (a collective that differs between
    processes would hang)."""
    if num_processes <= 1:
        return
    import torch.distributed as dist

    grads = []
    for p in params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads + [None]:
        if g is not None and (not bucket or (size + g.numel() <= BUCKET_ELEMENTS and g.dtype == bucket[0].dtype
                                             and g.device == bucket[0].device)):
            bucket.append(g)
            size += g.numel()
            continue
        if bucket:
            flat = torch.cat([b.reshape(-1) for b in bucket])
            dist.all_reduce(flat)
            flat /= num_processes
            offset = 0
            for b in bucket:
                b.copy_(flat[offset: offset + b.numel()].view_as(b))
                offset += b.numel()
        bucket, size = ([g], g.numel()) if g is not None else ([], 0)

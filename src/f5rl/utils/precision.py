"""Mixed-precision choice: bf16 autocast where the device runs it fast, fp32 master weights."""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "no", "bf16", "fp16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16 (bf16 matmuls several times faster than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" amx_bf16", " avx512_bf16"))


def resolve_precision(name: str, device: torch.device | str) -> str:
    """Map ``auto|no|bf16|fp16`` to what will run on ``device`` (``no`` = fp32)."""
    if name not in PRECISIONS:
        raise ValueError(f"optim.mixed_precision={name!r} is not known; use one of {PRECISIONS}")
    kind = torch.device(device).type
    if name == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if kind == "cpu" and cpu_has_fast_bf16() else "no"
    if name == "fp16" and kind == "cpu":
        raise ValueError("optim.mixed_precision=fp16 needs a GPU; use bf16 or no on CPU")
    if name == "bf16" and kind == "cpu" and not cpu_has_fast_bf16():
        # emulated there: a 512³ matmul took 301 ms in bf16 against 5.8 ms in fp32 on an AVX2-only EPYC
        log.warning("bf16 asked for on a CPU with no native bf16 (no AMX or AVX512-BF16): its matmuls are emulated, "
                    "tens of times slower than fp32; precision auto (optim.mixed_precision=auto) runs fp32 here")
    return name


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for a resolved precision (``no`` gives a null context)."""
    if precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def allow_new_precision(precision: str) -> None:
    """accelerate keeps one precision per process; a process that trains twice (a benchmark of
    several settings, iterated DPO rounds, a demo) may change it between runs. Only the precision
    state is dropped; the process group (``PartialState``) stays."""
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision", precision) != precision:
        AcceleratorState._reset_state(reset_partial_state=False)

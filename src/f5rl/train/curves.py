"""``curves.png`` beside a run's ``metrics.jsonl``: what people look at first after a run.

Stage 2: the mean training reward per update with its ± std band (over the update's rollouts) and
the held-out validation points (``val/mean_reward``); DPO: the loss and the held-out implicit
accuracy; stage 0/1: the loss and any held-out CER. Written atomically; without matplotlib (the
``demo`` extra) it is skipped with one log line.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)



def _panel(keys: set[str]) -> tuple[str, str | None, str]:
    """(line key, band key, held-out key) of a run that logged ``keys``."""
    if "reward/mean" in keys:  # stage 2
        return "reward/mean", "reward/std", "val/mean_reward"
    if any(k.startswith("val/dpo/") for k in keys):  # DPO with held-out pairs
        return "loss", None, "val/dpo/accuracy"
    return "loss", None, "val/cer"


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["update"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [u for u, _ in pts], [v for _, v in pts]


def write_curves(metrics: Path, out: Path | None = None) -> Path | None:
    """Plot the run's curves to ``out`` (default ``curves.png`` beside ``metrics``); None if nothing to draw."""
    rows = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()] if metrics.is_file() else []
    key, band, held = _panel({k for r in rows for k in r})
    if not _series(rows, key)[0]:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed (pip install 'f5rl[demo]'): no curves.png")
        return None
    from f5rl.utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4))
    x, y = _series(rows, key)
    ax.plot(x, y, label=key, lw=1.2)
    if band:
        xb, s = _series(rows, band)
        if xb == x:
            ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)], alpha=0.2,
                            label=f"± {band.split('/')[-1]}")
    hx, hy = _series(rows, held)
    if hx:
        target = ax.twinx() if key == "loss" else ax
        target.plot(hx, hy, "o-", color="C3", label=held)
        if target is not ax:
            target.set_ylabel(held)
            target.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{key} per update" + (f" (± {band.split('/')[-1]})" if band else "")
                 + (f", held-out {held}" if hx else ""))
    ax.set_xlabel("update")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = out or metrics.with_name("curves.png")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out

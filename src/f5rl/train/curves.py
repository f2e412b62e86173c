"""``curves.png`` beside a run's ``metrics.jsonl``: what people look at first after a run.

Stage 2: the mean training reward per update with its ± std band (over the update's rollouts) and
the held-out validation points (``val/mean_reward``); DPO: the loss and the held-out implicit
accuracy; stage 0/1: the loss and any held-out CER. Beside it, when the run validated more than
once, the first and the last validation of every held-out metric (``val/cer``, ``val/sim``, … :
before and after). :func:`write_before_after` draws the same kind of panel for other measurements
(``prefs.iterate``'s fresh held-out samples). Written atomically; without matplotlib (the ``demo``
extra) it is skipped with one log line.
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

    first_last = _first_last(rows)
    fig, axes = plt.subplots(1, 2 if first_last else 1, figsize=(12 if first_last else 7, 4), squeeze=False)
    ax = axes[0][0]
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
    if first_last:
        (u0, u1), values = first_last
        _bars(axes[0][1], values, None, (f"update {u0}", f"update {u1}"), "held-out: first and last validation")
    fig.tight_layout()
    out = out or metrics.with_name("curves.png")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out


def _first_last(rows: list[dict]) -> tuple[tuple[int, int], dict[str, tuple[float, float]]] | None:
    """The first and last validation of every ``val/*`` metric, when the run validated at least twice."""
    val = [r for r in rows if any(k.startswith("val/") for k in r)]
    if len(val) < 2:
        return None
    first, last = val[0], val[-1]
    keys = [k for k in first if k.startswith("val/") and isinstance(first[k], (int, float))
            and isinstance(last.get(k), (int, float)) and math.isfinite(first[k]) and math.isfinite(last[k])]
    if not keys:
        return None
    return (first.get("update", 0), last.get("update", 0)), {k: (first[k], last[k]) for k in keys[:8]}


def _bars(ax, values: dict[str, tuple[float, float]], errors: dict[str, tuple[float, float]] | None,
          labels: tuple[str, str], title: str) -> None:
    """Before/after bars per metric, each value written on its bar (metrics differ in scale)."""
    names = list(values)
    xs = range(len(names))
    for j, (label, shift) in enumerate(zip(labels, (-0.2, 0.2))):
        ys = [values[n][j] for n in names]
        err = [errors[n][j] for n in names] if errors else None
        bars = ax.bar([x + shift for x in xs], ys, width=0.4, yerr=err, capsize=3, label=label)
        for b, v in zip(bars, ys):
            ax.annotate(f"{v:.3f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=7)
    ax.set_xticks(list(xs), [n.removeprefix("val/") for n in names], rotation=20, fontsize=8)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")


def write_before_after(values: dict[str, tuple[float, float]], out: Path, title: str,
                       errors: dict[str, tuple[float, float]] | None = None,
                       labels: tuple[str, str] = ("before", "after")) -> Path | None:
    """``{metric: (before, after)}`` (± ``errors``) as a bar chart PNG at ``out``; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed (pip install 'f5rl[demo]'): no %s", out.name)
        return None
    from f5rl.utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(values) + 2), 3.6))
    _bars(ax, values, errors, labels, title)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out

"""What a training run and one optimiser step report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SUMMARY_FILE = "summary.json"  # written by the main process into the run's save dir when training ends


@dataclass
class TrainSummary:
    updates: int
    start_update: int
    final_loss: float | None
    wall_seconds: float
    save_dir: str
    checkpoints: list[str] = field(default_factory=list)  # files still on disk, in the order of their last save
    samples: list[str] = field(default_factory=list)
    precision: str = "no"
    skipped_updates: int = 0  # optimiser steps skipped for a non-finite gradient
    stopped_by_time: bool = False  # optim.max_minutes ended the run before its last update
    unscorable_updates: int = 0  # stage 2: updates with no scorable reward (nothing trained)
    curves: object = None  # the curves.png written beside metrics.jsonl (a Path), if any
    total_updates: int | None = None  # optim.total_updates (or epochs' worth): where the LR schedule ends
    num_processes: int = 1

    def add_checkpoint(self, path: str | Path) -> None:
        """Record a save: ``model_last.pt`` is saved many times and numbered files are rotated away
        (``ckpts.keep_last_n_checkpoints``), so keep each existing file once, last save last."""
        p = str(path)
        self.checkpoints = [c for c in self.checkpoints if c != p and Path(c).exists()] + [p]

    @property
    def stop_reason(self) -> str:
        """The config key that ended the run: ``optim.max_minutes`` (the wall-time budget),
        ``optim.total_updates`` (the end of the LR schedule) or ``optim.max_updates`` (a cap before it)."""
        if self.stopped_by_time:
            return "optim.max_minutes"
        if self.total_updates is not None and self.updates >= self.total_updates:
            return "optim.total_updates"
        return "optim.max_updates"

    def to_dict(self) -> dict:
        """JSON-ready fields plus :attr:`stop_reason`."""
        d = asdict(self)
        d["curves"] = str(self.curves) if self.curves else None
        d["stop_reason"] = self.stop_reason
        return d

    def write(self, save_dir: str | Path) -> Path:
        """Write ``save_dir/summary.json`` atomically (a reader never sees half a file)."""
        from f5rl.utils.atomic import atomic_write_text

        return atomic_write_text(Path(save_dir) / SUMMARY_FILE, json.dumps(self.to_dict(), indent=1) + "\n")

    def render(self) -> str:
        lines = [
            f"trained updates {self.start_update} -> {self.updates} in {self.wall_seconds:.0f} s ({self.precision})",
            f"final loss: {self.final_loss:.4f}" if self.final_loss is not None else "final loss: n/a",
            f"save dir: {self.save_dir}",
            f"stopped by {self.stop_reason}",
            *([f"skipped updates (non-finite gradient): {self.skipped_updates}"] if self.skipped_updates else []),
            *([f"updates with no scorable reward (trained nothing): {self.unscorable_updates}"]
              if self.unscorable_updates else []),
            *[f"  checkpoint {c}" for c in self.checkpoints[-3:]],
            *([f"  curves {self.curves}"] if self.curves else []),
            *[f"  sample {s}" for s in self.samples[-2:]],
        ]
        return "\n".join(lines)


@dataclass
class StepResult:
    grad_norm: float  # before clipping; NaN or inf when the step was skipped
    skipped: bool

    def metrics(self) -> dict[str, float]:
        return {"grad_norm": self.grad_norm, "stats/skipped_step": float(self.skipped)}

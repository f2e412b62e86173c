"""What a training run and one optimiser step report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainSummary:
    updates: int
    start_update: int
    final_loss: float | None
    wall_seconds: float
    save_dir: str
    checkpoints: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    precision: str = "no"
    skipped_updates: int = 0  # optimiser steps skipped for a non-finite gradient
    stopped_by_time: bool = False  # optim.max_minutes ended the run before its last update
    unscorable_updates: int = 0  # stage 2: updates with no scorable reward (nothing trained)
    curves: object = None  # the curves.png written beside metrics.jsonl (a Path), if any

    def render(self) -> str:
        lines = [
            f"trained updates {self.start_update} -> {self.updates} in {self.wall_seconds:.0f} s ({self.precision})",
            f"final loss: {self.final_loss:.4f}" if self.final_loss is not None else "final loss: n/a",
            f"save dir: {self.save_dir}",
            *(["stopped by optim.max_minutes"] if self.stopped_by_time else []),
            *([f"skipped updates (non-finite gradient): {self.skipped_updates}"] if self.skipped_updates else []),
            *([f"updates with no scorable reward (trained nothing): {self.unscorable_updates}"]
              if self.unscorable_updates else []),
            *[f"  checkpoint {c}" for c in sorted(set(self.checkpoints))[-3:]],
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

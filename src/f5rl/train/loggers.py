"""Experiment loggers: trackio (local, offline), wandb, tensorboard, or none.

A requested logger that cannot start raises: training never silently runs without the dashboard
the user asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Logger:
    """No-op base: ``ckpts.logger=null``."""

    name = "none"

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def finish(self) -> None:
        pass


class TrackioLogger(Logger):
    name = "trackio"

    def __init__(self, project: str, run_name: str | None, config: dict[str, Any]) -> None:
        try:
            import trackio
        except ImportError as err:
            raise ImportError("ckpts.logger=trackio needs trackio: pip install 'f5rl[trackio]'") from err
        self.trackio = trackio
        self.run = trackio.init(project=project, name=run_name, config=config, embed=False)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log(metrics, step=step)

    def finish(self) -> None:
        self.trackio.finish()


class WandbLogger(Logger):
    name = "wandb"

    def __init__(self, project: str, run_name: str | None, config: dict[str, Any], save_dir: Path) -> None:
        try:
            import wandb
        except ImportError as err:
            raise ImportError("ckpts.logger=wandb needs wandb: pip install 'f5rl[wandb]'") from err
        self.wandb = wandb
        try:
            self.run = wandb.init(project=project, name=run_name, config=config, dir=str(save_dir))
        except Exception as err:  # wandb raises its own error types for auth/network problems
            raise RuntimeError(
                f"wandb could not start ({err}); log in with `wandb login`, set WANDB_MODE=offline, "
                "or choose ckpts.logger=trackio|tensorboard|null"
            ) from err

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.wandb.log(metrics, step=step)

    def finish(self) -> None:
        self.wandb.finish()


class TensorboardLogger(Logger):
    name = "tensorboard"

    def __init__(self, save_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError("ckpts.logger=tensorboard needs tensorboard: pip install 'f5rl[tensorboard]'") from err
        self.writer = SummaryWriter(log_dir=str(save_dir / "runs"))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)

    def finish(self) -> None:
        self.writer.close()


def build_logger(kind: str | None, project: str, run_name: str | None, config: dict[str, Any],
                 save_dir: str | Path) -> Logger:
    save_dir = Path(save_dir)
    if kind is None:
        return Logger()
    if kind == "trackio":
        return TrackioLogger(project, run_name, config)
    if kind == "wandb":
        return WandbLogger(project, run_name, config, save_dir)
    if kind == "tensorboard":
        return TensorboardLogger(save_dir)
    raise ValueError(f"ckpts.logger={kind!r}; use trackio, wandb, tensorboard or null")


class MetricsFile:
    """Append-only JSON-lines record of every logged step (``<save_dir>/metrics.jsonl``), used for
    the demo's loss plots whatever logger is chosen."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, metrics: dict[str, float], step: int) -> None:
        import json

        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"update": step, **metrics}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites them)."""
        import json

        if not self.path.is_file():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["update"] <= step]
        self.path.write_text("".join(ln + "\n" for ln in keep))

"""Save-dir semantics of F5-TTS (DESIGN §5).

* resume order: ``model_last.pt``, then the newest ``model_<update>.pt``; otherwise a fresh start
  from ``ckpts.init_from`` or a ``pretrained_*.pt|.safetensors`` in the save dir (weights only,
  fresh optimiser, update 0);
* ``model_last.pt`` every ``last_per_updates`` and at the end, ``model_<update>.pt`` every
  ``save_per_updates``;
* ``keep_last_n_checkpoints``: −1 keep all, 0 no ``model_<update>.pt`` at all, N keep the newest
  N (``pretrained_*``, ``model_start.pt`` and ``model_last.pt`` are never deleted);
* another stage's ``model_last.pt`` found in the save dir is kept as ``model_start.pt`` before this
  run's first save replaces it: it is the run's initial weights (and the reference of a resumed
  stage-2/DPO run);
* every write is atomic (temp file + rename), so a crash mid-save leaves the previous file;
* checkpoints carry the RNG states (:func:`rng_state`), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from f5rl.model.checkpoint import atomic_save

log = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^model_(\d+)\.pt$")


@dataclass
class ResumePoint:
    path: Path | None
    kind: str  # "resume" (full state) | "init" (weights only) | "scratch"


class CheckpointManager:
    def __init__(self, save_dir: str | Path, keep_last_n: int = -1) -> None:
        self.save_dir = Path(save_dir)
        self.keep_last_n = keep_last_n

    def numbered(self) -> list[tuple[int, Path]]:
        if not self.save_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.save_dir.iterdir() if (m := _NUMBERED.match(p.name))]
        return sorted(found)

    def pretrained(self) -> Path | None:
        if not self.save_dir.is_dir():
            return None
        files = sorted(p for p in self.save_dir.glob("pretrained_*") if p.suffix in (".pt", ".safetensors"))
        return files[0] if files else None

    @property
    def start_file(self) -> Path:
        return self.save_dir / "model_start.pt"

    def from_another_stage(self, point: ResumePoint) -> bool:
        """A weights-only start from a ``model_*.pt`` of this save dir (:func:`choose_start`)."""
        return (point.kind == "init" and point.path.parent == self.save_dir and point.path.name.startswith("model_")
                and point.path != self.start_file)

    def keep_start(self, path: Path) -> Path:
        """Copy another stage's checkpoint found in the save dir to ``model_start.pt`` (atomically),
        so that this run's first ``model_last.pt`` does not destroy the weights it started from."""
        import shutil

        from f5rl.utils.atomic import atomic_path

        with atomic_path(self.start_file, mode=0o600) as tmp:
            shutil.copyfile(path, tmp)
        log.info("kept %s as %s (this run's initial weights)", path.name, self.start_file.name)
        return self.start_file

    def initial_weights(self, init_from: str | None) -> Path | None:
        """Where the weights this run started from can be read again (for the reference of a resumed
        run): the kept ``model_start.pt``, else ``ckpts.init_from``, else a ``pretrained_*`` file."""
        if self.start_file.is_file():
            return self.start_file
        return Path(init_from) if init_from else self.pretrained()

    def find_resume(self, init_from: str | None = None) -> ResumePoint:
        last = self.save_dir / "model_last.pt"
        if last.is_file():
            return ResumePoint(last, "resume")
        numbered = self.numbered()
        if numbered:
            return ResumePoint(numbered[-1][1], "resume")
        if init_from:
            path = Path(init_from)
            if not path.is_file():
                raise FileNotFoundError(f"ckpts.init_from={init_from} does not exist")
            return ResumePoint(path, "init")
        pre = self.pretrained()
        if pre is not None:
            return ResumePoint(pre, "init")
        return ResumePoint(None, "scratch")

    def save(self, state: dict, update: int, last: bool = False) -> Path:
        """Write ``model_last.pt`` (``last``) or ``model_<update>.pt`` and rotate old ones."""
        if last:
            return atomic_save(state, self.save_dir / "model_last.pt")
        if self.keep_last_n == 0:
            raise ValueError("keep_last_n_checkpoints=0 writes no numbered checkpoints")
        path = atomic_save(state, self.save_dir / f"model_{update}.pt")
        self.rotate()
        return path

    def rotate(self) -> list[Path]:
        if self.keep_last_n <= 0:
            return []
        numbered = self.numbered()
        removed = [p for _, p in numbered[: max(len(numbered) - self.keep_last_n, 0)]]
        for p in removed:
            p.unlink()
            log.info("removed old checkpoint %s", p.name)
        return removed


def written_by(path: Path) -> dict | None:
    """The ``run_kind`` a training checkpoint records (which trainer and objective wrote it), or None
    for a checkpoint that does not say (written before f5rl recorded it, or by another program);
    ``{}`` for one that holds weights only (no optimiser state): it cannot be resumed."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a truncated or foreign file: say which, do not guess
        raise ValueError(f"cannot read the checkpoint {path} (truncated or not a torch checkpoint): "
                         f"{str(err).splitlines()[0]}; delete or replace it") from None
    if not isinstance(ckpt, dict):
        return None
    if "optimizer_state_dict" not in ckpt:
        return {}
    return ckpt.get("run_kind")


def choose_start(point: ResumePoint, run_kind: dict) -> ResumePoint:
    """Resume only a run of the same kind. A checkpoint in the save dir that another stage or
    objective wrote (e.g. stage 1's ``model_last.pt`` copied into a stage-2 save dir, as the F5-TTS RL
    README does) starts a new run from its weights with a fresh optimiser and schedule; carrying its
    update count and learning-rate schedule over would be a silent mistake."""
    if point.kind != "resume":
        return point
    found = written_by(point.path)
    if found == {}:
        log.info("%s holds weights only (no optimiser state): starting a new run from its weights at update 0",
                 point.path)
        return ResumePoint(point.path, "init")
    if found is None or found == run_kind:
        return point
    log.info("%s was written by %s (objective %s), not by this %s run (objective %s): starting a new run "
             "from its weights with a fresh optimiser at update 0 (only a run of the same stage resumes)",
             point.path, found.get("trainer"), found.get("objective"), run_kind["trainer"], run_kind["objective"])
    return ResumePoint(point.path, "init")


def check_start(cfg, need_weights: bool = False) -> None:
    """Command-line check of where a run starts, before anything loads: ``ckpts.init_from`` and the
    reference checkpoints exist; ``need_weights`` (preference optimisation) refuses a start from
    random weights."""
    point = CheckpointManager(cfg.ckpts.save_dir).find_resume(cfg.ckpts.init_from)
    if need_weights and point.kind == "scratch":
        raise ValueError("no initial checkpoint: set ckpts.init_from=<policy checkpoint> (or put a "
                         f"pretrained_*.safetensors in {cfg.ckpts.save_dir}); preference optimisation of random "
                         "weights has nothing to prefer")
    files = [point.path] if point.path is not None else []
    for section in ("rl", "dpo"):
        ref = getattr(getattr(cfg, section, None), "ref_model_ckpt", None)
        if ref and not Path(ref).is_file():
            raise FileNotFoundError(f"{section}.ref_model_ckpt={ref} does not exist")
        files += [Path(ref)] if ref else []
    for path in files:  # readable, not truncated: read the header only
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(path), "pt") as f:
                    f.keys()
            except Exception as err:
                raise ValueError(f"cannot read checkpoint {path} (truncated or not a .safetensors file): "
                                 f"{err}") from None
        else:
            written_by(path)
    dpo = getattr(cfg, "dpo", None)
    if dpo is not None:  # the pair files: a bad line is named now, not after the model loads
        from f5rl.data.pairs import read_pair_rows

        for key in ("train_manifest", "val_manifest"):
            if getattr(dpo, key):
                read_pair_rows(getattr(dpo, key))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "numpy": [int(x) for x in np.random.get_state()[1]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), 624, 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_initial_weights(model, point: ResumePoint, save_dir: Path) -> ResumePoint:
    """Weights-only start (``ckpts.init_from`` / ``pretrained_*``: EMA weights when present)."""
    from f5rl.model.checkpoint import dit_state_from, load_dit_state, read_weights_file

    if point.kind == "scratch":
        log.info("training from scratch in %s", save_dir)
    elif point.kind == "init":
        log.info("initialising weights from %s (fresh optimiser, update 0)", point.path)
        load_dit_state(model.transformer, dit_state_from(read_weights_file(point.path), use_ema=True))
    return point


def restore(path: Path, model, ema, optimizer, scheduler, measured_on: dict) -> tuple[int, float | None]:
    """Load a full training checkpoint into its parts (and the RNG states); returns the update and the
    best kept value, when it was measured as this run measures (``measured_on``): a resumed run
    replaces ``model_best.pt`` only by a better model, compared like with like."""
    log.info("resuming from %s", path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model_state_dict"])
    if ema is not None:
        ema.load_ema_state(ckpt["ema_model_state_dict"])
    optimizer.load_state_dict(ckpt["optimizer_state_dict"])
    scheduler.load_state_dict(ckpt["scheduler_state_dict"])
    if "rng_state" in ckpt:
        set_rng_state(ckpt["rng_state"])
    best, saved_on = ckpt.get("best_metric"), ckpt.get("best_metric_on")
    if best is not None and saved_on is not None and saved_on != measured_on:
        # a value measured on other items (or steps, or by another metric) is not comparable:
        # the first validation of this run sets model_best.pt afresh
        log.info("validation changed since the checkpoint (%s -> %s): best %s is not carried over",
                 saved_on, measured_on, best)
        best = None
    return int(ckpt["update"]), best

"""The command lines of GRPO from the shipped demo base, shared by ``make demo``, the GRPO benchmark
(``benchmarks/bench_grpo.py``) and the CI test, so all three run what a user types.

1. stage 1: ``python -m f5rl.train.train -cn F5TTS_tiny_demo`` with the Gaussian-NLL objective, from
   the base's weights (warms up the σ head the Gaussian rollouts sample with);
2. stage 2: ``python -m f5rl.train.train_rl -cn F5TTS_RL_tiny`` from the stage-1 weights, which are
   also the KL reference; the recipe itself is the config's defaults.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from f5rl.eval.base_model import base_overrides, check_base


def warmup_argv(base: Path | None, data: Path, save_dir: Path, updates: int = 200, init: Path | None = None,
                sigma_only: bool = False) -> list[str]:
    """Stage-1 arguments (after ``python -m f5rl.train.train``): σ-head warmup from ``init`` (default:
    the base folder's weights; a from-scratch demo passes its stage-0 checkpoint and no base).

    F5R-TTS's stage 1 trains every weight on the Gaussian NLL, which also fits the mean velocity to the corpus
    again; ``sigma_only`` trains the σ head alone (``model.train_only=[proj_out_ln_sig]``), so the velocity of an
    already-aligned ``init`` (a DPO round) stays exactly as it is. A lone linear head needs a larger step than
    the whole network to move log σ in the same number of updates, hence its learning rate."""
    init = init if init is not None else check_base(base)
    lr, only = ("1e-2", ["model.train_only=[proj_out_ln_sig]"]) if sigma_only else ("3e-4", [])
    return ["-cn", "F5TTS_tiny_demo", *base_overrides(base), f"datasets.path={data}", f"ckpts.save_dir={save_dir}",
            f"ckpts.init_from={init}", f"optim.total_updates={updates}",
            "model.objective=gaussian_nll", "model.output_dist=gaussian", "model.use_rl_head=true", *only,
            f"optim.learning_rate={lr}", f"optim.num_warmup_updates={min(20, max(updates // 10, 1))}",
            "ckpts.run_name=stage1_gaussian_nll"]


def grpo_argv(base: Path, data: Path, init: Path, save_dir: Path, extra: list[str] = ()) -> list[str]:
    """Stage-2 arguments (after ``python -m f5rl.train.train_rl``): GRPO from ``init`` (also the
    KL reference) with the base's network and tokenizer; ``extra`` overrides come last."""
    return ["-cn", "F5TTS_RL_tiny", *base_overrides(base), f"datasets.path={data}", f"ckpts.save_dir={save_dir}",
            f"ckpts.init_from={init}", f"rl.ref_model_ckpt={init}", *extra]


def run_cli(module: str, argv: list[str], log_file: Path, env: dict[str, str] | None = None) -> None:
    """Run ``python -m module argv`` in a subprocess (as a user would), its output to ``log_file``;
    a failure raises with the log's last lines. ``env``: the subprocess's environment (default: ours)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as f:
        proc = subprocess.run([sys.executable, "-m", module, *argv], stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"python -m {module} failed (exit {proc.returncode}); log {log_file}:\n{tail}")

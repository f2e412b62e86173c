"""Stage-2 cost: rollout frames/s, update seconds and peak memory against ``rl.steps`` and the
number of gradient-carrying steps, for the tiny and a mid-size DiT (random weights; rewards
are not included). Each configuration runs in a fresh subprocess so peak memory is its own.
Prints a table; ``--json`` writes the rows. Never asserts.

    python benchmarks/bench_rollout.py --configs tiny,mid --steps 8,16,30 --grad_steps 1,4 --json out.json

``--updates`` instead times whole GRPO updates as users run them: ``python -m f5rl.train.train_rl``
from the shipped demo base (8 rollouts × 16 steps, Whisper tiny.en + resemblyzer on Griffin-Lim
audio, plain GRPO scored inline: ``TIMED_UPDATE``), once per named ``--variant`` (overrides after
it; alternating, ``--rounds`` times), reporting the median wall time of an update and its split
(rollout, scoring, loss/optimiser), rollout frames/s and scoring clips/s, over all updates but the
first of each run:

    python benchmarks/bench_rollout.py --updates 8 --data data/demo_char \
        --variant before rl.rewards.process=inline --variant after rl.rewards.process=server

``--at NAME REV`` runs variant NAME with the code of git revision REV instead (a detached worktree of
this repository, on ``PYTHONPATH``), so a before/after of two commits is one run on one machine state.
``TIMED_UPDATE`` is not applied to it (an older schema may not know its keys): its own defaults and the
variant's overrides define its update. A revision that logs no rollout frames shows ``nan`` frames/s
(and clips/s counts ``--rollouts`` clips where it logs no rollout count).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

# the update that --updates times unless a variant overrides it: plain GRPO, 16 steps, Whisper tiny.en CER +
# resemblyzer scored inline (F5TTS_RL_tiny's defaults before they became the AWM recipe), so runs stay comparable
TIMED_UPDATE = ["rl.loss=grpo", "rl.steps=16", "rl.inner_epochs=1", "rl.awm_time_range=[0.0,1.0]",
                "rl.awm_negative_weight=1.0", "rl.rewards.mode=sum", "rl.rewards.process=inline",
                "rl.rewards.providers=[{name: whisper_asr, weight: 3.0, config: {model: 'embedded:tiny.en'}}, "
                "{name: resemblyzer_sim, weight: 1.0, config: {}}]"]

CONFIGS = {
    "tiny": dict(dim=256, depth=6, heads=4, dim_head=64, text_dim=128, conv_layers=2),
    "mid": dict(dim=512, depth=12, heads=8, dim_head=64, text_dim=256, conv_layers=4),
}

WORKER = r"""
import json, resource, sys, time, torch
from f5rl.model.dit import DiT, DiTConfig
from f5rl.rollout.evaluate import grpo_step_loss
from f5rl.rollout.gaussian import gaussian_rollout
cfg, steps, grad_steps, rollouts, frames, precision = json.loads(sys.argv[1])
torch.manual_seed(0)
model = DiT(DiTConfig(**cfg, text_num_embeds=64, use_rl_head=True, dropout=0.0))
ref = DiT(DiTConfig(**cfg, text_num_embeds=64, use_rl_head=True, dropout=0.0)).eval().requires_grad_(False)
opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
mel = torch.randn(rollouts, frames, 100)
text = torch.randint(0, 64, (rollouts, frames // 5))
lens = torch.full((rollouts,), frames)
prompts = torch.full((rollouts,), frames // 5)
ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
model.eval()
gaussian_rollout(model, mel, text, lens, prompts, steps=3, precision=precision)  # warm-up
t0 = time.perf_counter()
ro = gaussian_rollout(model, mel, text, lens, prompts, steps=steps, precision=precision)
t_roll = time.perf_counter() - t0
model.train()
adv = torch.randn(rollouts)
valid = torch.ones(rollouts, dtype=torch.bool)
t0 = time.perf_counter()
opt.zero_grad()
for k in range(min(grad_steps, ro.steps)):
    with ctx:
        out = grpo_step_loss(model, ref, ro, k, adv, valid, 0.2, 0.1)
    (out.loss / grad_steps).backward()
opt.step()
t_upd = time.perf_counter() - t0
gen_frames = rollouts * (frames - frames // 5)
print(json.dumps({"rollout_s": t_roll, "rollout_frames_per_s": gen_frames / t_roll, "update_s": t_upd,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "params_m": sum(p.numel() for p in model.parameters()) / 1e6}))
"""


REPO = Path(__file__).resolve().parents[1]


def checkout(rev: str, path: Path) -> dict[str, str]:
    """A detached worktree of ``rev`` at ``path``; the environment that imports f5rl from it."""
    proc = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"--at {rev}: git worktree add failed: {proc.stderr.strip()}")
    return {**os.environ, "PYTHONPATH": str(path / "src")}


def time_updates(args) -> None:
    """Whole GRPO updates through the CLI, per variant (see the module docstring)."""
    import statistics
    import tempfile

    from f5rl.eval.base_model import SHIPPED
    from f5rl.scripts.grpo_recipe import grpo_argv, run_cli, warmup_argv

    variants = args.variant or [["recipe"]]
    trees = dict(args.at or [])
    unknown = set(trees) - {v[0] for v in variants}
    if unknown:  # checked before the warm-up
        raise SystemExit(f"--at {sorted(unknown)}: no --variant of that name; add --variant NAME [OVERRIDES]")
    work = Path(tempfile.mkdtemp(prefix="bench_rollout_"))
    init = Path(args.init) if args.init else work / "stage1" / "model_last.pt"
    if not init.is_file():
        run_cli("f5rl.train.train", warmup_argv(SHIPPED, Path(args.data), init.parent, 20), work / "stage1.log")
    rows: dict[str, list[dict]] = {v[0]: [] for v in variants}
    envs: dict[str, dict[str, str]] = {}
    try:
        for name, rev in trees.items():
            envs[name] = checkout(rev, work / f"tree_{name}")
        for r in range(args.rounds):
            for name, *over in variants:
                run = work / f"{name}_{r}"
                pinned = [] if name in trees else TIMED_UPDATE
                run_cli("f5rl.train.train_rl", grpo_argv(SHIPPED, Path(args.data), init, run, [
                    f"optim.total_updates={args.updates}", "ckpts.logger=null", "ckpts.log_samples=false",
                    "ckpts.save_per_updates=100000", "ckpts.last_per_updates=100000", *pinned, *over]),
                        run / "bench.log", env=envs.get(name))
                lines = (run / "metrics.jsonl").read_text().splitlines()
                ms = [json.loads(line) for line in lines][1:]  # the first update warms up
                rows[name] += ms
    finally:
        for name in envs:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / f"tree_{name}")],
                           capture_output=True)
    table = []
    print("| variant | code | updates | update s | rollout s | scoring s | loss+step s | rollout frames/s | clips/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ms in rows.items():
        med = {k: statistics.median(m[k] for m in ms) for k in ("time/rollout_s", "time/reward_s", "time/update_s")}
        total = statistics.median(m["time/rollout_s"] + m["time/reward_s"] + m["time/update_s"] for m in ms)
        frames = statistics.median(m.get("stats/rollout_frames", math.nan) / m["time/rollout_s"] for m in ms)
        clips = statistics.median(m.get("stats/rollouts", args.rollouts) / m["time/reward_s"] for m in ms)
        code = trees.get(name, "this checkout")
        table.append({"variant": name, "code": code, "updates": len(ms), "update_s": total, **med,
                      "rollout_frames_per_s": frames, "scoring_clips_per_s": clips})
        print(f"| {name} | {code} | {len(ms)} | {total:.2f} | {med['time/rollout_s']:.2f} | "
              f"{med['time/reward_s']:.2f} | {med['time/update_s']:.2f} | {frames:.0f} | {clips:.2f} |", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"updates": table}, indent=2))
        print(f"wrote {args.json}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="tiny,mid", help="DiT sizes: tiny, mid (comma-separated)")
    ap.add_argument("--steps", default="8,16,30", help="rollout ODE steps to try (comma-separated)")
    ap.add_argument("--grad_steps", default="1,4", help="gradient-carrying steps to try (comma-separated)")
    ap.add_argument("--rollouts", type=int, default=8, help="rollouts per update (prompts x group size)")
    ap.add_argument("--frames", type=int, default=250, help="frames per rollout")
    ap.add_argument("--precision", default="bf16", choices=("bf16", "no"), help="autocast precision")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    ap.add_argument("--updates", type=int, default=0, help="time this many whole GRPO updates per run instead")
    ap.add_argument("--data", default="data/demo_char", help="demo corpus (--updates)")
    ap.add_argument("--init", default=None, help="stage-1 checkpoint to start from (--updates; default: warm up)")
    ap.add_argument("--variant", nargs="+", action="append", metavar=("NAME", "OVERRIDE"),
                    help="--updates: a named set of train_rl overrides (repeatable)")
    ap.add_argument("--rounds", type=int, default=2, help="--updates: runs per variant, alternating")
    ap.add_argument("--at", nargs=2, action="append", metavar=("NAME", "REV"),
                    help="--updates: run variant NAME with the code of git revision REV (repeatable)")
    args = ap.parse_args()
    if args.updates:
        time_updates(args)
        return
    rows = []
    print(f"{'config':>6} {'steps':>5} {'grad':>4} | rollout frames/s | rollout s | update s | peak RSS MB")
    for name in args.configs.split(","):
        for steps in map(int, args.steps.split(",")):
            for g in map(int, args.grad_steps.split(",")):
                spec = json.dumps([CONFIGS[name], steps, g, args.rollouts, args.frames, args.precision])
                proc = subprocess.run([sys.executable, "-c", WORKER, spec], capture_output=True, text=True,
                                      check=True)
                r = {"config": name, "steps": steps, "grad_steps": g, "rollouts": args.rollouts,
                     "frames": args.frames, "precision": args.precision,
                     **json.loads(proc.stdout.strip().splitlines()[-1])}
                rows.append(r)
                print(f"{name:>6} {steps:>5} {g:>4} | {r['rollout_frames_per_s']:>16.1f} | {r['rollout_s']:>9.2f} | "
                      f"{r['update_s']:>8.2f} | {r['peak_rss_mb']:>11.0f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

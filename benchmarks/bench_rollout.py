"""Stage-2 cost: rollout frames/s, update seconds and peak memory against ``rl.steps`` and the
number of gradient-carrying steps, for the tiny and a mid-size DiT (random weights; rewards
are not included). Each configuration runs in a fresh subprocess so peak memory is its own.
Prints a table; ``--json`` writes the rows. Never asserts.

    python benchmarks/bench_rollout.py --configs tiny,mid --steps 8,16,30 --grad_steps 1,4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="tiny,mid")
    ap.add_argument("--steps", default="8,16,30")
    ap.add_argument("--grad_steps", default="1,4")
    ap.add_argument("--rollouts", type=int, default=8, help="rollouts per update (prompts x group size)")
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "no"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
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

"""Speed of the DiT on this machine: training step (forward+backward) and ODE sampling.

For each config and precision it reports milliseconds per training step, achieved TFLOP/s and
that as a fraction of a plain square matmul of the same precision measured in the same run, and
for sampling the generated frames per second, the real-time factor (seconds of compute per
second of audio, 93.75 frames/s) and the achieved TFLOP/s as a fraction of that matmul. ``m4`` and
``m33`` are the shapes of ``bench_vs_upstream.py``. Prints a table; ``--json`` writes the rows. Never asserts.

    python benchmarks/bench_model.py --configs small,base --precisions fp32,bf16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from f5rl.model import CFM, DiT, DiTConfig
from f5rl.utils.precision import autocast

CONFIGS = {
    # the two shapes of bench_vs_upstream.py (issue 20): 4.5 M and 32.8 M parameters
    "m4": DiTConfig(dim=256, depth=4, heads=4, dim_head=64, text_dim=128, conv_layers=2, text_num_embeds=256),
    "m33": DiTConfig(dim=512, depth=8, heads=8, dim_head=64, text_dim=512, conv_layers=4, text_num_embeds=256),
    "tiny": DiTConfig(dim=256, depth=6, heads=4, dim_head=64, text_dim=128, conv_layers=2, text_num_embeds=64),
    "small": DiTConfig(dim=768, depth=18, heads=12, dim_head=64, text_dim=512, text_num_embeds=2545),
    "base": DiTConfig(text_num_embeds=2545),
}
FRAME_RATE = 24000 / 256


def forward_flops(c: DiTConfig, b: int, n: int) -> float:
    """Matmul FLOPs of one DiT forward on ``b × n`` frames (2 per multiply-add)."""
    d, inner = c.dim, c.heads * c.dim_head
    per_frame = (
        (2 * c.mel_dim + c.text_dim) * d  # input projection
        + d * d * 31 // 16 * 2  # two grouped convs of the position embedding
        + c.depth * (4 * d * inner + 2 * d * int(d * c.ff_mult))  # q,k,v,o + FF
        + d * c.mel_dim * (2 if c.use_rl_head else 1)
        + c.conv_layers * 2 * c.text_dim * 2 * c.text_dim  # ConvNeXt pointwise layers
    )
    attention = c.depth * 2 * 2 * n * n * inner  # QKᵀ and AV
    return 2.0 * b * (n * per_frame) + b * attention


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def matmul_tflops(dtype: torch.dtype, size: int = 2048) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / time_it(lambda: a @ b, 5) / 1e12


def bench(name: str, precision: str, frames: int, batch: int, steps: int, repeats: int, peak: float) -> dict:
    torch.manual_seed(0)
    cfg = CONFIGS[name]
    cfm = CFM(DiT(cfg))
    mel = torch.randn(batch, frames, cfg.mel_dim)
    text = torch.randint(0, cfg.text_num_embeds, (batch, frames // 4))
    prec = "bf16" if precision == "bf16" else "no"

    def train_step() -> None:
        with autocast("cpu", prec):
            loss = cfm(mel, text).loss
        loss.backward()
        cfm.zero_grad(set_to_none=True)

    cfm.train()
    step_s = time_it(train_step, repeats)
    train_flops = 3 * forward_flops(cfg, batch, frames)  # backward ≈ 2× forward
    prompt = frames // 4

    def sample() -> None:
        cfm.sample(mel[:, :prompt], text, frames, steps=steps, cfg_strength=2.0, seed=0, precision=prec)

    sample_s = time_it(sample, 1)
    gen_frames = batch * (frames - prompt)
    sample_flops = steps * forward_flops(cfg, 2 * batch, frames)  # CFG packs 2b rows
    return {
        "config": name, "precision": precision, "params_m": round(sum(p.numel() for p in cfm.parameters()) / 1e6, 1),
        "batch": batch, "frames": frames, "train_step_ms": round(step_s * 1e3, 1),
        "train_tflops": round(train_flops / step_s / 1e12, 3),
        "train_frac_of_matmul": round(train_flops / step_s / 1e12 / peak, 3),
        "sample_steps": steps, "sample_s": round(sample_s, 2),
        "sample_frames_per_s": round(gen_frames / sample_s, 1),
        "sample_rtf": round(sample_s / (gen_frames / FRAME_RATE), 3),
        "sample_tflops": round(sample_flops / sample_s / 1e12, 3),
        "sample_frac_of_matmul": round(sample_flops / sample_s / 1e12 / peak, 3),
        "matmul_tflops": round(peak, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,base", help=f"comma-separated DiT shapes of {sorted(CONFIGS)}")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated fp32, bf16 (autocast)")
    ap.add_argument("--frames", type=int, default=400, help="frames per sample (93.75 per second)")
    ap.add_argument("--batch", type=int, default=1, help="samples per training step and per sampling call")
    ap.add_argument("--steps", type=int, default=8, help="ODE steps for the sampling benchmark")
    ap.add_argument("--repeats", type=int, default=2, help="timed training steps after one warm-up")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and machine facts here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {p: matmul_tflops(torch.bfloat16 if p == "bf16" else torch.float32) for p in args.precisions.split(",")}
    rows = []
    for name in args.configs.split(","):
        for p in args.precisions.split(","):
            rows.append(bench(name, p, args.frames, args.batch, args.steps, args.repeats, peaks[p]))
            r = rows[-1]
            print(f"{r['config']:>6} {r['precision']:>5} {r['params_m']:>7.1f}M  step {r['train_step_ms']:>9.1f} ms "
                  f"{r['train_tflops']:>6.3f} TFLOP/s ({r['train_frac_of_matmul']:.0%} of matmul)  "
                  f"sample {r['sample_frames_per_s']:>8.1f} frames/s RTF {r['sample_rtf']:.3f} "
                  f"{r['sample_tflops']:.3f} TFLOP/s ({r['sample_frac_of_matmul']:.0%} of matmul)", flush=True)
    print()
    head = ["config", "precision", "params_m", "train_step_ms", "train_tflops", "train_frac_of_matmul",
            "sample_frames_per_s", "sample_rtf", "sample_tflops", "sample_frac_of_matmul", "matmul_tflops"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(r[h]) for h in head))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor(),
                "frames": args.frames, "batch": args.batch, "steps": args.steps}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

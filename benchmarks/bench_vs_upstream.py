"""f5rl against upstream F5-TTS (the PyPI ``f5-tts`` package) on identical workloads, same machine.

Workloads (issue 20): a training step of 4 × 300 frames with AdamW (forward, backward, step), and
sampling 400 frames from a 100-frame prompt at 32 NFE with CFG 2 and sway −1 (Euler, no EPSS, so
both integrate the same time grid), for a DiT of dim 512 / depth 8 and one of dim 256 / depth 4
(``--configs base`` adds the F5TTS_v1_Base shape). Each measurement runs in its own subprocess and
the two implementations alternate (``--rounds``, each round in the opposite order), so neither
gets a warmer machine. ``--impls`` names the f5rl variants: ``f5rl`` (eager) and ``f5rl_compile``
(``model.compile=true``: the DiT trunk through torch.compile; its first call, which compiles, is timed
apart). Prints a table of medians and ratios (upstream time / f5rl time: > 1 means f5rl is faster)
and writes JSON. Never asserts.

Upstream is installed once with ``pip install --no-deps --target`` into ``--upstream_dir`` (with
``torchdiffeq``); its ``torchaudio`` cannot load beside CPU torch 2.13, and only its DiT and CFM are
needed with mel inputs given directly, so the worker stubs ``torchaudio`` and ``rjieba`` and imports
``f5_tts.model.backbones.dit`` and ``f5_tts.model.cfm`` without the package's ``__init__`` (which
imports its trainer).

    python benchmarks/bench_vs_upstream.py --rounds 2 --precisions fp32 --json benchmarks/results/vs_upstream.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = "f5-tts==1.1.22"
# name -> DiT shape shared by both implementations
CONFIGS = {
    "m33": dict(dim=512, depth=8, heads=8, dim_head=64, ff_mult=2, text_dim=512, conv_layers=4),
    "m4": dict(dim=256, depth=4, heads=4, dim_head=64, ff_mult=2, text_dim=128, conv_layers=2),
    "base": dict(dim=1024, depth=22, heads=16, dim_head=64, ff_mult=2, text_dim=512, conv_layers=4),
}
VOCAB, MEL = 256, 100
TRAIN_B, TRAIN_N, PROMPT, GEN, NFE = 4, 300, 100, 400, 32


def install_upstream(target: Path) -> None:
    """``f5-tts`` and ``torchdiffeq`` (pure Python) into ``target``, once."""
    if (target / "f5_tts" / "model" / "cfm.py").is_file() and (target / "torchdiffeq").is_dir():
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), UPSTREAM,
                    "torchdiffeq"], check=True)


def _upstream_modules(target: Path):
    import types

    sys.path.insert(0, str(target))
    for stub in ("torchaudio", "rjieba"):  # imported at module level, unused with mel inputs
        sys.modules.setdefault(stub, types.ModuleType(stub))
    for name, sub in (("f5_tts", "f5_tts"), ("f5_tts.model", "f5_tts/model")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(target / sub)]
        sys.modules[name] = pkg
    from f5_tts.model.backbones.dit import DiT
    from f5_tts.model.cfm import CFM

    return DiT, CFM


def build(impl: str, shape: dict, target: Path):
    import torch

    torch.manual_seed(0)
    if impl == "upstream":
        DiT, CFM = _upstream_modules(target)
        net = DiT(**shape, mel_dim=MEL, text_num_embeds=VOCAB, dropout=0.0)
        front = torch.nn.Identity()  # mel inputs are given directly; CFM reads its channel count
        front.n_mel_channels = MEL
        return CFM(net, mel_spec_module=front, num_channels=MEL)
    from f5rl.model import CFM, DiT, DiTConfig

    compile_ = impl == "f5rl_compile"  # model.compile=true
    return CFM(DiT(DiTConfig(**shape, mel_dim=MEL, text_num_embeds=VOCAB, dropout=0.0, compile=compile_)))


def worker(impl: str, config: str, precision: str, what: str, reps: int, target: Path) -> dict:
    """One measurement in this process: median seconds of ``reps`` repetitions after one warm-up."""
    import torch

    model = build(impl, CONFIGS[config], target)
    params = sum(p.numel() for p in model.parameters())
    dtype = torch.bfloat16 if precision == "bf16" else None
    ctx = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else (lambda: torch.autocast("cpu", enabled=False))
    g = torch.Generator().manual_seed(0)
    if what == "train":
        mel = torch.randn(TRAIN_B, TRAIN_N, MEL, generator=g)
        text = torch.randint(0, VOCAB, (TRAIN_B, 60), generator=g)
        lens = torch.full((TRAIN_B,), TRAIN_N)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        model.train()

        def step():
            with ctx():
                out = model(mel, text, lens=lens)
            loss = out[0] if isinstance(out, tuple) else out.loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    else:
        cond = torch.randn(1, PROMPT, MEL, generator=g)
        text = torch.randint(0, VOCAB, (1, 80), generator=g)
        kw = dict(steps=NFE, cfg_strength=2.0, sway_sampling_coef=-1.0, seed=0, use_epss=False)

        def step():
            with torch.no_grad(), ctx():
                model.sample(cond, text, PROMPT + GEN, **kw)
    t0 = time.perf_counter()
    step()  # warm-up (allocations, lazy init; with model.compile the compilation)
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"impl": impl, "config": config, "precision": precision, "what": what, "params": params,
            "seconds": statistics.median(times), "all": times, "first_s": first, "threads": torch.get_num_threads()}


def measure(impl: str, config: str, precision: str, what: str, reps: int, target: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", impl, "--configs", config, "--precisions", precision,
                           "--what", what, "--reps", str(reps), "--upstream_dir", str(target)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} {config} {precision} {what} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--configs", default="m33,m4", help=f"comma-separated DiT shapes of {sorted(CONFIGS)}")
    ap.add_argument("--precisions", default="fp32", help="comma-separated fp32, bf16 (bf16 only where the CPU has it)")
    ap.add_argument("--what", default="train,sample", help="comma-separated workloads: train, sample")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (each a subprocess per implementation)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per subprocess (median kept)")
    ap.add_argument("--upstream_dir", default=str(ROOT / "benchmarks" / ".upstream"),
                    help="where upstream F5-TTS is installed (pip --target), reused")
    ap.add_argument("--impls", default="f5rl,f5rl_compile",
                    help="comma-separated f5rl variants to time against upstream: f5rl (eager), f5rl_compile "
                         "(model.compile=true)")
    ap.add_argument("--json", default=None, help="write every measurement and the table here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    target = Path(args.upstream_dir)
    if args.worker:
        print(json.dumps(worker(args.worker, args.configs, args.precisions, args.what, args.reps, target)))
        return []
    install_upstream(target)
    impls = ["upstream", *args.impls.split(",")]
    runs = []
    for config in args.configs.split(","):
        for precision in args.precisions.split(","):
            for what in args.what.split(","):
                for r in range(args.rounds):
                    for impl in impls if r % 2 == 0 else impls[::-1]:  # alternate who goes first
                        runs.append(measure(impl, config, precision, what, args.reps, target))
                        print(f"  {impl:12s} {config} {precision} {what}: {runs[-1]['seconds']:.3f} s "
                              f"(first call {runs[-1]['first_s']:.1f} s)", flush=True)
    rows = []
    for config in args.configs.split(","):
        for precision in args.precisions.split(","):
            for impl in impls[1:]:
                row = {"config": config, "precision": precision, "impl": impl}
                for what in args.what.split(","):
                    key = (config, precision, what)
                    mine = [x for x in runs if (x["config"], x["precision"], x["what"]) == key]
                    t = {i: statistics.median(x["seconds"] for x in mine if x["impl"] == i) for i in ("upstream", impl)}
                    first = statistics.median(x["first_s"] for x in mine if x["impl"] == impl)
                    row[what] = {"upstream": t["upstream"], "f5rl": t[impl], "ratio": t["upstream"] / t[impl],
                                 "first_call_s": first}
                row["params"] = next(x["params"] for x in runs if x["config"] == config and x["impl"] == impl)
                rows.append(row)
    print(f"\nupstream {UPSTREAM} vs f5rl, this machine; medians of {args.rounds} alternating rounds × {args.reps} "
          f"reps after one warm-up call; ratio = upstream / f5rl (> 1: f5rl faster); f5rl_compile is "
          f"model.compile=true (its first call, which compiles, is in the last column)")
    print("| config | params | precision | f5rl | train step upstream / f5rl | sampling upstream / f5rl "
          "| first call train / sample |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = []
        for what in ("train", "sample"):
            c = row.get(what)
            cells.append(f"{c['upstream']:.3f} s / {c['f5rl']:.3f} s = {c['ratio']:.2f}×" if c else "—")
        firsts = " / ".join(f"{row[w]['first_call_s']:.1f} s" if w in row else "—" for w in ("train", "sample"))
        print(f"| {row['config']} | {row['params'] / 1e6:.1f} M | {row['precision']} | {row['impl']} | {cells[0]} | "
              f"{cells[1]} | {firsts} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "runs": runs}, indent=1))
    return rows


if __name__ == "__main__":
    main()

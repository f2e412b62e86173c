"""Throughput of reward providers on CPU: clips per second, batched against one by one.

Uses demo-corpus clips when ``data/demo_char`` exists (else speech-like synthetic signals).
Prints a table; ``--json`` writes the rows. Never asserts.

    python benchmarks/bench_rewards.py --clips 16 --json benchmarks/results/bench_rewards.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from f5rl.rewards import RewardBatch, build_provider


def demo_clips(n: int, data: Path) -> tuple[list[torch.Tensor], list[str]]:
    from f5rl.audio.io import load_audio

    rows = [json.loads(ln) for ln in (data / "test.jsonl").read_text().splitlines()][:n]
    return [load_audio(data / r["audio_path"]) for r in rows], [r["text"] for r in rows]


def synthetic_clips(n: int) -> tuple[list[torch.Tensor], list[str]]:
    rng = np.random.default_rng(0)
    clips = []
    for _ in range(n):
        t = np.arange(int(24000 * rng.uniform(1.5, 3.0))) / 24000
        clips.append(torch.from_numpy((0.3 * np.sin(2 * np.pi * 140 * t) * np.sin(2 * np.pi * 3 * t) ** 2)
                                      .astype(np.float32)))
    return clips, ["a short test sentence"] * n


def wespeaker_random_dir() -> str:
    """A WeSpeaker ResNet34 with random weights (speed does not depend on the values)."""
    import yaml

    from f5rl.rewards.wespeaker_resnet import RESNET_BLOCKS, WeSpeakerResNet

    folder = Path(tempfile.mkdtemp()) / "resnet34"
    folder.mkdir()
    torch.save(WeSpeakerResNet(RESNET_BLOCKS["ResNet34"]).state_dict(), folder / "avg_model.pt")
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": "ResNet34", "model_args": {
        "feat_dim": 80, "embed_dim": 256, "pooling_func": "TSTP", "two_emb_layer": False}}))
    return str(folder)


def bench(name: str, config: dict, clips, texts, repeats: int) -> dict:
    p = build_provider(name, config)
    t0 = time.perf_counter()
    p.ensure_setup("cpu")
    setup_s = time.perf_counter() - t0
    batch = RewardBatch(clips, texts, ref_audio=list(reversed(clips)))
    p(batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        p(RewardBatch(clips, texts, ref_audio=list(reversed(clips))))
    batched = len(clips) * repeats / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for c, t, r in zip(clips, texts, reversed(clips)):
        p(RewardBatch([c], [t], ref_audio=[r]))
    single = len(clips) / (time.perf_counter() - t0)
    audio_s = sum(c.numel() for c in clips) / 24000
    return {"provider": name, "setup_s": round(setup_s, 2), "clips": len(clips),
            "batched_clips_per_s": round(batched, 2), "single_clips_per_s": round(single, 2),
            "batched_rtf": round(audio_s / len(clips) / batched, 4) if batched else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", default="duration,whisper_asr,whisper_nll,resemblyzer_sim,wespeaker_sim,dnsmos")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data", type=Path, default=Path("data/demo_char"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    clips, texts = demo_clips(args.clips, args.data) if (args.data / "test.jsonl").is_file() \
        else synthetic_clips(args.clips)
    configs = {"wespeaker_sim": {"model_dir": wespeaker_random_dir()}}
    rows = []
    print(f"{'provider':>16} | setup s | batched clips/s | one-by-one clips/s | RTF (batched)")
    for name in args.providers.split(","):
        r = bench(name, configs.get(name, {}), clips, texts, args.repeats)
        rows.append(r)
        print(f"{r['provider']:>16} | {r['setup_s']:>7} | {r['batched_clips_per_s']:>15} | "
              f"{r['single_clips_per_s']:>18} | {r['batched_rtf']}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

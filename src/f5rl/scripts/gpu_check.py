"""Check the GPU paths of stage 2, DPO and synthesis on one machine in a few minutes.

    python -m f5rl.scripts.gpu_check [--out DIR] [--tiny]        (scripts/gpu_check.sh runs it)

With random weights in the F5TTS_v1_Base shape (dim 1024, depth 22, σ head), on a small synthetic
corpus it writes itself (speech-like tones, no download): two GRPO updates in bf16 with held-out
validation (``rl.val_manifest``) and keep-best, two DPO updates, and synthesis of 400 frames from
a 100-frame prompt at 32 NFE (batch 1 and 8). It prints each stage's wall time and the peak GPU
memory, then one line per stage in a table. ``--tiny`` runs the same code with a tiny DiT (on the
CPU when there is no GPU): the CPU test suite runs it so the script cannot rot.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from f5rl.utils.cli import command_parser

TINY_ARCH = ["model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
             "model.arch.text_dim=32", "model.arch.conv_layers=1"]
COMMON = ["ckpts.logger=null", "ckpts.log_samples=false", "optim.mixed_precision=auto", "optim.num_warmup_updates=0",
          "model.tokenizer=char", "datasets.batch_size_type=sample", "datasets.num_workers=0",
          "model.vocoder.name=griffin_lim", "model.vocoder.griffin_lim_iters=4"]


def tone(seconds: float, seed: int, sr: int = 24000) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (stands in for speech; no download)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 100 + 40 * rng.random() + 20 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t)) ** 2
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def write_corpus(root: Path, n: int = 12) -> tuple[Path, Path, Path]:
    """A dataset folder, a held-out prompt manifest and a preference-pair manifest."""
    from f5rl.audio.io import save_audio
    from f5rl.data.prepare import Row, write_dataset

    texts = ["the quick brown fox", "a cat sat on the mat", "please bring the red book", "hello world again"]
    rows = []
    for i in range(n):
        dur = 1.5 + 0.1 * (i % 5)
        path = save_audio(root / "wavs" / f"u{i:03d}.wav", tone(dur, i))
        rows.append(Row(str(path), texts[i % len(texts)], dur))
    data = write_dataset(rows, root / "synthetic_char", "char")
    held_out = root / "held_out.jsonl"
    held_out.write_text("".join(json.dumps({"audio_path": r.audio_path, "text": r.text}) + "\n" for r in rows[:4]))
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({
        "context_audio": rows[i].audio_path, "chosen_audio": rows[i + 1].audio_path,
        "rejected_audio": rows[i + 2].audio_path, "context_text": rows[i].text, "text": rows[i + 1].text,
        "chosen_cer": 0.0, "rejected_cer": 0.5, "chosen_sim": 0.9, "rejected_sim": 0.8}) + "\n" for i in range(6)))
    return data, held_out, pairs


class Stopwatch:
    """Wall time and peak device memory of named stages."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def run(self, name: str, fn):
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        row = {"stage": name, "seconds": round(time.perf_counter() - t0, 2),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}
        self.rows.append(row)
        print(f"{name}: {row['seconds']} s" + (f", peak {row['peak_gib']} GiB" if cuda else ""), flush=True)
        return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = command_parser(__doc__)
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--tiny", action="store_true", help="a tiny DiT instead of the v1 Base shape (CPU smoke test)")
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)

    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig, RLTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer
    from f5rl.train.rl_trainer import RLTrainer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; torch {torch.__version__}")
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    root = Path(args.out or tmp.name)
    arch = TINY_ARCH if args.tiny else []
    watch = Stopwatch()
    data, held_out, pairs = watch.run("write synthetic corpus", lambda: write_corpus(root))

    COMMON.append(f"model.tokenizer_path={data / 'vocab.txt'}")
    rl_over = [f"datasets.path={data}", f"ckpts.save_dir={root / 'grpo'}", *COMMON, *arch,
               "rl.rewards.providers=[{name: mel_energy, weight: 1.0, config: {target: -4.0}}]",
               "optim.max_updates=2", "rl.steps=16", "rl.group_size=4", "datasets.batch_size_per_gpu=2",
               f"rl.val_manifest={held_out}", "rl.val_every=1", "rl.val_size=4",
               "ckpts.keep_best_by=val/mean_reward", "optim.learning_rate=1e-5"]
    rl = RLTrainer(validate(compose("F5TTS_RL", rl_over), RLTrainConfig))
    watch.run("GRPO set-up (random v1 Base weights)" if not args.tiny else "GRPO set-up (tiny)", rl.setup)
    print(f"  precision {rl.precision}; {sum(p.numel() for p in rl.policy.parameters()) / 1e6:.1f} M parameters")
    watch.run("GRPO: 2 updates (8 rollouts x 15 steps) + 3 validations", rl.train)
    cfm = rl.accelerator.unwrap_model(rl.model)

    dpo_over = [f"datasets.path={data}", f"ckpts.save_dir={root / 'dpo'}",
                f"ckpts.init_from={root / 'grpo' / 'model_last.pt'}",
                f"dpo.train_manifest={pairs}", f"dpo.val_manifest={pairs}", "dpo.val_every=2", "dpo.val_draws=4",
                *COMMON, *arch, "optim.max_updates=2", "datasets.batch_size_per_gpu=2", "optim.learning_rate=1e-5"]
    dpo = DPOTrainer(validate(compose("F5TTS_DPO", dpo_over), DPOTrainConfig))
    watch.run("DPO set-up", dpo.setup)
    watch.run("DPO: 2 updates + held-out validation", dpo.train)

    text = rl.tokenizer.encode(["the quick brown fox jumps over the lazy dog"])
    prompt = torch.randn(1, 100, 100, device=rl.device) - 4
    for b in (1, 8):
        def synth(b=b):
            return cfm.sample(prompt.expand(b, -1, -1), text.expand(b, -1).to(rl.device), 400, steps=32,
                              cfg_strength=2.0, sway_sampling_coef=-1.0, seed=list(range(b)), precision=rl.precision)
        watch.run(f"synthesis: batch {b}, 400 frames, 32 NFE (warm-up)", synth)
        out = watch.run(f"synthesis: batch {b}, 400 frames, 32 NFE", synth)
        assert torch.isfinite(out.mel).all(), "synthesis produced non-finite mels"
        audio_s = b * 300 * 256 / 24000  # 300 generated frames per sample
        print(f"  RTF {watch.rows[-1]['seconds'] / audio_s:.4f} (batch {b}: {audio_s:.1f} s of audio)")

    print("\n| stage | seconds | peak GiB |\n|---|---|---|")
    for r in watch.rows:
        print(f"| {r['stage']} | {r['seconds']} | {r['peak_gib'] if r['peak_gib'] is not None else '-'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "rows": watch.rows}, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return watch.rows


if __name__ == "__main__":
    main()

"""What ``dpo.val_batch_size`` costs: the implicit-accuracy estimates of a DPO round (``fit()`` on the training
pairs, ``validate()`` on held-out pairs) timed at several chunk sizes, alternating, in one process.

A chunk as large as the pair set is one batch padded to the longest pair (what the trainer did before the
chunks); smaller chunks, taken shortest first, pad each chunk only to its own longest pair. The policy is a
round's trained checkpoint, the reference the shipped base, so both networks' errors are computed, as after a
round. The accuracy and margin columns show the estimate itself does not move with the chunking (each pair's
draws are its own). Prints a table; ``--json`` writes the rows. Never asserts.

    python benchmarks/bench_implicit_accuracy.py --round WORK/dpo_610703d0/iter_0 --data data/demo_char \
        --sizes 1000 8 --val_draws 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def build_trainer(round_dir: Path, data: str, size: int, draws: int, threads: int, save_dir: str):
    """A DPO trainer on the round's training pairs (also as the held-out set), policy = the round's checkpoint."""
    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.eval.base_model import SHIPPED, base_overrides
    from f5rl.train.dpo_trainer import DPOTrainer

    torch.set_num_threads(threads)
    pairs = round_dir / "pairs" / "train.jsonl"
    over = [*base_overrides(SHIPPED), f"datasets.path={data}", f"dpo.train_manifest={pairs}",
            f"dpo.val_manifest={pairs}", f"ckpts.init_from={round_dir / 'train' / 'model_last.pt'}",
            f"dpo.ref_model_ckpt={SHIPPED / 'model.safetensors'}", f"ckpts.save_dir={save_dir}", "ckpts.logger=null",
            f"dpo.val_batch_size={size}", f"dpo.val_draws={draws}"]
    trainer = DPOTrainer(validate(compose("F5TTS_DPO_tiny", over), DPOTrainConfig))
    trainer.setup()
    return trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--round", required=True, help="a prefs.iterate round folder (iter_K: pairs/, train/)")
    ap.add_argument("--data", required=True, help="the corpus the round was built on (datasets.path)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 8], help="dpo.val_batch_size values to time")
    ap.add_argument("--val_draws", type=int, default=8, help="dpo.val_draws (the CI round and the demo use 8)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes per size, alternating between sizes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    round_dir = Path(args.round)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {s: build_trainer(round_dir, args.data, s, args.val_draws, args.threads, f"{tmp}/{s}")
                    for s in args.sizes}
        times = {s: [] for s in args.sizes}
        metrics = {}
        for _ in range(args.repeats):
            for s, t in trainers.items():
                t._val_ref = None  # the reference's errors count too, as in a round
                t0 = time.perf_counter()
                metrics[s] = {**t.validate(), **t.fit()}
                times[s].append(time.perf_counter() - t0)
        n = len(trainers[args.sizes[0]].val_items)
    rows = [{"val_batch_size": s, "pairs": n, "val_draws": args.val_draws, "seconds": times[s],
             "median_s": statistics.median(times[s]), **metrics[s]} for s in args.sizes]
    print(f"{n} pairs of {round_dir}, {args.val_draws} draws; validate() + fit(), reference and policy, "
          f"{args.threads} thread(s)")
    print("| dpo.val_batch_size | seconds (each pass) | median | val accuracy | val margin | fit accuracy |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['val_batch_size']} | {', '.join(f'{x:.1f}' for x in r['seconds'])} | {r['median_s']:.1f} | "
              f"{r['val/dpo/accuracy']:.3f} | {r['val/dpo/margin']:+.4f} | {r['fit/dpo/accuracy']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

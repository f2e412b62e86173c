"""One offline DPO round from the shipped demo base, measured at a size chosen on the command line:
held-out implicit accuracy and the reward of fresh samples on held-out sentences before and after
(same seeds), for one or more training settings that share the same generations and pairs. The CI
test (``tests/scripts/test_shipped_base.py``) runs a smaller round; this script gives the numbers
at a size where the run-to-run noise is small. Prints a table; ``--json`` writes the rows. Never
asserts.

    python benchmarks/bench_dpo.py --data data/demo_char --train_groups 96 --held_out_groups 30 \
        --setting "low-t window" "dpo.time_range=[0,0.1]" --setting "uniform t" "dpo.time_range=[0,1]" \
        --json benchmarks/results/bench_dpo.json

A setting's overrides come after the recipe's (``RECIPE`` below), so they replace its keys.
Needs the demo corpus (``python -m f5rl.data.prepare_demo``); about 1 s per generated sample on a
2-core CPU, plus ~2-4 min of training per setting.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

# the demo's and the CI test's round (f5rl.scripts.demo, tests/scripts/test_shipped_base.py): the
# F5TTS_DPO_tiny defaults (t in [0, 0.1], CFM on the chosen weighted 100, the reference drift at t in
# [0.1, 1] weighted 100, lr 1e-4) for 120 updates; the README's time-window numbers were measured before the
# drift term went on (a setting's "dpo.drift_time_range=null" "dpo.drift_weight=0" reruns them as they were)
RECIPE = ["optim.max_updates=120"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/demo_char")
    ap.add_argument("--work", default="benchmarks/results/dpo_round")
    ap.add_argument("--train_groups", type=int, default=96)
    ap.add_argument("--held_out_groups", type=int, default=30)
    ap.add_argument("--group_size", type=int, default=4)
    ap.add_argument("--nfe", type=int, default=16)
    ap.add_argument("--setting", nargs="+", action="append", metavar=("NAME", "OVERRIDE"),
                    help="a named setting: NAME then config overrides (repeatable); default: the recipe alone")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from f5rl.eval.base_model import SHIPPED, base_overrides
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
    from f5rl.prefs.iterate import run_round

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    manifest = write_jsonl(demo_rows(args.data, groups=args.train_groups, nsamples=args.group_size, split="train"),
                           work / "pairs.jsonl")
    held_out = write_jsonl(demo_rows(args.data, groups=args.held_out_groups, nsamples=args.group_size, seed=99),
                           work / "held_out.jsonl")
    settings = args.setting or [["recipe"]]
    rows = []
    for name, *over in settings:
        run = work / name.replace(" ", "_")
        # every setting starts from the same generations and pairs (made once, under the first setting)
        first = work / settings[0][0].replace(" ", "_")
        if run != first and not (run / "iter_0").exists():
            (run / "iter_0").mkdir(parents=True)
            for sub in ("generated", "pairs", "held_out_before", "held_out_pairs"):
                shutil.copytree(first / "iter_0" / sub, run / "iter_0" / sub)
        t0 = time.perf_counter()
        r = run_round(0, str(manifest), str(SHIPPED / "model.safetensors"), run, args.group_size, "F5TTS_DPO_tiny",
                      [*base_overrides(SHIPPED), f"datasets.path={args.data}", "ckpts.logger=null", *RECIPE, *over],
                      nfe=args.nfe, val_manifest=str(held_out))
        h = r.held_out
        rows.append({"setting": name, "overrides": over, "train_pairs": r.pairs["train"],
                     "held_out_pairs": r.pairs["val"], "accuracy": r.val_after.get("val/dpo/accuracy"),
                     "margin": r.val_after.get("val/dpo/margin"), "n": h.n, "reward_before": h.reward_before,
                     "reward_after": h.reward_after, "change": h.change, "change_se": h.change_se,
                     "cer": h.cer, "sim": h.sim, "seconds": round(time.perf_counter() - t0, 1)})
    print("| setting | pairs train/held-out | held-out accuracy | fresh reward before → after (change ± SE) "
          "| CER | SIM | s |")
    print("|---|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['setting']} | {x['train_pairs']}/{x['held_out_pairs']} | {x['accuracy']:.3f} "
              f"| {x['reward_before']:.4f} → {x['reward_after']:.4f} ({x['change']:+.4f} ± {x['change_se']:.4f}) "
              f"| {x['cer'][0]:.4f} → {x['cer'][1]:.4f} | {x['sim'][0]:.4f} → {x['sim'][1]:.4f} | {x['seconds']} |")
    if args.json:
        from f5rl.utils.atomic import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.json), json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

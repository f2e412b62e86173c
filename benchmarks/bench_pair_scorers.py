"""Which ASR scorer settings to rank DPO samples with: re-score one ``prefs.generate`` folder under several ASR
configs and a judge, and compare the preference pairs each config makes.

For every ``--variant NAME KEY=VALUE ...`` (the ``--asr_config`` items of ``prefs.generate``; no items: the
defaults) the folder's wavs are transcribed one clip at a time on ``--threads`` threads; the table gives the mean
CER (per clip clipped at 1), seconds per clip, the Pearson correlation with the judge's CER, the pairs
``create_preference_pairs`` builds from that CER and the folder's SIM (and what it dropped), and, for those pairs,
the judge's CER of the chosen minus the rejected sample with its standard error and how often the judge agrees.
The last column counts the pairs shared with the first variant. Prints a table; ``--json`` writes the rows.
Never asserts.

    python benchmarks/bench_pair_scorers.py --generated WORK/dpo_610703d0/iter_0/generated \
        --variant window30 --variant window10 window_s=10 --judge embedded:base
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def transcribe_cer(rows: list[dict], folder: Path, config: dict, threads: int) -> tuple[np.ndarray, float]:
    """Each row's CER under a ``whisper_asr`` of ``config``, and the seconds per clip."""
    from f5rl.rewards.base import RewardBatch
    from f5rl.rewards.registry import build_provider

    p = build_provider("whisper_asr", {"cpu_threads": threads, **config})
    p.setup("cpu")
    cer, t0 = [], time.perf_counter()
    for r in rows:
        audio, sr = sf.read(folder / r["audio_path"], dtype="float32")
        out = p(RewardBatch([torch.from_numpy(audio)], [r["text"]], sample_rate=sr))
        cer.append(float(out.components["char_error_rate"][0]))
    return np.array(cer), (time.perf_counter() - t0) / len(rows)


def pairs_from(rows: list[dict], folder: Path, cer: np.ndarray, group_size: int, work: Path) -> tuple[set, dict]:
    """The pairs (chosen id, rejected id) that ``create_preference_pairs`` makes when the rows carry ``cer``."""
    from f5rl.prefs.create_preference_pairs import create

    gen = work / "generated"
    gen.mkdir(parents=True)
    for r, c in zip(rows, cer):
        (gen / f"{r['id']}.json").write_text(json.dumps({**r, "cer": float(c),
                                                         "audio_path": str(folder / r["audio_path"]),
                                                         "mel_path": str(folder / r.get("mel_path", ""))}))
    report = create(str(gen), str(work / "pairs"), group_size, max_duration=30.0)
    return {(p["chosen"]["id"], p["rejected"]["id"]) for p in report.train}, dict(report.dropped)


def main(argv: list[str] | None = None) -> None:
    from f5rl.rewards.registry import build_provider, parse_provider_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generated", type=Path, required=True, help="a prefs.generate output folder (wavs and JSON)")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                    help="a name, then whisper_asr config items (as prefs.generate --asr_config); repeatable")
    ap.add_argument("--judge", default="embedded:base", help="the Whisper model whose CER judges the pairs")
    ap.add_argument("--group_size", type=int, default=4, help="samples per group, as the round generated them")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads of each recogniser")
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = ap.parse_args(argv)
    variants = {v[0]: parse_provider_config(v[1:], f"--variant {v[0]}") for v in args.variant}
    for name, config in variants.items():  # a bad key or value fails before any model loads
        try:
            build_provider("whisper_asr", config)
        except (TypeError, ValueError) as err:
            raise SystemExit(f"--variant {name}: {err}") from None
    rows = [json.loads(p.read_text()) for p in sorted(args.generated.glob("*.json"))]
    if not rows:
        raise SystemExit(f"--generated {args.generated}: no <id>.json rows (a prefs.generate --out_dir)")

    judge, judge_s = transcribe_cer(rows, args.generated, {"model": args.judge}, args.threads)
    judge = np.minimum(judge, 1.0)
    by_id = dict(zip((r["id"] for r in rows), judge))
    out, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in variants.items():
            cer, s = transcribe_cer(rows, args.generated, config, args.threads)
            pairs, dropped = pairs_from(rows, args.generated, cer, args.group_size, Path(tmp) / name)
            gaps = np.array([by_id[c] - by_id[r] for c, r in pairs])
            first = pairs if first is None else first
            out.append({"variant": name, "config": config, "clips": len(rows),
                        "mean_cer": float(np.minimum(cer, 1).mean()),
                        "s_per_clip": s, "pearson_with_judge": float(np.corrcoef(np.minimum(cer, 1), judge)[0, 1]),
                        "pairs": len(pairs), "dropped": dropped,
                        "judge_gap": float(gaps.mean()) if len(gaps) else math.nan,
                        "judge_gap_se": float(gaps.std(ddof=1) / math.sqrt(len(gaps))) if len(gaps) > 1 else math.nan,
                        "judge_prefers_chosen": float((gaps < 0).mean()) if len(gaps) else math.nan,
                        "shared_with_first": len(pairs & first)})
    print(f"{len(rows)} clips of {args.generated}; judge {args.judge}: mean CER {judge.mean():.4f}, "
          f"{judge_s:.3f} s per clip")
    print("| variant | config | mean CER | s/clip | Pearson with judge | pairs | dropped | judge CER chosen − rejected "
          "| judge prefers chosen | pairs shared with the first |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['variant']} | {r['config']} | {r['mean_cer']:.4f} | {r['s_per_clip']:.3f} | "
              f"{r['pearson_with_judge']:.3f} | {r['pairs']} | {r['dropped']} | {r['judge_gap']:+.4f} ± "
              f"{r['judge_gap_se']:.4f} | {r['judge_prefers_chosen']:.3f} | {r['shared_with_first']} |")
    if args.json:
        args.json.write_text(json.dumps({"generated": str(args.generated), "judge": args.judge, "rows": out},
                                        indent=2))


if __name__ == "__main__":
    main()

"""Step 3: chosen/rejected pairs from the scored generations (DESIGN §9).

    python -m f5rl.prefs.create_preference_pairs --generated_dir gen/ --group_size 6 --cer_threshold 0.5 \
        --min_duration 0.5 --max_duration 20 --val_size 10 --out_dir pairs/

Writes ``train.jsonl``, ``val.jsonl`` and ``report.txt`` (pairs kept, groups dropped and why).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from f5rl.prefs.create_text_context_pairs import write_jsonl
from f5rl.prefs.pairs import Candidate, PairReport, build_pairs


def load_candidates(generated_dir: str | Path) -> list[Candidate]:
    folder = Path(generated_dir)
    cands = []
    for path in sorted(folder.glob("*.json")):
        row = json.loads(path.read_text())
        row["audio_path"] = str(folder / row["audio_path"])
        if "mel_path" in row:
            row["mel_path"] = str(folder / row["mel_path"])
        nan = math.nan
        cands.append(Candidate(row["id"], row["group"], row.get("cer", nan), row.get("sim", nan),
                               row.get("duration", nan), row))
    if not cands:
        raise FileNotFoundError(f"no generated <id>.json files in {folder}; run python -m f5rl.prefs.generate first")
    return cands


def create(generated_dir: str, out_dir: str, group_size: int, cer_threshold: float = 1.0, min_duration: float = 0.0,
           max_duration: float = 1e9, val_size: int = 0, two_per_group: bool = False, seed: int = 0) -> PairReport:
    report = build_pairs(load_candidates(generated_dir), group_size, cer_threshold, min_duration, max_duration,
                         val_size, two_per_group, seed)
    out = Path(out_dir)
    for name, rows in (("train", report.train), ("val", report.val)):
        for r in rows:  # what the DPO trainer reads, flat
            r.update(text=r["chosen"]["text"], context_audio=r["chosen"]["context_audio"],
                     context_text=r["chosen"]["context_text"], chosen_audio=r["chosen"]["audio_path"],
                     rejected_audio=r["rejected"]["audio_path"])
            if "mel_path" in r["chosen"] and "mel_path" in r["rejected"]:  # the generated samples themselves
                r.update(chosen_mel=r["chosen"]["mel_path"], rejected_mel=r["rejected"]["mel_path"],
                         prompt_frames=r["chosen"]["prompt_frames"])
        write_jsonl(rows, out / f"{name}.jsonl")
    (out / "report.txt").write_text(report.render() + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated_dir", required=True)
    ap.add_argument("--out_dir", required=True)
    ap.add_argument("--group_size", type=int, required=True)
    ap.add_argument("--cer_threshold", type=float, default=1.0)
    ap.add_argument("--min_duration", type=float, default=0.0)
    ap.add_argument("--max_duration", type=float, default=1e9)
    ap.add_argument("--val_size", type=int, default=0, help="groups held out for validation")
    ap.add_argument("--two_per_group", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    report = create(args.generated_dir, args.out_dir, args.group_size, args.cer_threshold, args.min_duration,
                    args.max_duration, args.val_size, args.two_per_group, args.seed)
    print(report.render())


if __name__ == "__main__":
    main()

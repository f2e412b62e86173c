"""Step 3: chosen/rejected pairs from the scored generations (DESIGN §9).

    python -m f5rl.prefs.create_preference_pairs --generated_dir gen/ --group_size 6 --cer_threshold 0.5 \
        --min_duration 0.5 --max_duration 20 --val_size 10 --out_dir pairs/

Writes ``train.jsonl``, ``val.jsonl`` and ``report.txt`` (pairs kept, groups dropped and why).

NeMo's MagpieTTS recipe runs as written: ``--generated_audio_dir`` is ``--generated_dir``;
``--input_manifest`` (the text/context manifest the samples were generated from) keeps only its rows
and reports rows with no scored sample; without ``--out_dir`` the pairs go beside it, in
``<manifest stem>_pairs/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from f5rl.prefs.create_text_context_pairs import write_jsonl
from f5rl.prefs.pairs import Candidate, PairReport, build_pairs
from f5rl.utils.cli import command_parser


def load_candidates(generated_dir: str | Path, ids: set[str] | None = None) -> list[Candidate]:
    """The scored samples of ``prefs.generate`` (``<id>.json``), only those in ``ids`` when given."""
    folder = Path(generated_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--generated_dir {folder} does not exist")
    cands = []
    for path in sorted(folder.glob("*.json")):
        try:
            row = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}); delete it and run prefs.generate again") from None
        missing = [k for k in ("id", "group", "audio_path") if k not in row]
        if missing:
            raise ValueError(f"{path}: no {', '.join(missing)} field; is this a prefs.generate output folder?")
        if ids is not None and row["id"] not in ids:
            continue
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
           max_duration: float = 1e9, val_size: int = 0, two_per_group: bool = False, seed: int = 0,
           input_manifest: str | None = None, rank_by: str | None = None) -> PairReport:
    ids = None
    if input_manifest:
        from f5rl.data.rows import read_rows

        ids = {r["id"] for r in read_rows(input_manifest, ("id",), "--input_manifest")}
    cands = load_candidates(generated_dir, ids)
    if rank_by and not any(f"reward/{rank_by}" in c.row for c in cands):
        raise ValueError(f"--rank_by {rank_by}: no sample in {generated_dir} has reward/{rank_by}; generate with "
                         f"--extra_rewards {rank_by}")
    report = build_pairs(cands, group_size, cer_threshold, min_duration, max_duration, val_size, two_per_group, seed,
                         rank_by)
    if ids is not None:
        report.dropped["manifest_rows_not_generated"] += len(ids - {c.id for c in cands})
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
    ap = command_parser(__doc__)
    ap.add_argument("--generated_dir", "--generated_audio_dir", dest="generated_dir", required=True,
                    help="prefs.generate's output folder (NeMo: --generated_audio_dir)")
    ap.add_argument("--input_manifest", default=None,
                    help="the text/context manifest generated from (NeMo): only its rows are paired")
    ap.add_argument("--out_dir", default=None,
                    help="where train.jsonl, val.jsonl and report.txt go (default: <input_manifest stem>_pairs/)")
    ap.add_argument("--group_size", type=int, required=True, help="samples per text/context pair (>= 2)")
    ap.add_argument("--cer_threshold", type=float, default=1.0, help="drop pairs whose chosen sample's CER is above")
    ap.add_argument("--min_duration", type=float, default=0.0, help="drop pairs with a sample shorter (seconds)")
    ap.add_argument("--max_duration", type=float, default=1e9, help="drop pairs with a sample longer (seconds)")
    ap.add_argument("--val_size", type=int, default=0, help="groups held out for validation")
    ap.add_argument("--two_per_group", action="store_true", help="two pairs per group of >= 4 (best/worst, next)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    ap.add_argument("--rank_by", default=None,
                    help="rank by this reward (reward/NAME from generate --extra_rewards NAME, higher is better) "
                         "instead of the Pareto order of (CER, SIM)")
    args = ap.parse_args(argv)
    if args.out_dir is None:
        if not args.input_manifest:
            ap.error("--out_dir is required without --input_manifest")
        m = Path(args.input_manifest)
        args.out_dir = str(m.with_name(f"{m.stem}_pairs"))
    from f5rl.utils.cli import one_line_errors

    with one_line_errors("create_preference_pairs"):
        report = create(args.generated_dir, args.out_dir, args.group_size, args.cer_threshold, args.min_duration,
                        args.max_duration, args.val_size, args.two_per_group, args.seed, args.input_manifest,
                        args.rank_by)
    print(report.render())


if __name__ == "__main__":
    main()

"""Test lists from the demo corpus: each held-out utterance is the target, and another
utterance of the same speaker (from the training split) is its prompt.

    python -m f5rl.data.test_lists --data data/demo_char

writes ``test.lst`` (Seed-TTS-eval format) and ``test_eval.jsonl`` (with ``target_wav`` for the
ground-truth sanity row).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from f5rl.utils.cli import command_parser


def demo_test_lists(data_dir: str | Path, seed: int = 0, prompt_pool: int | None = None) -> tuple[Path, Path]:
    """Write the lists; prompts come from the first ``prompt_pool`` training rows (all when None), so
    a corpus with extra train-only sentences gets the same lists as the corpus without them."""
    from datasets import load_from_disk

    data = Path(data_dir)
    train = load_from_disk(str(data / "raw"))
    if prompt_pool is not None:
        train = train.select(range(min(prompt_pool, len(train))))
    by_spk: dict[str, list[dict]] = {}
    for r in train:
        by_spk.setdefault(r["speaker"], []).append(r)
    rng = random.Random(seed)
    test = [json.loads(ln) for ln in (data / "test.jsonl").read_text().splitlines() if ln.strip()]
    lst, jsonl = [], []
    for r in test:
        prompt = rng.choice(by_spk[r["speaker"]])
        utt = Path(r["audio_path"]).stem
        lst.append(f"{utt}|{prompt['text']}|{prompt['audio_path']}|{r['text']}")
        jsonl.append(json.dumps({"utt": utt, "prompt_text": prompt["text"], "prompt_wav": prompt["audio_path"],
                                 "target_text": r["text"], "target_wav": r["audio_path"], "speaker": r["speaker"]}))
    (data / "test.lst").write_text("\n".join(lst) + "\n")
    (data / "test_eval.jsonl").write_text("\n".join(jsonl) + "\n")
    return data / "test.lst", data / "test_eval.jsonl"


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--data", default="data/demo_char", help="the demo corpus folder")
    args = ap.parse_args(argv)
    summary = Path(args.data) / "speakers.json"  # written by prepare_demo: the corpus seed and split
    info = json.loads(summary.read_text()) if summary.is_file() else {}
    pool = info["train_items"] - info.get("extra_train_sentences", 0) if "train_items" in info else None
    for p in demo_test_lists(args.data, info.get("seed", 0), pool):
        print(f"wrote {p}")


if __name__ == "__main__":
    main()

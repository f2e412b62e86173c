"""Step 1: text/context pairs for preference data (DESIGN §9).

    python -m f5rl.prefs.create_text_context_pairs --challenging_texts hard.txt --regular_texts easy.txt \
        --audio_contexts contexts.json [--text_contexts styles.txt] --nsamples_perpair 6 --out pairs.jsonl

``--audio_contexts`` is a JSON list of ``{"audio_path", "text" (or "transcript"), "speaker"}``.
Challenging texts go with audio contexts; regular texts are split evenly between audio and text
contexts (text contexts are kept for models conditioned on text; F5 generation skips them).
Each pair becomes ``nsamples_perpair`` rows sharing a ``group``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections.abc import Iterable
from pathlib import Path

from f5rl.utils.atomic import atomic_write_text


def read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def make_rows(challenging: list[str], regular: list[str], audio_contexts: list[dict], text_contexts: list[str],
              nsamples: int, seed: int = 0) -> list[dict]:
    if not audio_contexts:
        raise ValueError("--audio_contexts is empty: F5 models need at least one audio prompt")
    if nsamples < 2:
        raise ValueError("--nsamples_perpair must be >= 2 (pairs are formed within a group)")
    rng = random.Random(seed)
    pairs: list[dict] = []
    for text in challenging:
        pairs.append({"text": text, "kind": "challenging", "context": rng.choice(audio_contexts)})
    for i, text in enumerate(regular):
        if text_contexts and i % 2 == 1:
            pairs.append({"text": text, "kind": "regular", "text_context": rng.choice(text_contexts)})
        else:
            pairs.append({"text": text, "kind": "regular", "context": rng.choice(audio_contexts)})
    rows = []
    for g, p in enumerate(pairs):
        for k in range(nsamples):
            row = {"id": f"g{g:05d}_s{k:02d}", "group": f"g{g:05d}", "sample": k, "text": p["text"], "kind": p["kind"]}
            if "context" in p:
                c = p["context"]
                row.update(context_type="audio", context_audio=c["audio_path"],
                           context_text=c.get("text") or c.get("transcript", ""), speaker=c.get("speaker"))
            else:
                row.update(context_type="text", context_text=p["text_context"])
            rows.append(row)
    return rows


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--challenging_texts")
    ap.add_argument("--regular_texts")
    ap.add_argument("--audio_contexts", required=True)
    ap.add_argument("--text_contexts")
    ap.add_argument("--nsamples_perpair", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    contexts = json.loads(Path(args.audio_contexts).read_text())
    base = Path(args.audio_contexts).parent
    for c in contexts:
        if not Path(c["audio_path"]).is_absolute():
            c["audio_path"] = str(base / c["audio_path"])
    rows = make_rows(read_lines(args.challenging_texts), read_lines(args.regular_texts), contexts,
                     read_lines(args.text_contexts), args.nsamples_perpair, args.seed)
    write_jsonl(rows, args.out)
    n_text = sum(r["context_type"] == "text" for r in rows)
    print(f"wrote {args.out}: {len(rows)} rows in {len(rows) // args.nsamples_perpair} groups "
          f"({n_text} rows with text contexts)")


if __name__ == "__main__":
    main()


def demo_rows(data_dir: str | os.PathLike, groups: int, nsamples: int, seed: int = 0,
              exclude: Iterable[str] = (), split: str = "test") -> list[dict]:
    """Text/context rows from the demo corpus: each sentence is said in the voice of a held-out
    utterance (its audio and transcript are the context). Sentences come from the held-out split
    (``split="test"``) or the train split (``"train"``: many more of them, and every held-out
    sentence stays free for evaluating the result). Sentences in ``exclude`` (e.g. the texts DPO
    pairs were made from) are not used."""
    if split not in ("test", "train"):
        raise ValueError(f"split={split!r}: use 'test' (held-out sentences) or 'train'")
    data_dir = Path(data_dir)
    test = [json.loads(ln) for ln in (data_dir / "test.jsonl").read_text().splitlines() if ln.strip()]
    contexts = [{"audio_path": str(data_dir / r["audio_path"]), "text": r["text"], "speaker": r["speaker"]}
                for r in test]
    if split == "test":
        texts = [r["text"] for r in test]
    else:
        from datasets import load_from_disk

        texts = list(load_from_disk(str(data_dir / "raw"))["text"])
    rng = random.Random(seed)
    skip = set(exclude)
    texts = [t for t in texts if t not in skip]
    if len(texts) < groups:
        raise ValueError(f"{data_dir} has {len(texts)} {split} sentences left, {groups} asked for; "
                         "ask for fewer groups or build the corpus with more --sentences")
    rng.shuffle(texts)
    return make_rows([], texts[:groups], contexts, [], nsamples, seed)

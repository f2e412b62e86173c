"""Step 1: text/context pairs for preference data (DESIGN §9).

    python -m f5rl.prefs.create_text_context_pairs --challenging_texts hard.txt --regular_texts easy.txt \
        --audio_contexts contexts.json [--text_contexts styles.txt] --nsamples_perpair 6 --out pairs.jsonl

``--audio_contexts`` is a JSON list of ``{"audio_path", "text" (or "transcript"), "speaker"}``.
Challenging texts go with audio contexts; ``--regular_texts`` are split evenly between audio and text
contexts (text contexts are kept for models conditioned on text; F5 generation skips them).
Each pair becomes ``nsamples_perpair`` rows sharing a ``group`` (1 makes a prompt list, e.g. for
``rl.prompts_manifest``; preference pairs need 2 or more).

NeMo's MagpieTTS recipe runs as written: ``--regular_texts_for_audiocontext`` and
``--regular_texts_for_textcontext`` give the two halves as separate lists, ``--output_manifest`` is
``--out``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from pathlib import Path

from f5rl.utils.atomic import atomic_write_text
from f5rl.utils.cli import command_parser


def read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    if not Path(path).is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def make_rows(challenging: list[str], regular: list[str], audio_contexts: list[dict], text_contexts: list[str],
              nsamples: int, seed: int = 0, regular_audio: list[str] = (), regular_text: list[str] = ()) -> list[dict]:
    """``regular`` texts alternate between audio and text contexts; ``regular_audio`` /
    ``regular_text`` (NeMo's two lists) go with audio / text contexts only."""
    if not audio_contexts:
        raise ValueError("--audio_contexts is empty: F5 models need at least one audio prompt")
    if nsamples < 1:
        raise ValueError(f"--nsamples_perpair {nsamples}: must be >= 1 (1: a prompt list, >= 2: preference groups)")
    if regular_text and not text_contexts:
        raise ValueError("--regular_texts_for_textcontext needs --text_contexts")
    rng = random.Random(seed)
    pairs: list[dict] = []
    for text in challenging:
        pairs.append({"text": text, "kind": "challenging", "context": rng.choice(audio_contexts)})
    for i, text in enumerate(regular):
        if text_contexts and i % 2 == 1:
            pairs.append({"text": text, "kind": "regular", "text_context": rng.choice(text_contexts)})
        else:
            pairs.append({"text": text, "kind": "regular", "context": rng.choice(audio_contexts)})
    for text in regular_audio:
        pairs.append({"text": text, "kind": "regular", "context": rng.choice(audio_contexts)})
    for text in regular_text:
        pairs.append({"text": text, "kind": "regular", "text_context": rng.choice(text_contexts)})
    if not pairs:
        raise ValueError("no texts: give --challenging_texts and/or --regular_texts "
                         "(or NeMo's --regular_texts_for_audiocontext / --regular_texts_for_textcontext)")
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


def broad_text_twins(rows: list[dict], seed: int = 0, min_len: int = 4, max_len: int = 10,
                     exclude: Iterable[str] = ()) -> list[dict]:
    """``rows`` followed by a twin of each of their groups: the same context (voice) and samples saying a
    broad-text sentence (common English words in random order, ``f5rl.data.broad_text``) instead of the
    group's text, so stage-2 prompts cover English at large and not only the corpus's sentences.
    Twin groups are named ``b00000``, ... in the order of the groups; sentences in ``exclude`` (e.g.
    held-out text) are never drawn."""
    from f5rl.data.broad_text import broad_sentences

    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    sentences = broad_sentences(len(groups), seed=seed, min_len=min_len, max_len=max_len, exclude=set(exclude))
    twins = [{**r, "id": f"b{i:05d}_s{r['sample']:02d}", "group": f"b{i:05d}", "text": text}
             for i, (members, text) in enumerate(zip(groups.values(), sentences)) for r in members]
    return [*rows, *twins]


def read_contexts(path: str) -> list[dict]:
    """The ``--audio_contexts`` JSON list, relative audio paths joined to its folder; a missing file,
    bad JSON, a missing field or a missing wav fails naming the file and the entry."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--audio_contexts {path} does not exist")
    try:
        contexts = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}): {err.msg}") from None
    if not isinstance(contexts, list):
        raise ValueError(f"{path}: expected a JSON list of {{audio_path, text, speaker}} objects")
    for i, c in enumerate(contexts):
        if not isinstance(c, dict) or "audio_path" not in c:
            raise ValueError(f"{path}: entry {i} has no audio_path")
        if not (c.get("text") or c.get("transcript")):
            raise ValueError(f"{path}: entry {i} ({c['audio_path']}) has no text (or transcript)")
        if not Path(c["audio_path"]).is_absolute():
            c["audio_path"] = str(p.parent / c["audio_path"])
        if not Path(c["audio_path"]).is_file():
            raise FileNotFoundError(f"{path}: entry {i}: audio {c['audio_path']} does not exist")
    return contexts


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--challenging_texts", help="text file, one sentence per line (said with audio contexts)")
    ap.add_argument("--regular_texts", help="text file, one sentence per line (alternating audio/text contexts)")
    ap.add_argument("--regular_texts_for_audiocontext", help="NeMo: text file of sentences said with audio contexts")
    ap.add_argument("--regular_texts_for_textcontext", help="NeMo: text file of sentences with text contexts")
    ap.add_argument("--audio_contexts", required=True,
                    help="JSON list of {audio_path, text|transcript, speaker}; relative paths are from its folder")
    ap.add_argument("--text_contexts", help="text file of style descriptions (text contexts)")
    ap.add_argument("--nsamples_perpair", type=int, default=6,
                    help="rows per text/context pair (a preference group); 1 writes a prompt list")
    ap.add_argument("--seed", type=int, default=0, help="seed of the context draw")
    ap.add_argument("--out", "--output_manifest", dest="out", required=True,
                    help="output JSONL manifest (NeMo: --output_manifest)")
    args = ap.parse_args(argv)
    from f5rl.utils.cli import one_line_errors

    with one_line_errors("create_text_context_pairs"):
        contexts = read_contexts(args.audio_contexts)
        rows = make_rows(read_lines(args.challenging_texts), read_lines(args.regular_texts), contexts,
                         read_lines(args.text_contexts), args.nsamples_perpair, args.seed,
                         read_lines(args.regular_texts_for_audiocontext),
                         read_lines(args.regular_texts_for_textcontext))
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

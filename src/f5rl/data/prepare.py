"""Turn a folder or a manifest of (audio, text) into ``data/<name>_<tokenizer>/``.

Inputs understood:

* a folder of audio files, each with a transcript beside it (``x.wav`` + ``x.txt`` or ``x.lab``),
  or with an LJSpeech-style ``metadata.csv`` (``id|text``, audio in ``wavs/<id>.wav``);
* a CSV manifest with a header (``audio_path,text`` or F5's ``audio_file|text``);
* a JSON-lines manifest with ``audio_path`` (or ``audio``) and ``text`` fields.

    python -m f5rl.data.prepare --input my_corpus/ --name my_corpus --tokenizer char

Writes ``raw/`` (``datasets.save_to_disk``), ``duration.json`` and ``vocab.txt`` (char/pinyin; a
custom vocab is copied from ``--vocab``). Everything is written to a temp folder and renamed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from f5rl.utils.cli import command_parser

log = logging.getLogger(__name__)

AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class Row:
    audio_path: str
    text: str
    duration: float


def _from_folder(folder: Path) -> list[tuple[Path, str]]:
    meta = folder / "metadata.csv"
    if meta.is_file():
        pairs = []
        for line in meta.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) >= 2:
                pairs.append((folder / "wavs" / f"{parts[0]}.wav", parts[-1].strip()))
        return pairs
    pairs = []
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXT):
        for ext in (".txt", ".lab", ".normalized.txt"):
            tr = audio.with_suffix(ext)
            if tr.is_file():
                pairs.append((audio, tr.read_text(encoding="utf-8").strip()))
                break
    return pairs


def _from_csv(path: Path) -> list[tuple[Path, str]]:
    text = path.read_text(encoding="utf-8")
    delim = "|" if "|" in text.splitlines()[0] else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    if not rows:
        return []
    key = next((k for k in ("audio_path", "audio_file", "audio") if k in rows[0]), None)
    if key is None or "text" not in rows[0]:
        raise ValueError(f"{path}: header must name an audio column (audio_path|audio_file|audio) and text")
    return [((path.parent / r[key]) if not Path(r[key]).is_absolute() else Path(r[key]), r["text"].strip())
            for r in rows]


def _from_rows(path: Path) -> list[tuple[Path, str]]:
    """A JSON-lines or TSV manifest (f5rl.data.rows): audio relative to the manifest's folder."""
    from f5rl.data.rows import read_rows

    pairs = []
    for row in read_rows(path, ("audio_path", "text"), "--input", aliases={"audio_path": ("audio",)}):
        p = Path(row["audio_path"])
        pairs.append((p if p.is_absolute() else path.parent / p, str(row["text"]).strip()))
    return pairs


def collect(input_path: str | os.PathLike) -> list[tuple[Path, str]]:
    p = Path(input_path)
    if not p.exists():
        raise FileNotFoundError(f"--input {p} does not exist")
    if p.is_dir():
        return _from_folder(p)
    if p.suffix == ".csv":
        return _from_csv(p)
    if p.suffix in (".jsonl", ".json", ".tsv"):
        return _from_rows(p)
    raise ValueError(f"--input {p}: expected a folder, a .csv, a .jsonl or a .tsv manifest")


def tokens_for_vocab(texts: list[str], tokenizer: str) -> list[str]:
    from f5rl.text.tokenizer import to_pinyin_tokens
    from f5rl.text.vocab import build_char_vocab

    if tokenizer == "pinyin":
        toks: set[str] = set()
        for t in texts:
            toks.update(to_pinyin_tokens(t))
        toks.discard(" ")
        return [" ", *sorted(toks)]
    if tokenizer == "phoneme":  # coverage by construction: every token the G2P can emit
        from f5rl.text.inventory import inventory

        return list(inventory())
    return build_char_vocab(texts)


def write_dataset(rows: list[Row], out_dir: str | os.PathLike, tokenizer: str = "char",
                  vocab_from: str | None = None, extra: dict[str, list] | None = None) -> Path:
    """Write ``raw/``, ``duration.json`` and ``vocab.txt`` atomically into ``out_dir``."""
    from datasets import Dataset

    from f5rl.text.vocab import write_vocab

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        columns = {"audio_path": [r.audio_path for r in rows], "text": [r.text for r in rows],
                   "duration": [r.duration for r in rows], **(extra or {})}
        Dataset.from_dict(columns).save_to_disk(str(tmp / "raw"))
        (tmp / "duration.json").write_text(json.dumps({"duration": columns["duration"]}))
        if tokenizer == "custom":
            if not vocab_from:
                raise ValueError("tokenizer custom needs --vocab path/to/vocab.txt")
            shutil.copy(vocab_from, tmp / "vocab.txt")
        elif tokenizer != "byte":
            write_vocab(tmp / "vocab.txt", tokens_for_vocab([r.text for r in rows], tokenizer))
        # keep anything else already in the folder (e.g. audio written beside raw/)
        if out_dir.exists():
            for name in ("raw", "duration.json", "vocab.txt"):
                target = out_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
            for child in tmp.iterdir():
                os.replace(child, out_dir / child.name)
            tmp.rmdir()
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def prepare(input_path: str, name: str, tokenizer: str = "char", data_root: str = "data",
            vocab: str | None = None, on_bad_audio: str = "stop") -> Path:
    """``on_bad_audio``: ``stop`` at the first file that cannot be read (naming it), or ``skip``
    such files and count them."""
    import soundfile as sf

    if on_bad_audio not in ("stop", "skip"):
        raise ValueError(f"--on_bad_audio {on_bad_audio}: use stop or skip")
    pairs = collect(input_path)
    if not pairs:
        raise ValueError(f"found no (audio, transcript) pairs in {input_path}")
    rows, missing, empty, unreadable = [], 0, 0, 0
    for audio, text in pairs:
        if not audio.is_file():
            missing += 1
            continue
        if not text:
            empty += 1
            continue
        try:
            duration = float(sf.info(str(audio)).duration)
        except Exception as err:  # libsndfile's error types vary
            if on_bad_audio == "stop":
                raise ValueError(f"cannot read audio {audio} ({str(err).splitlines()[0]}); fix or remove it, "
                                 "or pass --on_bad_audio skip") from None
            unreadable += 1
            continue
        rows.append(Row(str(audio.resolve()), text, duration))
    if not rows:
        raise ValueError(f"none of the {len(pairs)} listed audio files exist or all transcripts are empty")
    out = write_dataset(rows, Path(data_root) / f"{name}_{tokenizer}", tokenizer, vocab)
    durs = [r.duration for r in rows]
    outside = sum(1 for d in durs if not 0.3 <= d <= 30)
    print(f"wrote {out}: {len(rows)} items, {sum(durs) / 3600:.2f} h, {min(durs):.2f}-{max(durs):.2f} s; "
          f"skipped {missing} missing audio, {unreadable} unreadable audio, {empty} empty transcripts; "
          f"{outside} items outside 0.3-30 s "
          "will be ignored by the loader")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--input", required=True, help="folder, .csv, .jsonl or .tsv manifest")
    ap.add_argument("--name", required=True, help="dataset name (datasets.name)")
    ap.add_argument("--tokenizer", default="char", choices=("char", "pinyin", "custom", "byte", "phoneme"),
                    help="tokenizer the vocab is built for (model.tokenizer)")
    ap.add_argument("--vocab", default=None, help="vocab.txt for --tokenizer custom")
    ap.add_argument("--data_root", default="data", help="the dataset goes to DATA_ROOT/<name>_<tokenizer>")
    ap.add_argument("--on_bad_audio", default="stop", choices=("stop", "skip"),
                    help="an audio file that cannot be read: stop naming it (default), or skip and count it")
    args = ap.parse_args(argv)
    from f5rl.utils.cli import one_line_errors

    with one_line_errors("prepare"):
        prepare(args.input, args.name, args.tokenizer, args.data_root, args.vocab, args.on_bad_audio)


if __name__ == "__main__":
    main()

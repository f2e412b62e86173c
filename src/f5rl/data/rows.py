"""Reading the row files users write (JSON lines, TSV), with errors that name the file and line.

A bad line is reported as ``path:line: what is wrong`` (the true line number of the file, blank
lines counted), a missing field by name, a missing file as not existing — never a bare
``JSONDecodeError`` or ``KeyError`` from deep inside a run.

TSV (TRL's online-DPO example): ``id <TAB> audio <TAB> text``, where the audio column may be a
JSON list of paths (the first is used) and the text column may be TRL's messages (the last
assistant turn is the text). A first line ``id<TAB>audio<TAB>text`` is a header and skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def read_rows(path: str | os.PathLike, required: tuple[str, ...] = (), what: str = "manifest",
              aliases: dict[str, tuple[str, ...]] | None = None) -> list[dict]:
    """Rows of a ``.tsv`` (``id``, ``audio_path``, ``text``) or a JSON-lines file, each a dict with
    every ``required`` field; ``what`` names the file's role in errors (e.g. ``--manifest``);
    ``aliases`` maps a field to other names it may have (the first present is copied to it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.suffix.lower() == ".tsv":
        numbered = _tsv(path)
    else:
        numbered = _jsonl(path)
    for n, row in numbered:
        for key, others in (aliases or {}).items():
            if key not in row:
                found = next((o for o in others if o in row), None)
                if found is not None:
                    row[key] = row[found]
        missing = [k for k in required if k not in row]
        if missing:
            alt = [f"{k} (or {', '.join((aliases or {})[k])})" if k in (aliases or {}) else k for k in required]
            raise ValueError(f"{path}:{n}: no {', '.join(repr(k) for k in missing)} field "
                             f"(each row of a {what} needs {', '.join(alt)})")
    return [row for _, row in numbered]


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not valid JSON ({err.msg} at column {err.colno}); "
                             "one JSON object per line") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: a JSON {type(row).__name__}, not an object; one JSON object per line")
        out.append((n, row))
    return out


def _tsv(path: Path) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if n == 1 and [c.strip().lower() for c in cols[:3]] == ["id", "audio", "text"]:
            continue
        if len(cols) < 3:
            raise ValueError(f"{path}:{n}: {len(cols)} tab-separated columns; a TSV row is id, audio, text")
        out.append((n, {"id": cols[0].strip(), "audio_path": _tsv_audio(cols[1], path, n),
                        "text": _tsv_text(cols[2], path, n)}))
    return out


def _tsv_audio(col: str, path: Path, n: int) -> str:
    col = col.strip()
    if col.startswith("["):
        try:
            paths = json.loads(col)
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{n}: the audio column {col[:40]!r} is not a JSON list of paths") from None
        if not paths:
            raise ValueError(f"{path}:{n}: the audio column is an empty list")
        return str(paths[0])
    return col


def _tsv_text(col: str, path: Path, n: int) -> str:
    col = col.strip()
    if not col.startswith(("[", "{")):
        return col
    try:
        value = json.loads(col)
    except json.JSONDecodeError:
        raise ValueError(f"{path}:{n}: the text column starts like JSON but is not valid JSON") from None
    turns = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            turns += item.get("messages", [item])
    said = [t.get("content") for t in turns if isinstance(t, dict) and t.get("role") == "assistant"]
    if not said or not isinstance(said[-1], str):
        raise ValueError(f"{path}:{n}: the messages have no assistant turn with the text")
    return said[-1].strip()

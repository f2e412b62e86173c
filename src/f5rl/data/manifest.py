"""JSON-lines manifests of (audio, text): held-out prompt sets, test lists, preference data."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from f5rl.audio.io import load_audio
from f5rl.audio.mel import MelConfig, MelSpectrogram
from f5rl.data.collate import Batch
from f5rl.text.tokenizer import Tokenizer


def read_manifest(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Rows with ``audio_path`` (resolved against the manifest's folder) and ``text`` (JSON lines or TSV)."""
    from f5rl.data.rows import read_rows

    path = Path(path)
    rows = []
    for row in read_rows(path, ("audio_path", "text")):
        p = Path(row["audio_path"])
        row["audio_path"] = str(p if p.is_absolute() else path.parent / p)
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


@torch.no_grad()
def manifest_batch(rows: list[dict], tokenizer: Tokenizer, mel: MelConfig | None = None) -> Batch:
    """Load, mel and pad the rows into a :class:`Batch`."""
    fn = MelSpectrogram(mel)
    mels = [fn(load_audio(r["audio_path"], fn.config.sample_rate)[None])[0].T for r in rows]
    lens = torch.tensor([m.shape[0] for m in mels])
    out = torch.zeros(len(rows), int(lens.max()), mels[0].shape[1])
    for i, m in enumerate(mels):
        out[i, : m.shape[0]] = m
    texts = [r["text"] for r in rows]
    return Batch(out, lens, tokenizer.encode(texts), texts, [r["audio_path"] for r in rows])

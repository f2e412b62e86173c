"""JSON encoding of reward batches and outputs for the remote reward server."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import torch

from f5rl.rewards.base import RewardBatch, RewardOutput


def _enc(t: torch.Tensor | None) -> str | None:
    if t is None:
        return None
    return base64.b64encode(t.detach().float().cpu().reshape(-1).numpy().astype("<f4").tobytes()).decode()


def _dec(s: str | None) -> torch.Tensor | None:
    if s is None:
        return None
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype="<f4").copy())


def batch_to_json(b: RewardBatch) -> dict[str, Any]:
    return {
        "sample_rate": b.sample_rate, "texts": b.texts, "audio": [_enc(a) for a in b.audio],
        "ref_audio": None if b.ref_audio is None else [_enc(a) for a in b.ref_audio],
        "ref_texts": b.ref_texts, "language": b.language, "metadata": b.metadata,
        "mel": None if b.mel is None else [{"shape": list(m.shape), "data": _enc(m)} for m in b.mel],
    }


def batch_from_json(d: dict[str, Any]) -> RewardBatch:
    mel = None
    if d.get("mel") is not None:
        mel = [_dec(m["data"]).reshape(m["shape"]) for m in d["mel"]]
    return RewardBatch(
        audio=[_dec(a) for a in d["audio"]], texts=list(d["texts"]),
        ref_audio=None if d.get("ref_audio") is None else [_dec(a) for a in d["ref_audio"]],
        ref_texts=d.get("ref_texts"), language=d.get("language"), metadata=d.get("metadata"), mel=mel,
        sample_rate=int(d.get("sample_rate", 24000)),
    )


def _floats(t: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else v for v in t.float().tolist()]


def output_to_json(o: RewardOutput) -> dict[str, Any]:
    return {"scores": _floats(o.scores), "components": {k: _floats(v) for k, v in o.components.items()},
            "reasons": o.reasons}


def output_from_json(d: dict[str, Any]) -> RewardOutput:
    def tens(xs: list[float | None]) -> torch.Tensor:
        return torch.tensor([math.nan if x is None else x for x in xs], dtype=torch.float32)

    return RewardOutput(tens(d["scores"]), {k: tens(v) for k, v in d["components"].items()},
                        list(d.get("reasons") or [None] * len(d["scores"])))

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


def _enc_meta(value: Any) -> Any:
    """Metadata values as JSON: tensors and arrays (e.g. ``gt_audio``) become tagged float32 blobs."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(value)
        return {"__tensor__": _enc(t), "shape": list(t.shape)}
    if isinstance(value, dict):
        return {str(k): _enc_meta(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_enc_meta(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"reward batch metadata value of type {type(value).__name__} cannot be sent to a reward server")


def _dec_meta(value: Any) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return _dec(value["__tensor__"]).reshape(value["shape"])
        return {k: _dec_meta(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dec_meta(v) for v in value]
    return value


def batch_to_json(b: RewardBatch) -> dict[str, Any]:
    return {
        "sample_rate": b.sample_rate, "texts": b.texts, "audio": [_enc(a) for a in b.audio],
        "ref_audio": None if b.ref_audio is None else [_enc(a) for a in b.ref_audio],
        "ref_texts": b.ref_texts, "language": b.language,
        "metadata": None if b.metadata is None else [_enc_meta(m) for m in b.metadata],
        "mel": None if b.mel is None else [{"shape": list(m.shape), "data": _enc(m)} for m in b.mel],
    }


def batch_from_json(d: dict[str, Any]) -> RewardBatch:
    """A reward batch from its JSON form; a malformed body raises ``ValueError`` naming the problem."""
    if not isinstance(d, dict):
        raise ValueError(f"the body must be a JSON object, got {type(d).__name__}")
    if not isinstance(d.get("audio"), list) or not isinstance(d.get("texts"), list):
        raise ValueError("the body needs lists 'audio' and 'texts'")
    if int(d.get("sample_rate", 24000)) <= 0:
        raise ValueError(f"sample_rate must be > 0, got {d.get('sample_rate')}")
    metadata = d.get("metadata")
    if metadata is not None and not (isinstance(metadata, list) and all(isinstance(m, dict) for m in metadata)):
        raise ValueError("'metadata' must be a list of objects (one per clip) or null")
    mel = None
    if d.get("mel") is not None:
        mel = [_dec(m["data"]).reshape(m["shape"]) for m in d["mel"]]
    return RewardBatch(
        audio=[_dec(a) for a in d["audio"]], texts=list(d["texts"]),
        ref_audio=None if d.get("ref_audio") is None else [_dec(a) for a in d["ref_audio"]],
        ref_texts=d.get("ref_texts"), language=d.get("language"),
        metadata=None if metadata is None else [_dec_meta(m) for m in metadata], mel=mel,
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

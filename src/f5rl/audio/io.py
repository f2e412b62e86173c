"""Audio file input/output and resampling (soundfile + soxr; no torchaudio)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from f5rl.utils.atomic import atomic_path

TARGET_SAMPLE_RATE = 24000


def resample(audio: np.ndarray | Tensor, orig_sr: int, target_sr: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling of a mono ``(s,)`` or batched ``(b, s)`` signal with soxr."""
    import soxr

    arr = audio.detach().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
    arr = arr.astype(np.float32, copy=False)
    if orig_sr == target_sr:
        return arr
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    if arr.ndim == 1:
        return soxr.resample(arr, orig_sr, target_sr, quality="HQ").astype(np.float32)
    # soxr treats columns as channels: (s, b)
    return soxr.resample(arr.T, orig_sr, target_sr, quality="HQ").T.astype(np.float32).copy()


def load_audio(path: str | os.PathLike, target_sr: int = TARGET_SAMPLE_RATE) -> Tensor:
    """Read any soundfile-supported file (wav/flac/ogg...), mix to mono, resample; returns ``(s,)``."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises a bare RuntimeError/LibsndfileError
        raise ValueError(f"cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} is empty")
    mono = data.mean(axis=1)
    return torch.from_numpy(resample(mono, sr, target_sr))


def save_audio(path: str | os.PathLike, audio: Tensor | np.ndarray, sample_rate: int = TARGET_SAMPLE_RATE) -> Path:
    """Write a 16-bit wav atomically (temp file in the same folder, then rename)."""
    import soundfile as sf

    arr = audio.detach().float().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio, np.float32)
    arr = np.clip(arr.reshape(-1), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, arr, sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


TARGET_RMS = 0.1  # F5-TTS raises quiet prompts to this RMS


def raise_quiet(audio: torch.Tensor, target_rms: float = TARGET_RMS) -> torch.Tensor:
    """Mono float audio with a quiet signal raised to ``target_rms`` (F5-TTS's prompt rule)."""
    audio = audio.float().reshape(-1)
    rms = audio.square().mean().sqrt()
    return audio * (target_rms / rms) if 0 < rms < target_rms else audio

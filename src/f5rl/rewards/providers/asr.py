"""Shared logic of ASR rewards: reference choice, error rate, reward = 1 − error."""

from __future__ import annotations

import abc

import numpy as np
import torch

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.text_metrics import error_rate


class ASRReward(RewardProvider):
    """Subclasses implement :meth:`transcribe` on 16 kHz clips (``sample_rate``).

    ``ref_source=text`` compares the transcript with the target text; ``ref_source=audio``
    compares it with the transcript of the ground-truth audio (``metadata[i]["gt_audio"]``,
    else the speaker reference audio), as F5R-TTS does to factor out ASR errors on the voice.
    The error is clipped at ``max_error`` so one babbling sample cannot dominate a group.

    ``shifts_ms``: transcribe each clip after each of these amounts of leading silence and average the
    error. A few ms change nothing a listener hears but move every STFT frame the recogniser sees, and
    Whisper's verdict on a generated clip moves with them (tiny.en agrees with itself 5 ms later at a
    within-item Spearman of 0.44 on the demo base's samples): averaging over shifts removes that noise
    of the recogniser's own from the reward (docs/grpo_measurements.md). Default ``[0]``."""

    components = ("char_error_rate", "accuracy")
    sample_rate = 16000

    def __init__(self, wer_mode: str = "char", ref_source: str = "text", language: str = "en",
                 max_error: float = 1.0, shifts_ms=(0.0,), **kw) -> None:
        super().__init__(**kw)
        if wer_mode not in ("char", "word"):
            raise ValueError(f"wer_mode={wer_mode!r}; use char or word")
        if ref_source not in ("text", "audio"):
            raise ValueError(f"ref_source={ref_source!r}; use text or audio")
        self.wer_mode, self.ref_source = wer_mode, ref_source
        self.default_language, self.max_error = language, max_error
        self.err_name = "char_error_rate" if wer_mode == "char" else "word_error_rate"
        self.components = (self.err_name, "accuracy")
        self.shifts_ms = _check_shifts(shifts_ms)
        self.last_transcripts: list[str] = []

    @abc.abstractmethod
    def transcribe(self, clips: list[np.ndarray], languages: list[str]) -> list[str]:
        """Transcripts of 16 kHz clips."""

    def references(self, batch: RewardBatch, languages: list[str]) -> list[str]:
        if self.ref_source == "text":
            return list(batch.texts)
        from f5rl.audio.io import resample

        clips = []
        for i in range(len(batch)):
            meta = (batch.metadata or [{}] * len(batch))[i] or {}
            gt = meta.get("gt_audio")
            if gt is None:
                gt = batch.ref_audio[i] if batch.ref_audio is not None else None
            if gt is None:
                raise ValueError("ref_source=audio needs metadata['gt_audio'] or ref_audio for every sample")
            clips.append(resample(torch.as_tensor(gt).float().reshape(-1).numpy(), batch.sample_rate, self.sample_rate))
        return self.transcribe(clips, languages)

    def compute(self, batch: RewardBatch) -> RewardOutput:
        langs = [batch.lang(i, self.default_language) for i in range(len(batch))]
        clips = batch.resampled(self.sample_rate)
        n = len(clips)
        shifted = [np.concatenate([np.zeros(round(ms * self.sample_rate / 1000), np.float32), c])
                   if ms else c for ms in self.shifts_ms for c in clips]
        hyps = self.transcribe(shifted, langs * len(self.shifts_ms))  # every shift in one batch
        refs = self.references(batch, langs)
        self.last_transcripts = hyps[:n]
        err = torch.tensor([min(error_rate(refs[k % n], h, self.wer_mode), self.max_error)
                            for k, h in enumerate(hyps)]).view(len(self.shifts_ms), n).mean(0)
        return RewardOutput(1.0 - err, {self.err_name: err, "accuracy": 1.0 - err})


def _check_shifts(shifts_ms) -> list[float]:
    """``shifts_ms`` as a non-empty list of milliseconds in [0, 100], or one line saying what to give."""
    try:
        out = [float(ms) for ms in shifts_ms] if isinstance(shifts_ms, (list, tuple)) else []
    except (TypeError, ValueError):
        out = []
    if not out or not all(0.0 <= ms <= 100.0 for ms in out):
        raise ValueError(f"shifts_ms={shifts_ms!r}: give a list of leading silences in ms, each in [0, 100] "
                         "(e.g. [0, 5, 10, 15]; [0] transcribes each clip once)")
    return out

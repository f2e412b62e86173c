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
    The error is clipped at ``max_error`` so one babbling sample cannot dominate a group."""

    components = ("char_error_rate", "accuracy")
    sample_rate = 16000

    def __init__(self, wer_mode: str = "char", ref_source: str = "text", language: str = "en",
                 max_error: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        if wer_mode not in ("char", "word"):
            raise ValueError(f"wer_mode={wer_mode!r}; use char or word")
        if ref_source not in ("text", "audio"):
            raise ValueError(f"ref_source={ref_source!r}; use text or audio")
        self.wer_mode, self.ref_source = wer_mode, ref_source
        self.default_language, self.max_error = language, max_error
        self.err_name = "char_error_rate" if wer_mode == "char" else "word_error_rate"
        self.components = (self.err_name, "accuracy")
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
        hyps = self.transcribe(batch.resampled(self.sample_rate), langs)
        refs = self.references(batch, langs)
        self.last_transcripts = hyps
        err = torch.tensor([min(error_rate(r, h, self.wer_mode), self.max_error) for r, h in zip(refs, hyps)])
        return RewardOutput(1.0 - err, {self.err_name: err, "accuracy": 1.0 - err})

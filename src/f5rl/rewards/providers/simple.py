"""Cheap rule-based rewards for smoke tests and shaping, and DNSMOS quality.

* ``duration``: ``−|log(duration / expected)|``, expected from ``metadata["target_duration"]``
  or from the text length at ``chars_per_second``;
* ``mel_energy``: ``−|mean log-mel energy − target|`` of the generated mel (needs ``mel`` in
  the batch; deterministic, so GRPO tests can check that a reward really rises);
* ``dnsmos``: Microsoft DNSMOS P.835 (overall MOS; the ONNX models ship with ``speechmos``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider, require
from f5rl.rewards.registry import register


@register("duration")
class DurationReward(RewardProvider):
    components = ("duration", "log_ratio")

    def __init__(self, chars_per_second: float = 14.0, **kw) -> None:
        super().__init__(**kw)
        self.chars_per_second = chars_per_second

    def compute(self, batch: RewardBatch) -> RewardOutput:
        dur = torch.tensor([a.numel() / batch.sample_rate for a in batch.audio])
        expected = []
        for i, text in enumerate(batch.texts):
            meta = (batch.metadata or [{}] * len(batch))[i] or {}
            expected.append(meta.get("target_duration") or max(len(text), 1) / self.chars_per_second)
        ratio = torch.log(dur.clamp_min(1e-3) / torch.tensor(expected, dtype=torch.float32))
        return RewardOutput(-ratio.abs(), {"duration": dur, "log_ratio": ratio})


@register("mel_energy")
class MelEnergyReward(RewardProvider):
    components = ("energy",)

    def __init__(self, target: float = -4.0, **kw) -> None:
        super().__init__(**kw)
        self.target = target

    def compute(self, batch: RewardBatch) -> RewardOutput:
        if batch.mel is None:
            raise ValueError("mel_energy scores the generated mel: pass RewardBatch(mel=[...])")
        energy = torch.stack([m.float().mean() for m in batch.mel]).cpu()
        return RewardOutput(-(energy - self.target).abs(), {"energy": energy})


@register("dnsmos")
class DNSMOSReward(RewardProvider):
    components = ("ovrl", "sig", "bak")
    sample_rate = 16000

    def setup(self, device="cpu") -> None:
        self.dnsmos = require("speechmos.dnsmos", "mos")

    def compute(self, batch: RewardBatch) -> RewardOutput:
        rows = []
        for clip in batch.resampled(self.sample_rate):
            clip = np.clip(clip, -1.0, 1.0)
            if len(clip) < self.sample_rate // 4:
                rows.append((math.nan,) * 3)
                continue
            r = self.dnsmos.run(clip, sr=self.sample_rate)
            rows.append((r["ovrl_mos"], r["sig_mos"], r["bak_mos"]))
        t = torch.tensor(rows, dtype=torch.float32)
        return RewardOutput(t[:, 0].clone(), {"ovrl": t[:, 0], "sig": t[:, 1], "bak": t[:, 2]},
                            ["clip shorter than 0.25 s" if math.isnan(r[0]) else None for r in rows])

"""Best-of-N reranking: synthesise N candidates (seeds seed … seed+N−1) in one batch and keep
the one the reward providers like best — the standard workaround for skipped or repeated words."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from f5rl.infer.tts import TTS, Synthesis
from f5rl.rewards.base import RewardBatch
from f5rl.rewards.combine import RewardSet


@dataclass
class Ranked:
    best: Synthesis
    index: int
    rewards: Tensor  # (N,) combined, NaN where unscorable
    metrics: dict[str, list[float]]  # per-candidate provider scores and components


def best_of_n(tts: TTS, rewards: RewardSet, ref_audio: Tensor, ref_text: str, text: str, n: int, seed: int = 0,
              **kw) -> Ranked:
    if n < 1:
        raise ValueError(f"--best_of {n}: need at least one candidate")
    cands = tts.synthesize_batch([ref_audio] * n, [ref_text] * n, [text] * n, [seed + i for i in range(n)], **kw)
    scored = rewards(RewardBatch([c.audio for c in cands], [text] * n, ref_audio=[ref_audio] * n,
                                 mel=[c.mel for c in cands]))
    r = scored.reward
    if torch.isnan(r).all():
        raise RuntimeError("no candidate could be scored; check the reward providers")
    idx = int(torch.nan_to_num(r, nan=-float("inf")).argmax())
    return Ranked(cands[idx], idx, r, {k: v.tolist() for k, v in scored.metrics.items()})

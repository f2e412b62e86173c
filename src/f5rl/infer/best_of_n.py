"""Best-of-N reranking: synthesise N candidates (seeds seed … seed+N−1) in one batch and keep
the one the reward providers like best — the standard workaround for skipped or repeated words."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from f5rl.infer.tts import TTS, Synthesis
from f5rl.rewards.base import RewardBatch
from f5rl.rewards.combine import CombinedReward, RewardSet


@dataclass
class Ranked:
    best: Synthesis
    index: int
    rewards: Tensor  # (N,) combined, NaN where unscorable
    metrics: dict[str, list[float]]  # per-candidate provider scores and components


def rank(rewards: RewardSet, audios: list[Tensor], text: str, ref_audio: Tensor,
         mels: list[Tensor] | None = None) -> tuple[int, CombinedReward]:
    """Score the candidates of one text with ``rewards``; the index of the best (unscorable ones last)."""
    n = len(audios)
    scored = rewards(RewardBatch(list(audios), [text] * n, ref_audio=[ref_audio] * n, mel=mels))
    if torch.isnan(scored.reward).all():
        raise RuntimeError("no candidate could be scored; check the reward providers")
    return int(torch.nan_to_num(scored.reward, nan=-float("inf")).argmax()), scored


def best_of_n(tts: TTS, rewards: RewardSet, ref_audio: Tensor, ref_text: str, text: str, n: int, seed: int = 0,
              **kw) -> Ranked:
    if n < 1:
        raise ValueError(f"--best_of {n}: need at least one candidate")
    cands = tts.synthesize_batch([ref_audio] * n, [ref_text] * n, [text] * n, [seed + i for i in range(n)], **kw)
    idx, scored = rank(rewards, [c.audio for c in cands], text, ref_audio, [c.mel for c in cands])
    return Ranked(cands[idx], idx, scored.reward, {k: v.tolist() for k, v in scored.metrics.items()})

"""Scoring stage-2 rollouts: vocode them, run the reward set, summarise the rewards."""

from __future__ import annotations

import logging

import torch

from f5rl.data.collate import Batch
from f5rl.rewards.base import RewardBatch
from f5rl.rewards.combine import CombinedReward, RewardSet
from f5rl.rl.grpo import Advantages
from f5rl.rollout.record import Rollout

log = logging.getLogger(__name__)


class RolloutScorer:
    """Vocodes rollouts (and their ground truths) and scores them with a :class:`RewardSet`."""

    def __init__(self, rewards: RewardSet, vocoder, vocoder_batch: int = 16, span: str = "auto") -> None:
        self.rewards, self.vocoder, self.vocoder_batch, self.span = rewards, vocoder, vocoder_batch, span

    def vocode(self, mels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Audio of each ``(frames, m)`` mel, vocoded ``vocoder_batch`` at a time among clips of
        equal length (no padding reaches the vocoder, so a clip's audio does not depend on its batch)."""
        out: list[torch.Tensor | None] = [None] * len(mels)
        by_len: dict[int, list[int]] = {}
        for i, m in enumerate(mels):
            by_len.setdefault(m.shape[0], []).append(i)
        for idx in by_len.values():
            for s in range(0, len(idx), self.vocoder_batch):
                chunk = idx[s: s + self.vocoder_batch]
                audio = self.vocoder(torch.stack([mels[i] for i in chunk]).transpose(1, 2).float().cpu())
                for j, i in enumerate(chunk):
                    out[i] = audio[j]
        return out

    @torch.no_grad()
    def reward_batch(self, ro: Rollout, batch: Batch, copies: int) -> RewardBatch:
        """Vocode the outputs and, once per prompt, the ground truth (the speaker reference: the
        utterance, or a synthesis prompt's audio). ``copies``: consecutive rows sharing one prompt.

        A synthesis prompt's output is scored as inference returns it, the generated speech against the
        new text (``span`` auto); an infilled utterance, and every output with ``span`` full, as the
        whole output (prompt + generation) against the whole text."""
        generated_only = self.span == "auto" and batch.target_texts is not None
        n = len(batch)
        outs = self.vocode([ro.generated(j) if generated_only else ro.mel[j, : int(ro.durations[j])] for j in range(n)])
        texts = list(batch.target_texts if generated_only else batch.texts)
        firsts = list(range(0, len(batch), copies))
        ref_lens = batch.reference_lengths
        gts = self.vocode([batch.mel[j, : int(ref_lens[j])] for j in firsts])
        refs = [gts[j // copies] for j in range(len(batch))]
        return RewardBatch(outs, texts, ref_audio=refs,
                           mel=[ro.generated(j).cpu() for j in range(len(batch))],
                           metadata=[{"gt_audio": r} for r in refs])

    def __call__(self, ro: Rollout, batch: Batch, copies: int) -> CombinedReward:
        """Vocode and score a batch of rollouts with the reward set (``copies`` consecutive rows are
        one group, for ``rl.rewards.mode=group_normalized_sum``)."""
        return self.rewards(self.reward_batch(ro, batch, copies), torch.arange(len(batch)) // copies)


def reward_metrics(scored: CombinedReward, adv: Advantages) -> dict[str, float]:
    """Logged statistics of one update's rewards (NaN = unscorable, left out)."""
    r = scored.reward
    ok = ~torch.isnan(r)
    nan = float("nan")
    metrics = {
        "reward/mean": float(r[ok].mean()) if ok.any() else nan,
        "reward/std": float(r[ok].std(unbiased=False)) if ok.any() else nan,
        "reward/min": float(r[ok].min()) if ok.any() else nan,
        "reward/max": float(r[ok].max()) if ok.any() else nan,
        "reward/nan_ratio": float((~ok).float().mean()),
        "stats/zero_std_ratio": float(adv.zero_std_ratio),
        "stats/low_spread_ratio": float(adv.low_spread_ratio),
    }
    for name, v in scored.metrics.items():
        vals = v[~torch.isnan(v)]
        if len(vals):
            metrics[name] = float(vals.mean())
    return metrics


class UnscorableGuard:
    """Counts updates in which no reward could be scored on any process (a reward server down, a
    provider that raises on every batch): such an update must train nothing, since its advantages
    would all be 0 and only the KL term would move the policy; ``limit`` of them in a row stop the run."""

    def __init__(self, limit: int, accelerator) -> None:
        self.limit, self.accelerator, self.streak = limit, accelerator, 0

    def nothing_scored(self, scored: CombinedReward, update_index: int) -> bool:
        """True when no process scored any reward this update (the same answer on every process)."""
        acc = self.accelerator
        n = torch.tensor([int((~torch.isnan(scored.reward)).sum())], device=acc.device)
        if acc.num_processes > 1:
            n = acc.reduce(n, "sum")
        if int(n) > 0:
            self.streak = 0
            return False
        self.streak += 1
        reasons = "; ".join(sorted({r for out in scored.outputs.values() for r in (out.reasons or []) if r})[:3])
        log.warning("update %d: no reward could be scored (%d in a row); skipped. Reasons: %s",
                    update_index + 1, self.streak, reasons or "none given")
        if self.streak >= self.limit:
            raise RuntimeError(
                f"every reward of the last {self.limit} updates was unscorable (rl.max_unscorable_updates="
                f"{self.limit}); reasons: {reasons or 'none given'}. Check the reward providers "
                "(rl.rewards.providers: model paths, the reward server) before training on")
        return True

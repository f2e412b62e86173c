"""Flow-matching preference losses (DESIGN §9), pure functions.

For a pair, chosen (w) and rejected (l) share noise x0, time t and infill mask; ``e`` is the
flow-matching error ``mean((v − u)²)`` over target elements, for the policy θ and the frozen
reference. Lower error = higher implicit likelihood (Diffusion-DPO, Wallace et al. 2023), so the
implicit reward of a sample is ``−(β/2)(e^θ − e^ref)`` and

    Δ = −½ [(e_w^θ − e_w^ref) − (e_l^θ − e_l^ref)]       (implicit log-ratio gap, chosen − rejected)
    dpo:  L = −(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)           (ε = label smoothing)
    ipo:  L = (Δ − 1/(2β))²                              (Azar et al. 2023)
    rpo:  L = −[p*·log σ(βΔ) + (1−p*)·log σ(−βΔ)],  p* = σ(η·(r_w − r_l))
          (reward-aware: the target preference strength follows the pair's reward gap)

With policy = reference, Δ = 0 and the DPO loss is log 2.

Which times t the errors are taken at is a weighting of the objective (Diffusion-DPO averages over
t ~ U(0, 1)). ``preference_times`` maps u ~ U(0, 1) into a window ``[lo, hi]`` with sway: near the
noise end (t → 0) the network predicts its mean mel for the text and prompt, which is where the
words and their timing are decided; later times refine acoustic detail that chosen and rejected
samples share. A window on early times is MixGRPO's choice of early ODE steps for GRPO.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from f5rl.rl.grpo import PolicyLoss
from f5rl.utils.timegrid import sway

LOSS_TYPES = ("dpo", "ipo", "rpo")


def preference_times(u: Tensor, time_range: Sequence[float] = (0.0, 1.0), sway_coef: float = 0.0) -> Tensor:
    """``t = lo + (hi − lo)·sway(u, s)`` for ``u`` in [0, 1] (any shape): uniform over the window
    when ``s = 0``, packed towards its noise end when ``s < 0`` (F5-TTS's inference sway)."""
    lo, hi = time_range
    return lo + (hi - lo) * sway(u, sway_coef)


def best_and_worst(rewards: Tensor, group_ids: Tensor) -> tuple[list[int], list[int]]:
    """Online DPO pairs: per group, the index of its best and of its worst scorable rollout.

    ``rewards (b,)`` with NaN = unscorable, ``group_ids (b,)``. Groups with fewer than two
    scorable members, or whose scorable rewards are all equal, give no pair."""
    best, worst = [], []
    for g in group_ids.unique().tolist():
        members = [i for i in (group_ids == g).nonzero().view(-1).tolist() if not torch.isnan(rewards[i])]
        if len(members) < 2:
            continue
        r = rewards[members]
        if float(r.max() - r.min()) <= 1e-12:
            continue
        best.append(members[int(r.argmax())])
        worst.append(members[int(r.argmin())])
    return best, worst


def implicit_gap(e_w: Tensor, e_l: Tensor, e_w_ref: Tensor, e_l_ref: Tensor) -> Tensor:
    """``Δ (b,)``: positive when the policy improved the chosen more than the rejected."""
    return -0.5 * ((e_w - e_w_ref) - (e_l - e_l_ref))


def preference_loss(e_w: Tensor, e_l: Tensor, e_w_ref: Tensor, e_l_ref: Tensor, beta: float, loss_type: str = "dpo",
                    label_smoothing: float = 0.0, reward_gap: Tensor | None = None, rpo_eta: float = 1.0
                    ) -> PolicyLoss:
    """Mean loss over pairs; all error inputs ``(b,)``."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type={loss_type!r}; use one of {LOSS_TYPES}")
    gap = implicit_gap(e_w, e_l, e_w_ref, e_l_ref)
    logits = beta * gap
    if loss_type == "dpo":
        losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    elif loss_type == "ipo":
        losses = (gap - 1 / (2 * beta)).square()
    else:
        if reward_gap is None:
            raise ValueError("loss_type=rpo needs the reward gap of each pair")
        target = torch.sigmoid(rpo_eta * reward_gap.to(logits.dtype))
        losses = -(target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits))
    with torch.no_grad():
        chosen_reward = -0.5 * beta * (e_w - e_w_ref)
        rejected_reward = -0.5 * beta * (e_l - e_l_ref)
        metrics = {
            # a tie (Δ = 0, e.g. policy == reference) is a coin flip, not a wrong answer: chance is 0.5
            "dpo/accuracy": ((gap > 0).float() + 0.5 * (gap == 0).float()).mean(),
            "dpo/margin": (chosen_reward - rejected_reward).mean(),
            "dpo/chosen_reward": chosen_reward.mean(),
            "dpo/rejected_reward": rejected_reward.mean(),
        }
    return PolicyLoss(losses.mean(), metrics)

"""Chosen/rejected pairs from scored generations (DESIGN §9 step 3), pure logic.

Within each group (the N samples of one text/context pair) candidates are ranked by Pareto
front on (CER ↓, SIM ↑), ties broken by CER then SIM; the best is chosen and the worst rejected
(optionally the two best against the two worst). A pair is dropped when the rejected sample
beats the chosen on either metric, when the chosen CER exceeds ``cer_threshold``, or when a
duration lies outside ``[min_duration, max_duration]``; groups with a failed score or missing
members are skipped. Every drop is counted by reason.

``rank_by=NAME`` ranks by one reward instead (``reward/NAME`` in each sample's row, written by
``prefs.generate --extra_rewards NAME``, e.g. ``dnsmos`` or ``duration``; higher is better): the
highest is chosen, the lowest rejected, and a group whose two are equal is dropped.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Candidate:
    id: str
    group: str
    cer: float
    sim: float
    duration: float
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(math.isnan(v) for v in (self.cer, self.sim, self.duration))

    def score(self, name: str) -> float:
        """``reward/<name>`` of this sample (NaN when it was not scored)."""
        v = self.row.get(f"reward/{name}")
        return float(v) if isinstance(v, (int, float)) else math.nan


def dominates(a: Candidate, b: Candidate) -> bool:
    return a.cer <= b.cer and a.sim >= b.sim and (a.cer < b.cer or a.sim > b.sim)


def pareto_order(cands: list[Candidate]) -> list[Candidate]:
    """Best first: front index, then CER ascending, then SIM descending."""
    rest, fronts = list(cands), {}
    level = 0
    while rest:
        front = [c for c in rest if not any(dominates(o, c) for o in rest if o is not c)]
        for c in front:
            fronts[c.id] = level
        rest = [c for c in rest if c.id not in fronts]
        level += 1
    return sorted(cands, key=lambda c: (fronts[c.id], c.cer, -c.sim))


@dataclass
class PairReport:
    train: list[dict]
    val: list[dict]
    groups: int
    dropped: Counter

    def render(self) -> str:
        lines = [f"groups: {self.groups}, pairs: {len(self.train)} train + {len(self.val)} val"]
        lines += [f"  dropped ({reason}): {n}" for reason, n in sorted(self.dropped.items())]
        return "\n".join(lines)


def _pair(chosen: Candidate, rejected: Candidate) -> dict:
    return {"group": chosen.group, "chosen": chosen.row, "rejected": rejected.row,
            "chosen_cer": chosen.cer, "rejected_cer": rejected.cer, "chosen_sim": chosen.sim,
            "rejected_sim": rejected.sim}


def build_pairs(cands: list[Candidate], group_size: int, cer_threshold: float = 1.0, min_duration: float = 0.0,
                max_duration: float = float("inf"), val_size: int = 0, two_per_group: bool = False,
                seed: int = 0, rank_by: str | None = None) -> PairReport:
    if group_size < 2:
        raise ValueError(f"--group_size {group_size}: must be >= 2 (a pair is the best and the worst of a group)")
    if val_size < 0:
        raise ValueError(f"--val_size {val_size}: must be >= 0")
    groups: dict[str, list[Candidate]] = {}
    for c in cands:
        groups.setdefault(c.group, []).append(c)
    dropped: Counter = Counter()
    pairs: list[dict] = []
    for name in sorted(groups):
        members = groups[name]
        if len(members) < group_size:
            dropped["incomplete_group"] += 1
            continue
        if any(c.failed or (rank_by and math.isnan(c.score(rank_by))) for c in members):
            dropped["failed_scoring"] += 1
            continue
        if rank_by:
            order = sorted(members, key=lambda c: -c.score(rank_by))
        else:
            order = pareto_order(members)
        k = 2 if two_per_group and len(order) >= 4 else 1
        for chosen, rejected in zip(order[:k], reversed(order[-k:])):
            if not all(min_duration <= c.duration <= max_duration for c in (chosen, rejected)):
                dropped["duration"] += 1
            elif chosen.cer > cer_threshold:
                dropped["chosen_cer_above_threshold"] += 1
            elif rank_by and not chosen.score(rank_by) > rejected.score(rank_by):
                dropped["no_reward_spread"] += 1
            elif not rank_by and (rejected.cer < chosen.cer or rejected.sim > chosen.sim):
                dropped["rejected_beats_chosen"] += 1
            else:
                pairs.append(_pair(chosen, rejected))
    # split by group so a text never appears in both train and val
    group_names = sorted({p["group"] for p in pairs})
    if val_size and val_size >= len(group_names):
        raise ValueError(f"--val_size {val_size} would leave no training pairs: only {len(group_names)} groups "
                         f"made a pair; use a smaller --val_size")
    random.Random(seed).shuffle(group_names)
    val_groups = set(group_names[:val_size])
    return PairReport([p for p in pairs if p["group"] not in val_groups],
                      [p for p in pairs if p["group"] in val_groups], len(groups), dropped)

"""Combining several providers into one scalar reward per sample (pure functions + a runner).

All combiners are NaN-aware per sample: if any provider could not score a sample, that sample's
combined reward is NaN (the trainer drops it from its group); other samples are unaffected.

* ``sum``: ``Σ_k w_k r_k`` (F5R default weights: SIM 1.0, ASR 3.0);
* ``normalized_sum``: each provider's scores standardised over the batch's valid samples first;
* ``group_normalized_sum``: each provider's scores standardised within each GRPO group (the rollouts
  of one prompt) first — the z-scored weighted sum of FlowTTS-GRPO. Within a group a speaker
  similarity spreads by ~0.01 while CER spreads by ~0.1, so in a plain sum SIM barely moves the
  group's ranking whatever its weight; standardised, each provider's weight is its share of the ranking;
* ``rank_shaping``: each provider's scores replaced by their rank in the batch scaled to [0, 1];
* ``harmonic`` (LLaSA): utilities ``U_cer = 1 − tanh(β_c·CER)``, ``U_nll = exp(−NLL/τ_n)`` and
  ``R = (λ_c + λ_n) / (λ_c/U_cer + λ_n/U_nll)``, a weighted harmonic mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.registry import build_provider

MODES = ("sum", "normalized_sum", "group_normalized_sum", "rank_shaping", "harmonic")


def _valid(scores: Tensor) -> Tensor:
    """(k, b) -> (b,) true where every provider scored the sample."""
    return ~torch.isnan(scores).any(dim=0)


def weighted_sum(scores: Tensor, weights: Tensor) -> Tensor:
    """``scores (k, b)``, ``weights (k,)`` → ``(b,)``; NaN where any provider is NaN."""
    out = (weights.unsqueeze(1) * scores).sum(dim=0)
    return torch.where(_valid(scores), out, torch.full_like(out, math.nan))


def normalized_sum(scores: Tensor, weights: Tensor, eps: float = 1e-6) -> Tensor:
    """Standardise each provider over the valid samples, then the weighted sum (the batch is one group)."""
    return group_normalized_sum(scores, weights, torch.zeros(scores.shape[1], dtype=torch.long), eps)


def group_normalized_sum(scores: Tensor, weights: Tensor, groups: Tensor, eps: float = 1e-6) -> Tensor:
    """``scores (k, b)``, ``weights (k,)``, ``groups (b,)`` → ``(b,)``: each provider standardised over
    the valid samples of each group (population std), then the weighted sum; NaN where any provider is NaN."""
    z = torch.full_like(scores, math.nan)
    ok = _valid(scores)
    for g in torch.unique(groups):
        members = ok & (groups == g)
        if members.any():
            s = scores[:, members]
            z[:, members] = (s - s.mean(dim=1, keepdim=True)) / (s.std(dim=1, unbiased=False, keepdim=True) + eps)
    return weighted_sum(z, weights)


def rank_shaping(scores: Tensor, weights: Tensor) -> Tensor:
    """Ranks (ties averaged) of each provider's valid scores scaled to [0, 1], then weighted."""
    ok = _valid(scores)
    r = torch.full_like(scores, math.nan)
    n = int(ok.sum())
    if n == 1:
        r[:, ok] = 0.5
    elif n > 1:
        s = scores[:, ok]
        less = (s.unsqueeze(2) > s.unsqueeze(1)).sum(dim=2).float()  # strictly smaller values
        equal = (s.unsqueeze(2) == s.unsqueeze(1)).sum(dim=2).float()
        r[:, ok] = (less + (equal - 1) / 2) / (n - 1)
    return weighted_sum(r, weights)


# LLaSA's harmonic reward: its parameters and defaults (rl.rewards.params under mode=harmonic)
HARMONIC_DEFAULTS = {"beta_c": 10.0, "tau_n": 1.0, "lambda_c": 0.5, "lambda_n": 0.5}
# which provider component feeds CER / NLL ("label/component"; default: the first that has one)
HARMONIC_SOURCES = ("cer_from", "nll_from")


def check_params(mode: str, params: dict[str, Any]) -> None:
    """``rl.rewards.params`` holds the harmonic combiner's parameters: unknown names are refused, and
    under any other mode a value that differs from its default would do nothing, so it is refused too."""
    known = (*HARMONIC_DEFAULTS, *HARMONIC_SOURCES)
    for key, value in params.items():
        if key not in known:
            raise ValueError(f"rl.rewards.params.{key} is not a parameter of any combiner; "
                             f"mode=harmonic takes {', '.join(known)}")
        if mode != "harmonic" and value != HARMONIC_DEFAULTS.get(key):
            raise ValueError(f"rl.rewards.params.{key}={value} only applies to rl.rewards.mode=harmonic "
                             f"(mode is {mode}): set the mode or drop the parameter")


def harmonic(cer: Tensor, nll: Tensor, beta_c: float = 10.0, tau_n: float = 1.0, lambda_c: float = 0.5,
             lambda_n: float = 0.5) -> Tensor:
    """LLaSA harmonic reward from per-sample CER and NLL ``(b,)``."""
    u_cer = 1 - torch.tanh(beta_c * cer)
    u_nll = torch.exp(-nll / tau_n)
    return (lambda_c + lambda_n) / (lambda_c / u_cer.clamp_min(1e-8) + lambda_n / u_nll.clamp_min(1e-8))


@dataclass
class ProviderSpec:
    name: str
    weight: float = 1.0
    config: dict[str, Any] = field(default_factory=dict)
    label: str | None = None  # metric namespace (defaults to the provider name)


@dataclass
class CombinedReward:
    reward: Tensor  # (b,) combined, NaN where unscorable
    metrics: dict[str, Tensor]  # "reward/<label>/<component>" and "reward/<label>" -> (b,)
    outputs: dict[str, RewardOutput]


class RewardSet:
    """Runs every configured provider on a batch and combines their scores."""

    def __init__(self, specs: list[ProviderSpec], mode: str = "sum", params: dict[str, float] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"rl.rewards.mode={mode!r}; use one of {', '.join(MODES)}")
        if not specs:
            raise ValueError("rl.rewards.providers is empty; configure at least one reward provider")
        check_params(mode, dict(params or {}))
        self.specs, self.mode, self.params = specs, mode, dict(params or {})
        self.providers: list[RewardProvider] = [build_provider(s.name, s.config) for s in specs]
        self.labels = [s.label or s.name for s in specs]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"two reward providers share a label {self.labels}; set a distinct label for each")

    @classmethod
    def from_config(cls, providers: list[dict[str, Any]], mode: str = "sum",
                    params: dict[str, float] | None = None) -> RewardSet:
        specs = []
        for i, p in enumerate(providers):
            if "name" not in p:
                raise ValueError(f"rl.rewards.providers.{i} has no name")
            specs.append(ProviderSpec(p["name"], float(p.get("weight", 1.0)), dict(p.get("config") or {}),
                                      p.get("label")))
        return cls(specs, mode, params)

    def setup(self, device: str = "cpu") -> None:
        for p in self.providers:
            p.ensure_setup(device)

    def __call__(self, batch: RewardBatch, groups: Tensor | None = None) -> CombinedReward:
        return self.combine(self.score(batch), groups)

    def score(self, batch: RewardBatch) -> dict[str, RewardOutput]:
        """Every provider's output on ``batch``, by label (not yet combined)."""
        return {label: p(batch) for label, p in zip(self.labels, self.providers)}

    @staticmethod
    def concat(parts: list[dict[str, RewardOutput]]) -> dict[str, RewardOutput]:
        """Provider outputs of consecutive chunks of one batch, joined (each chunk scored the same providers)."""
        out = {}
        for label in parts[0]:
            outs = [p[label] for p in parts]
            names = {c for o in outs for c in o.components}
            out[label] = RewardOutput(
                torch.cat([o.scores for o in outs]),
                {c: torch.cat([o.components.get(c, torch.full_like(o.scores, math.nan)) for o in outs]) for c in names},
                [r for o in outs for r in (o.reasons or [None] * len(o.scores))])
        return out

    def combine(self, outputs: dict[str, RewardOutput], groups: Tensor | None = None) -> CombinedReward:
        """One reward per sample from the providers' outputs of one whole batch (the ``normalized_sum``
        and ``rank_shaping`` modes look at the batch as a whole). ``groups (b,)``: each sample's GRPO
        group, for ``group_normalized_sum`` (None: the batch is one group)."""
        scores = torch.stack([outputs[lb].scores for lb in self.labels])  # (k, b)
        weights = torch.tensor([s.weight for s in self.specs], dtype=torch.float32)
        if self.mode == "sum":
            reward = weighted_sum(scores, weights)
        elif self.mode == "normalized_sum":
            reward = normalized_sum(scores, weights)
        elif self.mode == "group_normalized_sum":
            reward = normalized_sum(scores, weights) if groups is None else \
                group_normalized_sum(scores, weights, groups.cpu())
        elif self.mode == "rank_shaping":
            reward = rank_shaping(scores, weights)
        else:
            reward = self._harmonic(outputs)
        reward = torch.where(torch.isfinite(reward), reward, torch.full_like(reward, math.nan))  # inf: unscorable
        metrics: dict[str, Tensor] = {}
        for label, out in outputs.items():
            metrics[f"reward/{label}"] = out.scores
            for comp, v in out.components.items():
                metrics[f"reward/{label}/{comp}"] = v
        return CombinedReward(reward, metrics, outputs)

    def comparable(self, outputs: dict[str, RewardOutput]) -> Tensor:
        """``(b,)`` rewards comparable across batches (held-out validation, checkpoint selection): the
        batch-relative modes (``normalized_sum``, ``group_normalized_sum``, ``rank_shaping``) give every
        batch mean ~0, so they are replaced by the plain weighted sum of the providers' scores."""
        if self.mode in ("sum", "harmonic"):
            return self.combine(outputs).reward
        scores = torch.stack([outputs[lb].scores for lb in self.labels])
        return weighted_sum(scores, torch.tensor([s.weight for s in self.specs], dtype=torch.float32))

    def _harmonic(self, outputs: dict[str, RewardOutput]) -> Tensor:
        p = {**HARMONIC_DEFAULTS, **self.params}
        cer_key, nll_key = p.pop("cer_from", None), p.pop("nll_from", None)
        cer = self._component(outputs, cer_key, ("char_error_rate", "word_error_rate"))
        nll = self._component(outputs, nll_key, ("nll",))
        return harmonic(cer, nll, **{k: float(v) for k, v in p.items()})

    @staticmethod
    def _component(outputs: dict[str, RewardOutput], key: str | None, names: tuple[str, ...]) -> Tensor:
        if key:
            label, _, comp = key.partition("/")
            return outputs[label].components[comp]
        for out in outputs.values():
            for n in names:
                if n in out.components:
                    return out.components[n]
        raise ValueError(f"mode=harmonic needs a provider with a {' or '.join(names)} component")

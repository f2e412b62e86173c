"""The reward-provider protocol (DESIGN §8).

A provider has a ``name``, loads its models in ``setup(device)`` (never at import) and scores a
:class:`RewardBatch`, returning per-sample scores (higher is better, NaN = could not score, with
the reason kept) and named per-sample components for logging.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)


@dataclass
class RewardBatch:
    """What a provider sees: 24 kHz audio (1-D tensors), target text, speaker reference audio,
    language and free-form metadata, one entry per sample. ``mel`` optionally carries the
    generated log-mel ``(frames, bins)`` for providers that score the mel itself."""

    audio: list[Tensor]
    texts: list[str]
    ref_audio: list[Tensor | None] | None = None
    ref_texts: list[str | None] | None = None
    language: list[str] | None = None
    metadata: list[dict[str, Any]] | None = None
    mel: list[Tensor] | None = None
    sample_rate: int = 24000
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.audio)
        for name in ("texts", "ref_audio", "ref_texts", "language", "metadata", "mel"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"RewardBatch.{name} has {len(value)} entries for {n} audio clips")

    def __len__(self) -> int:
        return len(self.audio)

    def resampled(self, sr: int) -> list[np.ndarray]:
        """Audio at ``sr`` as float32 numpy, resampled once per batch and rate."""
        return self._resample("audio", self.audio, sr)

    def ref_resampled(self, sr: int) -> list[np.ndarray | None]:
        if self.ref_audio is None:
            return [None] * len(self)
        return self._resample("ref", self.ref_audio, sr)

    def _resample(self, key: str, clips: list, sr: int) -> list:
        from f5rl.audio.io import resample

        if (key, sr) not in self._cache:
            self._cache[(key, sr)] = [
                None if c is None else resample(c.detach().float().cpu().reshape(-1).numpy(), self.sample_rate, sr)
                for c in clips
            ]
        return self._cache[(key, sr)]

    def lang(self, i: int, default: str = "en") -> str:
        return self.language[i] if self.language else default

    def subset(self, idx: list[int]) -> RewardBatch:
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        return RewardBatch([self.audio[i] for i in idx], [self.texts[i] for i in idx], pick(self.ref_audio),
                           pick(self.ref_texts), pick(self.language), pick(self.metadata), pick(self.mel),
                           self.sample_rate)


@dataclass
class RewardOutput:
    scores: Tensor  # (b,) float32; NaN where a sample could not be scored
    components: dict[str, Tensor] = field(default_factory=dict)  # name -> (b,)
    reasons: list[str | None] = field(default_factory=list)  # why a score is NaN

    @staticmethod
    def nan(n: int, reason: str, component_names: tuple[str, ...] = ()) -> RewardOutput:
        nan = torch.full((n,), math.nan)
        return RewardOutput(nan.clone(), {c: nan.clone() for c in component_names}, [reason] * n)


def _hash_sample(batch: RewardBatch, i: int) -> str:
    h = hashlib.sha1()
    h.update(batch.audio[i].detach().float().cpu().numpy().tobytes())
    h.update(batch.texts[i].encode())
    if batch.ref_audio is not None and batch.ref_audio[i] is not None:
        h.update(batch.ref_audio[i].detach().float().cpu().numpy().tobytes())
    if batch.language:
        h.update(batch.language[i].encode())
    return h.hexdigest()


class RewardProvider(abc.ABC):
    """Base class. Subclasses set ``name`` and ``components`` and implement :meth:`compute`.

    ``__call__`` sets the provider up on first use, serves repeated samples from an optional
    LRU cache keyed by an audio hash (``cache_size`` > 0), and, if scoring the batch raises,
    scores the samples one by one so a single bad sample becomes NaN rather than failing all."""

    name: ClassVar[str] = "base"
    components: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None  # the pip extra that provides its dependencies

    def __init__(self, cache_size: int = 0, device: str | None = None) -> None:
        self.cache_size = cache_size
        self.device = device
        self._cache: OrderedDict[str, tuple[float, dict[str, float], str | None]] = OrderedDict()
        self._ready = False

    def setup(self, device: str | torch.device = "cpu") -> None:  # noqa: B027 (optional hook)
        """Load models. Called once before the first batch (rule-based providers need nothing)."""

    def release(self) -> None:  # noqa: B027 (optional hook)
        """Free what slows other work while the provider sits idle (e.g. a model's worker threads);
        the next batch sets it up again. Providers with nothing of the kind need not override it."""

    @abc.abstractmethod
    def compute(self, batch: RewardBatch) -> RewardOutput:
        """Score a batch: per-sample scores ``(b,)`` and components."""

    def ensure_setup(self, device: str | torch.device | None = None) -> None:
        """Run ``setup`` once. Model loaders may seed global RNGs or change the thread count
        (FunASR does both); both are restored so training randomness is unaffected."""
        if self._ready:
            return
        import random

        threads = torch.get_num_threads()
        py_state, np_state = random.getstate(), np.random.get_state()
        # a provider set up again after release() returns to the device it was first set up on
        self._setup_device = self.device or device or getattr(self, "_setup_device", None) or "cpu"
        with torch.random.fork_rng(devices=[]):
            self.setup(self._setup_device)
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_num_threads(threads)
        self._ready = True

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        self.ensure_setup()
        n = len(batch)
        keys = [_hash_sample(batch, i) for i in range(n)] if self.cache_size > 0 else [None] * n
        todo = [i for i, k in enumerate(keys) if k is None or k not in self._cache]
        scores = torch.full((n,), math.nan)
        comps = {c: torch.full((n,), math.nan) for c in self.components}
        reasons: list[str | None] = [None] * n
        if todo:
            out = self._score_robust(batch.subset(todo) if len(todo) < n else batch)
            for j, i in enumerate(todo):
                scores[i] = out.scores[j]
                reasons[i] = out.reasons[j] if out.reasons else None
                for c, v in out.components.items():
                    comps.setdefault(c, torch.full((n,), math.nan))[i] = v[j]
                if keys[i] is not None:
                    self._remember(keys[i], float(out.scores[j]), {c: float(v[j]) for c, v in out.components.items()},
                                   reasons[i])
        for i, k in enumerate(keys):
            if k is not None and i not in todo:
                s, cs, r = self._cache[k]
                self._cache.move_to_end(k)
                scores[i], reasons[i] = s, r
                for c, v in cs.items():
                    comps.setdefault(c, torch.full((n,), math.nan))[i] = v
        for i, r in enumerate(reasons):
            if torch.isnan(scores[i]) and r:
                log.warning("reward %s: sample %d not scored: %s", self.name, i, r)
        return RewardOutput(scores, comps, reasons)

    def _score_robust(self, batch: RewardBatch) -> RewardOutput:
        try:
            out = self.compute(batch)
        except Exception as err:  # scoring code of third-party models raises anything
            if len(batch) == 1:
                return RewardOutput.nan(1, f"{type(err).__name__}: {err}", self.components)
            log.warning("reward %s: batch scoring failed (%s); scoring samples one by one", self.name, err)
            parts = [self._score_robust(batch.subset([i])) for i in range(len(batch))]
            names = {c for p in parts for c in p.components}
            return RewardOutput(
                torch.cat([p.scores for p in parts]),
                {c: torch.cat([p.components.get(c, torch.full((1,), math.nan)) for p in parts]) for c in names},
                [r for p in parts for r in (p.reasons or [None])],
            )
        if out.scores.shape != (len(batch),):
            raise ValueError(f"reward {self.name} returned scores of shape {tuple(out.scores.shape)} "
                             f"for a batch of {len(batch)}")
        if not out.reasons:
            out.reasons = [None] * len(batch)
        out.scores = out.scores.float()
        # ±inf (e.g. an NLL whose probability underflowed) is no score: it would turn the group's
        # advantages and the loss into NaN. It counts as unscorable, with a reason.
        for i in torch.isinf(out.scores).nonzero().view(-1).tolist():
            out.reasons[i] = f"non-finite score {float(out.scores[i])}"
            out.scores[i] = math.nan
        return out

    def _remember(self, key: str, score: float, comps: dict[str, float], reason: str | None) -> None:
        self._cache[key] = (score, comps, reason)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def require(module: str, extra: str):
    """Import an optional dependency, or fail naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"this reward needs {module}: pip install 'f5rl[{extra}]'") from err

"""Validation between training steps and ``model_best.pt``, for every stage.

* :class:`KeepBest`: the one rule for ``ckpts.keep_best_by``/``keep_best_mode``; a value carried
  over from a resumed checkpoint counts only when it was measured on the same thing;
* :class:`TestListValidation`: stage 0/1's check of the EMA model on ``ckpts.val_list`` with the
  embedded judges (Whisper CER, resemblyzer SIM); stage 2 and DPO validate on their own held-out
  data (``rl.val_manifest``, ``dpo.val_manifest``) and keep the best through the same KeepBest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from f5rl.model.checkpoint import atomic_save

log = logging.getLogger(__name__)


class KeepBest:
    """Writes ``model_best.pt`` whenever ``key`` improves (``mode`` max or min)."""

    def __init__(self, key: str | None, mode: str, save_dir: Path, best: float | None = None) -> None:
        self.key, self.mode, self.save_dir, self.best = key, mode, Path(save_dir), best

    def better(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def offer(self, metrics: dict[str, float], update: int, state: Callable[[], dict]) -> bool:
        """Save ``state()`` as the best model when ``metrics[key]`` beats the best so far."""
        if not self.key or self.key not in metrics or not self.better(metrics[self.key]):
            return False
        self.best = metrics[self.key]
        atomic_save(state(), self.save_dir / "model_best.pt")
        log.info("new best %s=%.4f at update %d -> model_best.pt", self.key, self.best, update)
        return True


class TestListValidation:
    """Synthesise test lists with the EMA model and score them.

    The main list logs ``val/cer``, ``val/sim``, ...; each of ``more_lists`` (e.g. the free-text list
    beside the template list) logs ``val/<file stem>/cer``, ..., and with any of them ``val/all/cer``, ...
    are the means over the items of every list (what ``ckpts.keep_best_by`` can name to keep the model
    that is best on all of them)."""

    def __init__(self, val_list: str, size: int, nfe: int, device: str, more_lists: list[str] = ()) -> None:
        from f5rl.eval.evaluate import read_test_list
        from f5rl.rewards.registry import build_provider

        self.lists = {"val/": read_test_list(val_list)[:size],
                      **{f"val/{Path(p).stem}/": read_test_list(p)[:size] for p in more_lists}}
        self.nfe = nfe
        self.providers = {"asr": build_provider("whisper_asr"), "sim": build_provider("resemblyzer_sim")}
        for p in self.providers.values():
            p.ensure_setup(device)

    def __call__(self, model, tokenizer, mel_config, vocoder, device: str, precision: str) -> dict[str, float]:
        from f5rl.eval.evaluate import evaluate_rows, val_metrics
        from f5rl.infer.tts import TTS

        tts = TTS(model, tokenizer, mel_config, vocoder, device, precision)
        metrics, every = {}, []
        for prefix, items in self.lists.items():
            rows = evaluate_rows(tts, items, self.providers, nfe=self.nfe)
            metrics.update(val_metrics(rows, prefix))
            every += rows
        if len(self.lists) > 1:
            metrics.update(val_metrics(every, "val/all/"))
        for p in self.providers.values():
            p.release()  # idle Whisper threads would slow the training steps that follow
        return metrics

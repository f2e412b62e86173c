"""The training loop of every stage: orchestration only (losses live in ``model``/``rl``/``rollout``).

:meth:`Trainer.train` owns the loop for stages 0/1, stage 2 and DPO. Per update it takes
``optim.grad_accumulation_steps`` micro-batches and hands them to :meth:`Trainer.update_step`
(stage 0/1 and DPO: backward of :meth:`compute_loss` per micro-batch, then :meth:`optimizer_step`;
stage 2 overrides it with one GRPO update), then steps the schedule and the EMA, validates
(:meth:`periodic_validation`), logs and saves. Hooks: :meth:`on_train_start`, :meth:`update_step`,
:meth:`compute_loss`, :meth:`periodic_validation`, :meth:`build_dataset`, :meth:`data_shard`.

Exact resume: batches come from a sampler that is deterministic per epoch, the global RNG state
is saved with every checkpoint and restored after set-up, the data loader draws from its own
generator, and micro-batches are counted across epoch boundaries, so training N updates straight
equals training N/2, stopping and resuming.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from f5rl.config.loading import flat_config, write_config
from f5rl.config.schema import TrainConfig
from f5rl.data.collate import Batch, Collate
from f5rl.data.dataset import TTSDataset, resolve_dataset_dir
from f5rl.data.sampler import build_loader, endless_batches
from f5rl.model.build import build_cfm, mel_config, tokenizer_for
from f5rl.train.checkpointing import CheckpointManager, choose_start, load_initial_weights, restore, rng_state
from f5rl.train.ema import EMA
from f5rl.train.loggers import MetricsFile, build_logger
from f5rl.train.optim import build_optimizer, build_scheduler
from f5rl.train.summary import StepResult, TrainSummary
from f5rl.train.validation import KeepBest, TestListValidation
from f5rl.utils.precision import allow_new_precision, resolve_precision

log = logging.getLogger(__name__)

__all__ = ["StepResult", "TrainSummary", "Trainer"]


class Trainer:
    # Stage 0/1 run their loss through the DDP-wrapped module, which averages gradients itself;
    # trainers whose losses call the network directly (stage 2, DPO) average them explicitly.
    explicit_grad_sync = False
    # Stage 0/1 train with the architecture's dropout; stage 2 and DPO compare the policy with
    # itself (PPO ratio) or with a dropout-free reference, so they evaluate it without dropout.
    dropout_in_training = True
    progress_label = "train"
    # Stage 0/1 learn the text rows of their corpus: a phoneme token reads as itself even where the vocab's
    # token_counts.json says its row was never trained, and the save dir records what was trained. Stage 2
    # rolls out as synthesis reads text (the fallback included), so it neither.
    trains_text_rows = True

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.skipped_updates = 0  # optimiser steps skipped for a non-finite gradient
        self.update_index = 0  # the update being computed (0-based)

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.cfg
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(cfg.optim.mixed_precision, device)
        allow_new_precision(self.precision)
        self.accelerator = Accelerator(mixed_precision=self.precision, cpu=device.type == "cpu")
        self.device = self.accelerator.device
        set_seed(cfg.optim.seed)
        self.save_dir = Path(cfg.ckpts.save_dir)
        self.ckpts = CheckpointManager(self.save_dir, cfg.ckpts.keep_last_n_checkpoints)

        data_dir = resolve_dataset_dir(cfg.datasets, cfg.model)
        self.tokenizer = tokenizer_for(cfg.model, data_dir)
        self.mel_config = mel_config(cfg.model)
        self.dataset, collate = self.build_dataset(data_dir)
        self._record_trained_tokens(data_dir)
        self.sampler, self.loader = build_loader(self.dataset, collate, cfg.datasets, cfg.optim.seed,
                                                 *self.data_shard())
        k = cfg.optim.grad_accumulation_steps
        self.micro_per_epoch = len(self.sampler)
        self.total_updates = cfg.optim.total_updates or self.micro_per_epoch * cfg.optim.epochs // k
        if self.total_updates == 0:
            raise ValueError(
                f"{self.micro_per_epoch} batches x {cfg.optim.epochs} epochs is less than one update of "
                f"optim.grad_accumulation_steps={k}"
            )
        self.stop_update = min(self.total_updates, cfg.optim.max_updates or self.total_updates)

        model = build_cfm(cfg.model, self.tokenizer.vocab_size)
        o = cfg.optim
        start = choose_start(self.ckpts.find_resume(cfg.ckpts.init_from), self.run_kind())
        if self.accelerator.is_main_process and self.ckpts.from_another_stage(start):
            self.ckpts.keep_start(start.path)
        self.resume_point = load_initial_weights(model, start, self.save_dir)
        self.adapt_model(model)
        self.ema = EMA(model, beta=o.ema_beta, update_after_step=o.ema_update_after_step,
                       update_every=o.ema_update_every) if self.accelerator.is_main_process else None
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = build_optimizer(trainable, o.learning_rate, o.weight_decay, o.bnb_optimizer, self.device)
        warmup = o.num_warmup_updates if o.warmup_ratio is None else round(o.warmup_ratio * self.total_updates)
        self.scheduler = build_scheduler(optimizer, warmup, self.total_updates)
        self.keep_best = KeepBest(cfg.ckpts.keep_best_by, cfg.ckpts.keep_best_mode, self.save_dir)
        self.start_update = self._resume(model, optimizer, self.resume_point)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if self.ema is not None:
            self.ema.to(self.device)
        self.logger = None
        self.metrics_file = MetricsFile(self.save_dir / "metrics.jsonl") if self.accelerator.is_main_process else None
        if self.metrics_file is not None:
            self.metrics_file.truncate_after(self.start_update)
        self._vocoder = self._build_vocoder() if cfg.ckpts.log_samples and self.accelerator.is_main_process else None
        self._setup_validation()
        if self.accelerator.is_main_process:
            write_config(self.cfg, self.save_dir / "config.yaml")

    @property
    def policy(self):
        """The trained velocity network (the DiT inside the CFM, unwrapped from DDP)."""
        return self.accelerator.unwrap_model(self.model).transformer

    @property
    def best(self) -> float | None:
        """The ``keep_best_by`` value of ``model_best.pt`` (None before any)."""
        return self.keep_best.best

    def _record_trained_tokens(self, data_dir: Path | None) -> None:
        """Phoneme models: ``token_counts.json`` in the save dir gains this corpus's token counts (and those
        of the weights the run started from), and validation reads untrained tokens by that record."""
        if not (self.trains_text_rows and self.tokenizer.kind == "phoneme" and data_dir is not None):
            return
        from dataclasses import replace

        from f5rl.data.coverage import record_training
        from f5rl.text.inventory import COUNTS_FILE, Fallback, load_counts

        initial = self.ckpts.initial_weights(self.cfg.ckpts.init_from)
        if self.accelerator.is_main_process:
            record_training(self.save_dir, data_dir, lambda: list(self.dataset.table["text"]), initial)
        self.accelerator.wait_for_everyone()
        counts = load_counts(self.save_dir / COUNTS_FILE)
        self.tokenizer = replace(self.tokenizer, fallback=Fallback(self.tokenizer.vocab, counts))

    def _setup_validation(self) -> None:
        """Stage 0/1 validation on a small test list with the reward models' metrics (val/cer, ...)."""
        c = self.cfg.ckpts
        self.test_list_validation = None
        if c.val_list and c.val_every > 0 and self.accelerator.is_main_process:
            self.test_list_validation = TestListValidation(c.val_list, c.val_size, c.val_nfe, str(self.device),
                                                           c.val_lists)
            if self._vocoder is None:
                self._vocoder = self._build_vocoder()

    def run_validation(self, update: int) -> dict[str, float]:
        """Evaluate the EMA model between training steps; keep ``model_best.pt`` by ``keep_best_by``."""
        metrics = self.test_list_validation(self.ema.ema_model, self.tokenizer, self.mel_config, self._vocoder,
                                            str(self.device), self.precision)
        self.keep_best.offer(metrics, update, lambda: self.checkpoint_state(update))
        return metrics

    def _build_vocoder(self):
        """Built at set-up so a vocoder that cannot load fails before training, not at the first save."""
        from f5rl.audio.vocoder import build_vocoder

        v = self.cfg.model.vocoder
        return build_vocoder(v.name, v.local_path if v.is_local else None, self.mel_config, v.griffin_lim_iters)

    def build_dataset(self, data_dir):
        """The training set and its collate function (a dataset exposes ``frame_lens``)."""
        cfg = self.cfg
        ds = TTSDataset(data_dir, self.mel_config, cfg.datasets.min_duration, cfg.datasets.max_duration)
        return ds, Collate(self.tokenizer.for_training() if self.trains_text_rows else self.tokenizer)

    def compute_loss(self, batch):
        """One micro-batch's loss (a LossOutput); stage 0/1: the CFM objective."""
        return self.model(batch.mel, batch.text, batch.mel_lengths)

    def build_reference(self, source: str | None):
        """A frozen reference network (:func:`f5rl.train.reference.build_reference`)."""
        from f5rl.train.reference import build_reference

        return build_reference(self.policy, source, self.cfg.model.lora.enabled,
                               self.ckpts.initial_weights(self.cfg.ckpts.init_from),
                               self.resume_point.kind == "resume", self.device)

    def data_shard(self) -> tuple[int, int]:
        """(number of distinct data shards, this process's shard): one per process."""
        return self.accelerator.num_processes, self.accelerator.process_index

    def adapt_model(self, model) -> None:
        """Wrap layers with LoRA adapters when ``model.lora.enabled``, or freeze all but ``model.train_only``
        (after loading base weights)."""
        lc = self.cfg.model.lora
        if lc.enabled:
            from f5rl.model.lora import apply_lora

            apply_lora(model.transformer, lc.rank, lc.alpha, lc.dropout, tuple(lc.targets), tuple(lc.train_also))
        elif self.cfg.model.train_only:
            from f5rl.model.build import train_only

            n = train_only(model.transformer, self.cfg.model.train_only)
            log.info("model.train_only=%s: %.3fM trainable parameters", self.cfg.model.train_only, n / 1e6)

    def _resume(self, model, optimizer, point) -> int:
        if point.kind != "resume":
            return 0
        update, self.keep_best.best = restore(point.path, model, self.ema, optimizer, self.scheduler,
                                              self._best_measured_on())
        return update

    # ------------------------------------------------------------------ loop
    def train(self) -> TrainSummary:
        cfg, acc = self.cfg, self.accelerator
        k = cfg.optim.grad_accumulation_steps
        if acc.is_main_process:
            self.logger = build_logger(cfg.ckpts.logger, cfg.ckpts.project, cfg.ckpts.run_name,
                                       flat_config(cfg), self.save_dir)
        update = self.start_update
        summary = TrainSummary(update, self.start_update, None, 0.0, str(self.save_dir), precision=self.precision,
                               total_updates=self.total_updates, num_processes=acc.num_processes)
        from tqdm import tqdm

        bar = tqdm(total=self.stop_update, initial=update, desc=self.progress_label, unit="upd",
                   disable=not acc.is_main_process, dynamic_ncols=True)
        self.on_train_start()
        t0 = time.perf_counter()
        self.model.train(self.dropout_in_training)
        stream = endless_batches(self.loader, self.sampler, self.start_update * k, self.device)
        while update < self.stop_update:
            batches = [next(stream) for _ in range(k)]
            self.update_index = update
            lr = self.scheduler.get_last_lr()[0]  # the rate this update used
            metrics = self.update_step(batches)
            self.scheduler.step()
            update += 1
            if self.ema is not None:
                self.ema.update(acc.unwrap_model(self.model))
            metrics["lr"] = lr
            metrics["updates_per_s"] = (update - self.start_update) / (time.perf_counter() - t0)
            metrics.update(self.periodic_validation(update))
            summary.final_loss = metrics.get("loss")
            summary.unscorable_updates += int(metrics.get("stats/unscorable_update", 0))
            out_of_time = self.out_of_time(t0)
            self._log(metrics, update, bar)
            self._maybe_save(update, batches[-1], summary, final=update >= self.stop_update or out_of_time)
            if out_of_time:
                log.info("optim.max_minutes=%g reached after %d updates; stopping", cfg.optim.max_minutes, update)
                summary.stopped_by_time = True
                break
        return self._finish(summary, bar, update, t0)

    def out_of_time(self, t0: float) -> bool:
        """``optim.max_minutes`` spent on any process (so all processes stop after the same update)."""
        limit = self.cfg.optim.max_minutes
        if limit is None:
            return False
        acc = self.accelerator
        flag = torch.tensor([float(time.perf_counter() - t0 >= limit * 60)], device=acc.device)
        if acc.num_processes > 1:
            flag = acc.reduce(flag, "sum")
        return bool(flag.item() > 0)

    def on_train_start(self) -> None:
        """Called once before the first update of :meth:`train` (stage 2: validation at update 0)."""

    def update_step(self, batches: list[Batch]) -> dict[str, float]:
        """One update from its micro-batches: backward of each loss / k, then one optimiser step."""
        acc, k = self.accelerator, len(batches)
        loss_sum, sums = 0.0, {}
        for i, batch in enumerate(batches):
            with acc.autocast():
                out = self.compute_loss(batch)
            loss = out.loss / k
            if i == k - 1:
                acc.backward(loss)
            else:
                with acc.no_sync(self.model):
                    acc.backward(loss)
            loss_sum += loss.item()
            for name, v in out.metrics.items():
                sums[name] = sums.get(name, 0.0) + v.item() / k
        return {"loss": loss_sum, **sums, **self.optimizer_step().metrics()}

    def optimizer_step(self) -> StepResult:
        """Average gradients over processes where DDP did not, measure their norm, clip, step.

        A non-finite gradient norm (a NaN or infinite loss anywhere, on any process: the average
        carries it to all) skips the step on every process alike and is counted, so one bad
        batch never reaches the weights. Under fp16 the gradient scaler's own step skips it and
        lowers the scale."""
        from f5rl.train.distributed import all_reduce_gradients

        acc, o = self.accelerator, self.cfg.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.explicit_grad_sync:
            all_reduce_gradients(params, acc.num_processes)
        norm = float(acc.clip_grad_norm_(params, o.max_grad_norm if o.max_grad_norm > 0 else float("inf")))
        skipped = not math.isfinite(norm)
        if skipped:
            self.skipped_updates += 1
            log.warning("update %d: gradient norm is %s; optimiser step skipped (%d so far)",
                        self.update_index + 1, norm, self.skipped_updates)
        if not skipped or self.precision == "fp16":
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(norm, skipped)

    def periodic_validation(self, update: int) -> dict[str, float]:
        """Validation between training steps (stage 0/1: ``ckpts.val_list`` every ``ckpts.val_every``)."""
        if self.test_list_validation is not None and update % self.cfg.ckpts.val_every == 0:
            return self.run_validation(update)
        return {}

    def _finish(self, summary: TrainSummary, bar, update: int, t0: float) -> TrainSummary:
        """End of the training loop: close the bar and logger, write ``summary.json``, sync processes."""
        bar.close()
        summary.updates = update
        summary.skipped_updates = self.skipped_updates
        summary.wall_seconds = time.perf_counter() - t0
        if self.logger is not None:
            self.logger.finish()
        if self.accelerator.is_main_process:
            if self.metrics_file is not None:
                from f5rl.train.curves import write_curves

                summary.curves = write_curves(self.metrics_file.path)
            summary.write(self.save_dir)  # how and why the run stopped, for benchmarks and users to read
        self.accelerator.wait_for_everyone()
        return summary

    def _log(self, metrics: dict[str, float], update: int, bar) -> None:
        if not self.accelerator.is_main_process:
            return
        bar.update(1)
        bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}", lr=f"{metrics['lr']:.2e}",
                        ups=f"{metrics['updates_per_s']:.2f}")
        if update % self.cfg.ckpts.log_every == 0 or update == self.stop_update:
            self.logger.log(metrics, step=update)
            self.metrics_file.log(metrics, update)

    def run_kind(self) -> dict[str, str]:
        """What this run is, recorded in its checkpoints: only a run of the same kind resumes one."""
        return {"trainer": "train", "objective": self.cfg.model.objective}

    def checkpoint_state(self, update: int) -> dict:
        return {
            "run_kind": self.run_kind(),
            "model_state_dict": self.accelerator.unwrap_model(self.model).state_dict(),
            "ema_model_state_dict": self.ema.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "scheduler_state_dict": self.scheduler.state_dict(),
            "update": update,
            "rng_state": rng_state(),
            "best_metric": self.best,  # the keep_best_by value of model_best.pt (None before any)
            "best_metric_on": self._best_measured_on(),
        }

    def _best_measured_on(self) -> dict:
        """What ``best_metric`` was measured on: a resumed run compares only like with like."""
        c = self.cfg.ckpts
        return {"metric": c.keep_best_by, "val_list": str(c.val_list), "val_size": c.val_size, "val_nfe": c.val_nfe}

    def _maybe_save(self, update: int, batch: Batch, summary: TrainSummary, final: bool) -> None:
        c = self.cfg.ckpts
        numbered = update % c.save_per_updates == 0 and c.keep_last_n_checkpoints != 0
        last = update % c.last_per_updates == 0 or final
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process or not (numbered or last):
            return
        state = self.checkpoint_state(update)
        if numbered:
            summary.add_checkpoint(self.ckpts.save(state, update))
        if last:
            summary.add_checkpoint(self.ckpts.save(state, update, last=True))
        if c.log_samples and (numbered or final):
            summary.samples.extend(self.log_samples(update, batch))

    def log_samples(self, update: int, batch: Batch) -> list[str]:
        """``update_<N>_gen.wav`` and ``update_<N>_ref.wav`` (:func:`f5rl.train.samples.prompted_sample`)."""
        from f5rl.train.samples import prompted_sample

        c = self.cfg
        return prompted_sample(self.accelerator.unwrap_model(self.model), batch, self.tokenizer, self._vocoder,
                               self.save_dir / "samples", update, c.ckpts.sample_steps, c.ckpts.sample_cfg_strength,
                               c.model.sample_from_dist, self.precision, self.device)

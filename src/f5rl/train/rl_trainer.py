"""Stage-2 trainer (GRPO over ODE rollouts): orchestration only.

Per update: take ``B`` ground-truth utterances, repeat each ``group_size × mini_repeat_count``
times, split each into prompt and target, roll out the policy with sampled Gaussian velocities,
vocode the outputs and score them with the reward providers, turn rewards into group-relative
advantages, then take ``inner_epochs`` optimiser steps on the chosen ODE steps (``rl.loss``:
principled ``grpo`` or F5R-parity ``f5r``). Math lives in ``f5rl.rl``; rollouts in
``f5rl.rollout``; checkpoints, resume and logging are shared with stage 0/1.
"""

from __future__ import annotations

import logging
import random
import time
import warnings

import torch

from f5rl.config.schema import RLTrainConfig
from f5rl.data.collate import Batch
from f5rl.model.dit import DiT
from f5rl.rewards.base import RewardBatch
from f5rl.rewards.combine import RewardSet
from f5rl.rl.grpo import group_advantages
from f5rl.rl.stage2 import choose_train_steps, f5r_step_loss, grpo_step_loss
from f5rl.rollout.gaussian import Rollout, gaussian_rollout
from f5rl.rollout.prompts import prompt_lengths
from f5rl.train.trainer import Trainer, TrainSummary

log = logging.getLogger(__name__)


class RLTrainer(Trainer):
    cfg: RLTrainConfig

    def data_shard(self) -> tuple[int, int]:
        """With ``rl.repeat_count`` = R, processes come in blocks of R that see the same prompts
        (F5R's layout: one GRPO group spans R processes)."""
        r = self.cfg.rl.repeat_count
        return max(self.accelerator.num_processes // r, 1), self.accelerator.process_index // r

    def setup(self) -> None:
        super().setup()
        rl = self.cfg.rl
        if self.accelerator.num_processes > 1:
            # processes sharing prompts must draw different rollouts; exact resume is single-process only
            torch.manual_seed(self.cfg.optim.seed * 1009 + self.accelerator.process_index * 7919 + self.start_update)
        if self.cfg.optim.grad_accumulation_steps != 1:
            raise ValueError("stage 2 takes one optimiser step per rollout batch: set optim.grad_accumulation_steps=1")
        self.group = rl.group_size * rl.mini_repeat_count * rl.repeat_count
        if rl.repeat_count > 1 and self.accelerator.num_processes % rl.repeat_count:
            raise ValueError(f"rl.repeat_count={rl.repeat_count} must divide the number of processes "
                             f"({self.accelerator.num_processes})")
        self.ref = self._build_reference()
        self.rewards = RewardSet.from_config(
            [{"name": p.name, "weight": p.weight, "config": dict(p.config), "label": p.label}
             for p in rl.rewards.providers],
            rl.rewards.mode, dict(rl.rewards.params))
        self.rewards.setup(str(self.device))
        if self._vocoder is None:
            self._vocoder = self._build_vocoder()
        self.val_batch = None
        if rl.val_manifest and rl.val_every > 0:
            from f5rl.data.manifest import manifest_batch, read_manifest

            self.val_batch = manifest_batch(read_manifest(rl.val_manifest, rl.val_size), self.tokenizer,
                                            self.mel_config).to(self.device)

    def _build_reference(self) -> DiT | None:
        rl = self.cfg.rl
        if rl.reference_free or rl.kl_weight == 0:
            log.info("no reference model (rl.reference_free or rl.kl_weight=0)")
            return None
        return self.build_reference(rl.ref_model_ckpt)

    # ------------------------------------------------------------------ one update
    def _expand(self, batch: Batch) -> Batch:
        """Repeat every utterance ``group_size × mini_repeat_count`` times (consecutively)."""
        r = self.cfg.rl.group_size * self.cfg.rl.mini_repeat_count
        idx = torch.arange(len(batch), device=batch.mel.device).repeat_interleave(r)
        return Batch(batch.mel[idx], batch.mel_lengths[idx], batch.text[idx],
                     [batch.texts[i] for i in idx.tolist()], [batch.audio_paths[i] for i in idx.tolist()])

    def rollout(self, batch: Batch, policy: DiT, generator: torch.Generator | None = None) -> Rollout:
        rl = self.cfg.rl
        lens = batch.mel_lengths.clamp(max=rl.max_duration)
        prompts = prompt_lengths(lens, tuple(rl.prompt_frac_range), rl.prompt_length_mode, generator)
        use_cfg = rl.cfg_prob >= 1 or float(torch.rand((), generator=generator)) < rl.cfg_prob
        was_training = policy.training
        policy.train(rl.rollout_dropout)
        ro = gaussian_rollout(
            policy, batch.mel[:, : int(lens.max())], batch.text, lens, prompts, steps=rl.steps,
            steps_plus_one=rl.steps_plus_one, cfg_strength=rl.cfg_strength if use_cfg else 0.0,
            sway_sampling_coef=rl.sway_sampling_coef, precision=self.precision, generator=generator,
            mode=rl.rollout, sde_noise=rl.sde_noise,
        )
        policy.train(was_training)
        return ro

    @torch.no_grad()
    def score(self, ro: Rollout, batch: Batch):
        """Vocode full outputs (prompt + generation) and the ground truth; run the reward set."""
        outs, refs = [], []
        n = self.cfg.rl.rewards.vocoder_batch
        for i in range(0, len(batch), n):
            for j in range(i, min(i + n, len(batch))):
                d = int(ro.durations[j])
                outs.append(self._vocoder(ro.mel[j:j + 1, :d].transpose(1, 2).float().cpu())[0])
                gt = batch.mel[j:j + 1, : int(batch.mel_lengths[j])]
                refs.append(self._vocoder(gt.transpose(1, 2).float().cpu())[0])
        rb = RewardBatch(outs, list(batch.texts), ref_audio=refs,
                         mel=[ro.generated(j).cpu() for j in range(len(batch))],
                         metadata=[{"gt_audio": r} for r in refs])
        return self.rewards(rb)

    def group_ids(self, b: int) -> torch.Tensor:
        """Group of each local rollout: consecutive copies of one prompt share a group."""
        return torch.arange(b) // (self.cfg.rl.group_size * self.cfg.rl.mini_repeat_count)

    def advantages(self, rewards: torch.Tensor):
        """Group-relative advantages; with ``repeat_count`` > 1 the group spans processes, so
        rewards are gathered first and each process keeps its own slice."""
        rl, acc = self.cfg.rl, self.accelerator
        local_ids = self.group_ids(len(rewards))
        if rl.repeat_count == 1:
            return group_advantages(rewards, local_ids, rl.adv_eps, rl.adv_clip)
        gathered = acc.gather(rewards.to(self.device)).cpu()  # (P·b,) in process order
        b = len(rewards)
        proc = torch.arange(acc.num_processes).repeat_interleave(b)
        # processes p and q hold copies of the same prompts when p // repeat_count == q // repeat_count
        ids = (proc // rl.repeat_count) * 100_000 + local_ids.repeat(acc.num_processes)
        out = group_advantages(gathered, ids, rl.adv_eps, rl.adv_clip)
        sl = slice(acc.process_index * b, (acc.process_index + 1) * b)
        out.adv, out.valid = out.adv[sl], out.valid[sl]
        out.group_mean, out.group_std = out.group_mean[sl], out.group_std[sl]
        return out

    def rl_update(self, batch: Batch) -> dict[str, float]:
        rl, acc = self.cfg.rl, self.accelerator
        policy = acc.unwrap_model(self.model).transformer
        batch = self._expand(batch)
        t0 = time.perf_counter()
        ro = self.rollout(batch, policy)
        ref_ro = None
        if rl.loss == "f5r" and self.ref is not None and rl.kl_weight > 0:
            ref_ro = self.rollout(batch, self.ref)  # F5R: an independent reference rollout
        t_roll = time.perf_counter() - t0
        scored = self.score(ro, batch)
        t_reward = time.perf_counter() - t0 - t_roll
        adv = self.advantages(scored.reward)
        if self.group == 1:
            warnings.warn("GRPO groups have one member: advantages are zero and only the KL term trains", stacklevel=2)
        a, valid = adv.adv.to(self.device), adv.valid.to(self.device)
        metrics: dict[str, float] = {}
        self.model.train()
        if rl.loss == "online_dpo":
            metrics.update(self.online_dpo_update(ro, batch, scored.reward))
            rl_steps_done = True
        else:
            rl_steps_done = False
        # a per-update stream (not one long one) so a resumed run picks the same steps
        step_rng = random.Random(self.cfg.optim.seed * 1_000_003 + self.update_index)
        for _ in range(0 if rl_steps_done else rl.inner_epochs):
            steps = choose_train_steps(ro.steps, rl.train_steps_mode, rl.train_steps, step_rng, rl.loss,
                                       rl.skip_grad_prob)
            self.optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for k in steps:
                with acc.autocast():
                    if rl.loss == "grpo":
                        out = grpo_step_loss(policy, self.ref, ro, k, a, valid, rl.clip_eps, rl.kl_weight)
                    else:
                        out = f5r_step_loss(policy, ref_ro, self.ref, ro, k, a, rl.kl_weight)
                acc.backward(out.loss / len(steps))
                sums["loss"] = sums.get("loss", 0.0) + out.loss.item() / len(steps)
                for name, v in out.metrics.items():
                    sums[name] = sums.get(name, 0.0) + float(v) / len(steps)
            if self.cfg.optim.max_grad_norm > 0:
                sums["grad_norm"] = float(acc.clip_grad_norm_(self.model.parameters(), self.cfg.optim.max_grad_norm))
            self.optimizer.step()
            metrics.update(sums)
            metrics["stats/kept_steps"] = float(len(steps))
        self.optimizer.zero_grad(set_to_none=True)
        r = scored.reward
        ok = ~torch.isnan(r)
        metrics.update({
            "reward/mean": float(r[ok].mean()) if ok.any() else float("nan"),
            "reward/std": float(r[ok].std(unbiased=False)) if ok.any() else float("nan"),
            "reward/min": float(r[ok].min()) if ok.any() else float("nan"),
            "reward/max": float(r[ok].max()) if ok.any() else float("nan"),
            "reward/nan_ratio": float((~ok).float().mean()),
            "stats/zero_std_ratio": float(adv.zero_std_ratio),
            "time/rollout_s": t_roll, "time/reward_s": t_reward,
            "time/update_s": time.perf_counter() - t0 - t_roll - t_reward,
        })
        for name, v in scored.metrics.items():
            vals = v[~torch.isnan(v)]
            if len(vals):
                metrics[name] = float(vals.mean())
        self._last = (ro, batch)
        return metrics

    def online_dpo_update(self, ro: Rollout, batch: Batch, rewards: torch.Tensor) -> dict[str, float]:
        """Online DPO: each group's best and worst rollout form a pair; the flow-matching DPO
        loss (shared x0, t and span) against the reference, one optimiser step per inner epoch."""
        from f5rl.rl.dpo import preference_loss

        rl, acc = self.cfg.rl, self.accelerator
        ids = self.group_ids(len(rewards))
        best, worst = [], []
        for g in ids.unique().tolist():
            members = [i for i in (ids == g).nonzero().view(-1).tolist() if not torch.isnan(rewards[i])]
            if len(members) < 2:
                continue
            r = rewards[members]
            if float(r.max() - r.min()) <= 1e-12:
                continue
            best.append(members[int(r.argmax())])
            worst.append(members[int(r.argmin())])
        if not best:
            return {"stats/dpo_pairs": 0.0}
        cfm = acc.unwrap_model(self.model)
        bi, wi = torch.tensor(best), torch.tensor(worst)
        x_w, x_l = ro.mel[bi].float(), ro.mel[wi].float()
        n = x_w.shape[1]
        mask = torch.arange(n, device=x_w.device)[None] < ro.durations[bi][:, None]
        span = ro.target[bi] & ro.target[wi]
        text = batch.text[bi]
        gap = (rewards[bi] - rewards[wi]).to(self.device)
        out_metrics: dict[str, float] = {"stats/dpo_pairs": float(len(best))}
        for _ in range(rl.inner_epochs):
            x0, t = torch.randn_like(x_w), torch.rand(len(best), device=x_w.device)
            self.optimizer.zero_grad(set_to_none=True)
            with acc.autocast():
                e_w = cfm.flow_errors(x_w, x0, t, text, mask, span)
                e_l = cfm.flow_errors(x_l, x0, t, text, mask, span)
                with torch.no_grad():
                    saved, cfm.transformer = cfm.transformer, self.ref
                    try:
                        r_w = cfm.flow_errors(x_w, x0, t, text, mask, span)
                        r_l = cfm.flow_errors(x_l, x0, t, text, mask, span)
                    finally:
                        cfm.transformer = saved
            out = preference_loss(e_w, e_l, r_w, r_l, rl.dpo_beta, rl.dpo_loss_type, reward_gap=gap)
            acc.backward(out.loss)
            if self.cfg.optim.max_grad_norm > 0:
                out_metrics["grad_norm"] = float(acc.clip_grad_norm_(self.model.parameters(),
                                                                     self.cfg.optim.max_grad_norm))
            self.optimizer.step()
            out_metrics.update({"loss": out.loss.item(), **{k: float(v) for k, v in out.metrics.items()}})
        return out_metrics

    @torch.no_grad()
    def validate(self, batch: Batch | None = None) -> dict[str, float]:
        """Mean reward (and components) of one rollout per held-out prompt, fixed seeds."""
        batch = batch if batch is not None else self.val_batch
        policy = self.accelerator.unwrap_model(self.model).transformer
        gen = torch.Generator(device="cpu").manual_seed(self.cfg.rl.val_seed)
        ro = self.rollout(batch, policy, generator=gen)
        scored = self.score(ro, batch)
        out = {"val/mean_reward": float(scored.reward.nanmean())}
        for name, v in scored.metrics.items():
            out["val/" + name.removeprefix("reward/")] = float(v.nanmean())
        return out

    def _maybe_validate(self, update: int) -> dict[str, float]:
        rl, c = self.cfg.rl, self.cfg.ckpts
        if self.val_batch is None or update % rl.val_every != 0:
            return {}
        metrics = self.validate()
        key = c.keep_best_by
        mode = self.cfg.ckpts.keep_best_mode
        improved = key in metrics and (self.best is None or (metrics[key] > self.best if mode == "max"
                                                             else metrics[key] < self.best)) if key else False
        if improved and self.accelerator.is_main_process and update > 0:
            from f5rl.model.checkpoint import atomic_save

            self.best = metrics[key]
            atomic_save(self.checkpoint_state(update), self.save_dir / "model_best.pt")
            log.info("new best %s=%.4f at update %d -> model_best.pt", key, self.best, update)
        return metrics

    # ------------------------------------------------------------------ loop
    def train(self) -> TrainSummary:
        from f5rl.train.loggers import build_logger
        from f5rl.train.trainer import _flat_config

        cfg, acc = self.cfg, self.accelerator
        if acc.is_main_process:
            self.logger = build_logger(cfg.ckpts.logger, cfg.ckpts.project, cfg.ckpts.run_name, _flat_config(cfg),
                                       self.save_dir)
        update = self.start_update
        summary = TrainSummary(update, self.start_update, None, 0.0, str(self.save_dir), precision=self.precision)
        t0 = time.perf_counter()
        from tqdm import tqdm

        bar = tqdm(total=self.stop_update, initial=update, desc="grpo", unit="upd", disable=not acc.is_main_process,
                   dynamic_ncols=True)
        if update == 0 and self.val_batch is not None and acc.is_main_process:
            start = self.validate()
            self.logger.log(start, step=0)
            self.metrics_file.log(start, 0)
        while update < self.stop_update:
            epoch, skip = divmod(update, self.micro_per_epoch)
            self.sampler.set_epoch(epoch, skip)
            for batch in self.loader:
                batch = batch.to(self.device)
                self.update_index = update
                lr = self.scheduler.get_last_lr()[0]  # the rate this update used
                metrics = self.rl_update(batch)
                self.scheduler.step()
                update += 1
                if self.ema is not None:
                    self.ema.update(acc.unwrap_model(self.model))
                metrics["lr"] = lr
                metrics["updates_per_s"] = (update - self.start_update) / (time.perf_counter() - t0)
                metrics.update(self._maybe_validate(update))
                summary.final_loss = metrics.get("loss")
                self._log(metrics, update, bar)
                self._maybe_save(update, batch, summary, final=update >= self.stop_update)
                if update >= self.stop_update:
                    break
        return self._finish(summary, bar, update, t0)

    def log_samples(self, update: int, batch: Batch) -> list[str]:
        """The first rollout of the last update: ``update_<N>_gen.wav`` and its ground truth."""
        from f5rl.audio.io import save_audio

        ro, b = self._last
        d = int(ro.durations[0])
        folder = self.save_dir / "samples"
        gen = self._vocoder(ro.mel[:1, :d].transpose(1, 2).float().cpu())[0]
        ref = self._vocoder(b.mel[:1, : int(b.mel_lengths[0])].transpose(1, 2).float().cpu())[0]
        return [str(save_audio(folder / f"update_{update}_gen.wav", gen)),
                str(save_audio(folder / f"update_{update}_ref.wav", ref))]

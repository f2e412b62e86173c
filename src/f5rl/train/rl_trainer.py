"""Stage-2 trainer (GRPO over ODE rollouts): orchestration only.

Per update (:meth:`RLTrainer.rl_update`, top to bottom): draw each prompt's infill split once,
repeat every utterance ``group_size × mini_repeat_count`` times, roll out the policy (the σ head's
Gaussian steps or Flow-GRPO's SDE, on the steps ``rl.noise_steps`` names; deterministic Euler steps
elsewhere), vocode the outputs and score them with the reward providers, turn rewards into
group-relative advantages, then take ``inner_epochs`` optimiser steps with the loss chosen by
``rl.loss`` (:data:`LOSSES`: advantage-weighted matching ``awm``, the recipe's; PPO-clipped ``grpo``;
F5R-parity ``f5r``; ``online_dpo``). Math lives in ``f5rl.rl``; rollouts in ``f5rl.rollout``;
checkpoints, resume and logging are shared with stage 0/1.

Correctness rules that the losses rely on:
* the policy is evaluated in one mode for rollouts and loss passes (eval, i.e. no dropout, unless
  ``rl.rollout_dropout``), so the first PPO ratio is exactly 1 and the KL to the reference is 0
  before any update;
* the losses call the network directly, so gradients are averaged across processes explicitly
  before every optimiser step (:meth:`Trainer.optimizer_step`), which also skips a step whose
  gradient is not finite;
* every member of a group, on every process it spans, infills the same split of the same prompt;
* an update whose rewards are all unscorable trains nothing, and ``rl.max_unscorable_updates``
  such updates in a row stop the run.
"""

from __future__ import annotations

import atexit
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from f5rl.config.schema import RLTrainConfig
from f5rl.data.collate import Batch
from f5rl.model.dit import DiT
from f5rl.rewards.combine import CombinedReward, RewardSet
from f5rl.rl.grpo import Advantages, choose_train_steps, group_advantages
from f5rl.rollout.evaluate import f5r_step_loss, grpo_step_loss
from f5rl.rollout.gaussian import gaussian_rollout
from f5rl.rollout.prompts import prompt_lengths
from f5rl.rollout.record import Rollout, cat_rollouts, time_points
from f5rl.train.rollout_scoring import RolloutScorer, UnscorableGuard, reward_metrics
from f5rl.train.trainer import Trainer

log = logging.getLogger(__name__)


def provider_dicts(rewards) -> list[dict]:
    """``rl.rewards.providers`` as :meth:`RewardSet.from_config` takes them."""
    return [{"name": p.name, "weight": p.weight, "config": dict(p.config), "label": p.label}
            for p in rewards.providers]


def check_rewards(cfg) -> None:
    """Build (not set up) the configured reward set: an unknown provider, a config key or value it
    does not take (``wer_mode``, ``ref_source``, ...), a shared label or a combiner parameter of
    another mode fails here, at config time, before any model loads."""
    r = cfg.rl.rewards
    for i, p in enumerate(provider_dicts(r)):
        try:
            RewardSet.from_config([p], "sum")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"rl.rewards.providers.{i} ({p['name']}): {err}") from None
    RewardSet.from_config(provider_dicts(r), r.mode, dict(r.params))


class RLTrainer(Trainer):
    cfg: RLTrainConfig
    explicit_grad_sync = True  # the step losses call the policy network directly, not through DDP
    progress_label = "grpo"
    trains_text_rows = False  # rollouts read text as synthesis does

    def data_shard(self) -> tuple[int, int]:
        """With ``rl.repeat_count`` = R, processes come in blocks of R that see the same prompts
        (F5R's layout: one GRPO group spans R processes)."""
        r = self.cfg.rl.repeat_count
        return max(self.accelerator.num_processes // r, 1), self.accelerator.process_index // r

    def setup(self) -> None:
        rl = self.cfg.rl
        self.dropout_in_training = rl.rollout_dropout
        super().setup()
        if self.accelerator.num_processes > 1:
            # processes sharing prompts must draw different rollouts; exact resume is single-process only
            torch.manual_seed(self.cfg.optim.seed * 1009 + self.accelerator.process_index * 7919 + self.start_update)
        if self.cfg.optim.grad_accumulation_steps != 1:
            raise ValueError("stage 2 takes one optimiser step per rollout batch: set optim.grad_accumulation_steps=1")
        if self.cfg.model.arch.dropout > 0:
            if rl.rollout_dropout:
                log.warning("rl.rollout_dropout=true with model.arch.dropout=%g: rollouts and loss passes draw "
                            "different dropout masks, so the first PPO ratio is not 1 and the KL to the "
                            "(dropout-free) reference is not 0 before any update", self.cfg.model.arch.dropout)
            else:
                log.info("stage 2 evaluates the policy without dropout (model.arch.dropout=%g unused): rollouts, "
                         "log-probs and the loss pass see the same network", self.cfg.model.arch.dropout)
        self.group = rl.group_size * rl.mini_repeat_count * rl.repeat_count
        if rl.repeat_count > 1 and self.accelerator.num_processes % rl.repeat_count:
            raise ValueError(f"rl.repeat_count={rl.repeat_count} must divide the number of processes "
                             f"({self.accelerator.num_processes})")
        self.ref = self._build_reference()
        providers = provider_dicts(rl.rewards)
        self.reward_server = None
        if rl.rewards.process == "server":
            from f5rl.train.reward_process import RewardServerProcess

            self.reward_server = RewardServerProcess(providers, rl.rewards.server_threads, str(self.device))
            self.reward_server.start()
            atexit.register(self.reward_server.stop)  # also when training raises
            providers = self.reward_server.remote_specs()
        rewards = RewardSet.from_config(providers, rl.rewards.mode, dict(rl.rewards.params))
        rewards.setup(str(self.device))
        if self._vocoder is None:
            self._vocoder = self._build_vocoder()
        self.scorer = RolloutScorer(rewards, self._vocoder, rl.rewards.vocoder_batch, rl.rewards.score_span)
        self._score_pool = ThreadPoolExecutor(1, thread_name_prefix="reward")  # waits on the reward server
        self.unscorable = UnscorableGuard(rl.max_unscorable_updates, self.accelerator)
        self.prompt_set = None
        if rl.prompts_manifest:
            from f5rl.data.prompts import PromptSet, read_prompt_manifest

            self.prompt_set = PromptSet(read_prompt_manifest(rl.prompts_manifest), self.tokenizer, self.mel_config)
            log.info("stage-2 prompts: %d synthesis prompts from %s (not the corpus's utterances)",
                     len(self.prompt_set), rl.prompts_manifest)
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

    def run_kind(self) -> dict[str, str]:
        return {"trainer": "rl", "objective": self.cfg.rl.loss}

    # ------------------------------------------------------------------ rollouts
    @property
    def copies(self) -> int:
        """Rollouts of one prompt within a process."""
        return self.cfg.rl.group_size * self.cfg.rl.mini_repeat_count

    @property
    def shared_start(self) -> int:
        """Rollouts per block sharing their initial noise (``rl.shared_start_noise``: a group)."""
        return self.copies if self.cfg.rl.shared_start_noise else 1

    def split_generator(self) -> torch.Generator:
        """The stream of this update's prompt splits: the same on every process of a repeat block
        (they hold the same prompts), different across blocks and updates."""
        _, shard = self.data_shard()
        return torch.Generator().manual_seed((self.cfg.optim.seed * 1_000_003 + self.update_index) * 1009 + shard)

    def draw_split(self, batch: Batch, generator: torch.Generator | None) -> tuple[torch.Tensor, bool]:
        """Prompt frames ``(b,)`` of each distinct prompt and whether this batch is rolled out with CFG,
        drawn once per prompt (before the group copies exist), so every member of a group solves the
        same infill task."""
        rl = self.cfg.rl
        if batch.ref_lengths is not None:  # synthesis prompts (rl.prompts_manifest): the whole prompt is given
            prompts = batch.ref_lengths.cpu()
        else:
            lens = batch.mel_lengths.clamp(max=rl.max_duration)
            prompts = prompt_lengths(lens, tuple(rl.prompt_frac_range), rl.prompt_length_mode, generator)
        use_cfg = rl.cfg_prob >= 1 or float(torch.rand((), generator=generator)) < rl.cfg_prob
        return prompts, use_cfg

    def _expand(self, batch: Batch) -> Batch:
        """Repeat every utterance ``group_size × mini_repeat_count`` times (consecutively)."""
        return batch.rows(torch.arange(len(batch), device=batch.mel.device).repeat_interleave(self.copies))

    def rollout(self, batch: Batch, policy, prompts: torch.Tensor, use_cfg: bool,
                generator: torch.Generator | None = None, shared_start: int = 1,
                noisy_steps: list[int] | None = None) -> Rollout:
        """Roll out ``batch`` from ``policy``; ``shared_start``: consecutive rows sharing the initial noise;
        ``noisy_steps``: the steps that sample noise (None: all)."""
        rl = self.cfg.rl
        lens = batch.mel_lengths.clamp(max=rl.max_duration)
        was_training = policy.training
        policy.train(rl.rollout_dropout)
        ro = gaussian_rollout(
            policy, batch.mel[:, : int(lens.max())], batch.text, lens, prompts, steps=rl.steps,
            steps_plus_one=rl.steps_plus_one, cfg_strength=rl.cfg_strength if use_cfg else 0.0,
            sway_sampling_coef=rl.sway_sampling_coef, precision=self.precision, generator=generator,
            mode=rl.rollout, sde_noise=rl.sde_noise, shared_start=shared_start, noisy_steps=noisy_steps,
        )
        policy.train(was_training)
        return ro

    def group_ids(self, b: int) -> torch.Tensor:
        """Group of each local rollout: consecutive copies of one prompt share a group."""
        return torch.arange(b) // self.copies

    def advantages(self, rewards: torch.Tensor) -> Advantages:
        """Group-relative advantages; with ``repeat_count`` > 1 the group spans processes, so
        rewards are gathered first and each process keeps its own slice."""
        rl, acc = self.cfg.rl, self.accelerator
        local_ids = self.group_ids(len(rewards))
        if rl.repeat_count == 1:
            return group_advantages(rewards, local_ids, rl.adv_eps, rl.adv_clip, rl.adv_norm, rl.min_reward_spread)
        gathered = acc.gather(rewards.to(self.device)).cpu()  # (P·b,) in process order
        b = len(rewards)
        proc = torch.arange(acc.num_processes).repeat_interleave(b)
        # processes p and q hold copies of the same prompts when p // repeat_count == q // repeat_count
        ids = (proc // rl.repeat_count) * 100_000 + local_ids.repeat(acc.num_processes)
        out = group_advantages(gathered, ids, rl.adv_eps, rl.adv_clip, rl.adv_norm, rl.min_reward_spread)
        sl = slice(acc.process_index * b, (acc.process_index + 1) * b)
        out.adv, out.valid = out.adv[sl], out.valid[sl]
        out.group_mean, out.group_std = out.group_mean[sl], out.group_std[sl]
        return out

    # ------------------------------------------------------------------ one update
    def step_rng(self) -> random.Random:
        """This update's stream of trained steps: per update (not one long stream) so a resumed run
        picks the same steps, and the same on every process, so their gradients average over the same
        steps."""
        return random.Random(self.cfg.optim.seed * 1_000_003 + self.update_index)

    def noisy_steps(self) -> list[int] | None:
        """The steps of this update's rollout that sample noise: every step (None, ``rl.noise_steps=all``),
        the update's trained steps drawn before the rollout (``train``), or none (``none``: ODE samples)."""
        rl = self.cfg.rl
        if rl.noise_steps != "train":
            return None if rl.noise_steps == "all" else []
        steps = len(time_points(rl.steps, rl.steps_plus_one, rl.sway_sampling_coef)) - 1
        return choose_train_steps(steps, rl.train_steps_mode, rl.train_steps, self.step_rng(), rl.loss)

    def rollout_and_score(self, batch: Batch, prompts: torch.Tensor, use_cfg: bool,
                          noisy_steps: list[int] | None = None) -> tuple[Rollout, CombinedReward, dict[str, float]]:
        """Roll out the (expanded) batch and score it. With ``rl.rewards.score_chunks`` = C > 1 the
        prompts are rolled out in C chunks of whole groups, each chunk's scoring (in the reward
        server) running while the next chunk rolls out; rewards are combined over the whole batch."""
        chunks = min(self.cfg.rl.rewards.score_chunks, len(batch) // self.copies)
        t0 = time.perf_counter()
        if chunks <= 1:
            ro = self.rollout(batch, self.policy, prompts, use_cfg, shared_start=self.shared_start,
                              noisy_steps=noisy_steps)
            t_roll = time.perf_counter() - t0
            scored = self.scorer(ro, batch, self.copies)
            return ro, scored, {"time/rollout_s": t_roll, "time/reward_s": time.perf_counter() - t0 - t_roll}
        groups = len(batch) // self.copies
        bounds = [round(groups * i / chunks) * self.copies for i in range(chunks + 1)]
        parts, pending, t_roll = [], [], 0.0
        for a, b in zip(bounds[:-1], bounds[1:]):
            t1 = time.perf_counter()
            sub = batch.rows(slice(a, b))
            parts.append(self.rollout(sub, self.policy, prompts[a:b], use_cfg, shared_start=self.shared_start,
                                      noisy_steps=noisy_steps))
            t_roll += time.perf_counter() - t1
            rb = self.scorer.reward_batch(parts[-1], sub, self.copies)  # vocoding stays in this process
            pending.append(self._score_pool.submit(self.scorer.rewards.score, rb))
        t1 = time.perf_counter()
        outputs = RewardSet.concat([f.result() for f in pending])
        wait = time.perf_counter() - t1
        return cat_rollouts(parts), self.scorer.rewards.combine(outputs, self.group_ids(len(batch))), {
            "time/rollout_s": t_roll, "time/reward_s": time.perf_counter() - t0 - t_roll,
            "time/reward_wait_s": wait}

    def rl_update(self, batch: Batch) -> dict[str, float]:
        rl = self.cfg.rl
        t0 = time.perf_counter()
        prompts, use_cfg = self.draw_split(batch, self.split_generator())
        batch, prompts = self._expand(batch), prompts.repeat_interleave(self.copies)
        ro, scored, timing = self.rollout_and_score(batch, prompts, use_cfg, self.noisy_steps())
        ref_ro = None
        if rl.loss == "f5r" and self.ref is not None and rl.kl_weight > 0:
            ref_ro = self.rollout(batch, self.ref, prompts, use_cfg)  # F5R: the reference's own rollout, same split
        t_roll, t_reward = timing["time/rollout_s"], timing["time/reward_s"]
        adv = self.advantages(scored.reward)
        self.model.train(rl.rollout_dropout)  # the rollout's mode (see the module docstring)
        if self.unscorable.nothing_scored(scored, self.update_index):
            metrics = {"stats/unscorable_update": 1.0}  # train nothing: every advantage would be 0
        else:
            metrics = LOSSES[rl.loss](self, ro, ref_ro, batch, adv, scored.reward)
        metrics.update(reward_metrics(scored, adv))
        metrics.update({**timing, "time/update_s": time.perf_counter() - t0 - t_roll - t_reward,
                        "stats/rollouts": float(len(batch)),
                        "stats/rollout_frames": float((ro.durations - ro.prompt_lens).sum())})
        self._last = (ro, batch)
        return metrics

    def accumulate_step_gradients(self, ro: Rollout, ref_ro: Rollout | None, adv: Advantages,
                                  steps: list[int]) -> dict[str, float]:
        """Backward of the mean step loss over ``steps`` (one step at a time, so memory stays at one
        forward pass); returns the loss and its terms averaged over the steps."""
        rl, acc = self.cfg.rl, self.accelerator
        a, valid = adv.adv.to(self.device), adv.valid.to(self.device)
        sums: dict[str, float] = {}
        for k in steps:
            with acc.autocast():
                if rl.loss == "grpo":
                    out = grpo_step_loss(self.policy, self.ref, ro, k, a, valid, rl.clip_eps, rl.kl_weight)
                else:
                    out = f5r_step_loss(self.policy, ref_ro, self.ref, ro, k, a, rl.kl_weight)
            acc.backward(out.loss / len(steps))
            sums["loss"] = sums.get("loss", 0.0) + out.loss.item() / len(steps)
            for name, v in out.metrics.items():
                sums[name] = sums.get(name, 0.0) + float(v) / len(steps)
        return sums

    def policy_gradient_update(self, ro: Rollout, ref_ro: Rollout | None, batch: Batch, adv: Advantages,
                               rewards: torch.Tensor) -> dict[str, float]:
        """``grpo`` and ``f5r``: ``rl.inner_epochs`` optimiser steps on the chosen ODE steps."""
        rl = self.cfg.rl
        step_rng = self.step_rng()
        metrics: dict[str, float] = {}
        for _ in range(rl.inner_epochs):
            # rl.noise_steps=train: the steps that sampled noise, every inner epoch
            steps = list(ro.noisy) if ro.noisy is not None else choose_train_steps(
                ro.steps, rl.train_steps_mode, rl.train_steps, step_rng, rl.loss, rl.skip_grad_prob)
            self.optimizer.zero_grad(set_to_none=True)
            metrics.update(self.accumulate_step_gradients(ro, ref_ro, adv, steps))
            metrics.update(self.optimizer_step().metrics())
            metrics["stats/kept_steps"] = float(len(steps))
        return metrics

    def awm_update(self, ro: Rollout, ref_ro: Rollout | None, batch: Batch, adv: Advantages,
                   rewards: torch.Tensor) -> dict[str, float]:
        """``awm``: ``rl.inner_epochs`` optimiser steps, each on ``rl.awm_draws`` draws of a flow time
        (uniform in ``rl.awm_time_range``) and noise per rollout; the reference regulariser is weighted
        by ``rl.kl_weight``, at those points and also at its own draws in ``rl.awm_drift_time_range``."""
        from f5rl.rollout.evaluate import awm_step_loss

        rl, acc = self.cfg.rl, self.accelerator
        a, valid = adv.adv.to(self.device), adv.valid.to(self.device)
        lo, hi = rl.awm_time_range
        metrics: dict[str, float] = {}
        for _ in range(rl.inner_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for _ in range(rl.awm_draws):
                x0 = torch.randn(ro.mel.shape, device=self.device)
                t = lo + (hi - lo) * torch.rand(ro.mel.shape[0], device=self.device)
                drift_at = {}
                if rl.awm_drift_time_range is not None:
                    d_lo, d_hi = rl.awm_drift_time_range
                    drift_at = {"drift_x0": torch.randn(ro.mel.shape, device=self.device),
                                "drift_time": d_lo + (d_hi - d_lo) * torch.rand(ro.mel.shape[0], device=self.device)}
                with acc.autocast():
                    out = awm_step_loss(self.policy, self.ref, ro, a, valid, t, x0, rl.kl_weight,
                                        rl.awm_negative_weight, ro.cfg_strength if rl.awm_guided else 0.0,
                                        **drift_at)
                acc.backward(out.loss / rl.awm_draws)
                for name, v in {"loss": out.loss.detach(), **out.metrics}.items():
                    sums[name] = sums.get(name, 0.0) + float(v) / rl.awm_draws
            metrics.update(sums)
            metrics.update(self.optimizer_step().metrics())
        return metrics

    def online_dpo_update(self, ro: Rollout, ref_ro: Rollout | None, batch: Batch, adv: Advantages,
                          rewards: torch.Tensor) -> dict[str, float]:
        """Online DPO: each group's best and worst rollout form a pair; ``online_dpo_pair_loss`` (shared
        x0, t in ``rl.dpo_time_range`` and span; ``rl.dpo_sft_weight``, drift weighted by ``rl.kl_weight``)
        against the reference, one optimiser step per inner epoch."""
        from f5rl.rl.dpo import best_and_worst, preference_times
        from f5rl.rollout.evaluate import online_dpo_pair_loss

        rl, acc = self.cfg.rl, self.accelerator
        best, worst = best_and_worst(rewards, self.group_ids(len(rewards)))
        if not best:
            return {"stats/dpo_pairs": 0.0}
        bi, wi = torch.tensor(best), torch.tensor(worst)
        x_w, x_l = ro.mel[bi].float(), ro.mel[wi].float()
        mask = torch.arange(x_w.shape[1], device=x_w.device)[None] < ro.durations[bi][:, None]
        span = ro.target[bi] & ro.target[wi]
        gap = (rewards[bi] - rewards[wi]).to(self.device)
        metrics: dict[str, float] = {"stats/dpo_pairs": float(len(best))}
        for _ in range(rl.inner_epochs):
            x0 = torch.randn_like(x_w)
            t = preference_times(torch.rand(len(best), device=x_w.device), rl.dpo_time_range)
            self.optimizer.zero_grad(set_to_none=True)
            with acc.autocast():
                out = online_dpo_pair_loss(self.policy, self.ref, x_w, x_l, x0, t, batch.text[bi], mask, span,
                                           rl.dpo_beta, rl.dpo_loss_type, gap, rl.dpo_sft_weight, rl.kl_weight)
            acc.backward(out.loss)
            metrics.update(self.optimizer_step().metrics())
            metrics.update({"loss": out.loss.item(), **{k: float(v) for k, v in out.metrics.items()}})
        return metrics

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self, batch: Batch | None = None) -> dict[str, float]:
        """Mean reward (and components) of one rollout per held-out prompt, fixed seeds."""
        batch = batch if batch is not None else self.val_batch
        gen = torch.Generator(device="cpu").manual_seed(self.cfg.rl.val_seed)
        prompts, use_cfg = self.draw_split(batch, gen)
        ro = self.rollout(batch, self.policy, prompts, use_cfg, generator=gen)
        scored = self.scorer(ro, batch, copies=1)
        out = {"val/mean_reward": float(self.scorer.rewards.comparable(scored.outputs).nanmean())}
        for name, v in scored.metrics.items():
            out["val/" + name.removeprefix("reward/")] = float(v.nanmean())
        return out

    def periodic_validation(self, update: int) -> dict[str, float]:
        """``rl.val_every``: mean reward on the held-out prompts; ``model_best.pt`` by ``ckpts.keep_best_by``."""
        if self.val_batch is None or update % self.cfg.rl.val_every != 0:
            return {}
        metrics = self.validate()
        if self.accelerator.is_main_process:
            self.keep_best.offer(metrics, update, lambda: self.checkpoint_state(update))
        return metrics

    # ------------------------------------------------------------------ loop hooks
    def on_train_start(self) -> None:
        """Held-out validation of the starting policy (update 0), the baseline of every curve."""
        if self.start_update == 0 and self.val_batch is not None and self.accelerator.is_main_process:
            start = self.validate()
            self.logger.log(start, step=0)
            self.metrics_file.log(start, 0)

    def close(self) -> None:
        """Stop the reward server of ``rl.rewards.process=server`` (also done at interpreter exit)."""
        if getattr(self, "_score_pool", None) is not None:
            self._score_pool.shutdown(wait=True)
        if getattr(self, "reward_server", None) is not None:
            self.reward_server.stop()

    def update_step(self, batches: list[Batch]) -> dict[str, float]:
        """One rollout batch per update: the loader's corpus utterances (infilled), or with
        ``rl.prompts_manifest`` as many synthesis prompts drawn for this update and process block."""
        if self.prompt_set is None:
            return self.rl_update(batches[0])
        gen = self.split_generator()
        idx = torch.randperm(len(self.prompt_set), generator=gen)[: len(batches[0])].tolist()
        return self.rl_update(self.prompt_set.batch(idx)[0].to(self.device))

    def log_samples(self, update: int, batch: Batch) -> list[str]:
        """The first rollout of the last update: ``update_<N>_gen.wav`` and its ground truth."""
        from f5rl.audio.io import save_audio

        ro, b = self._last
        gen, ref = self.scorer.vocode([ro.mel[0, : int(ro.durations[0])], b.mel[0, : int(b.reference_lengths[0])]])
        folder = self.save_dir / "samples"
        return [str(save_audio(folder / f"update_{update}_gen.wav", gen)),
                str(save_audio(folder / f"update_{update}_ref.wav", ref))]


# rl.loss -> the update it runs on one batch of scored rollouts (one signature for all)
LOSSES: dict[str, Callable[..., dict[str, float]]] = {
    "grpo": RLTrainer.policy_gradient_update,
    "f5r": RLTrainer.policy_gradient_update,
    "online_dpo": RLTrainer.online_dpo_update,
    "awm": RLTrainer.awm_update,
}

"""Config schema of stage 2 (GRPO: ``rl``, ``rl.rewards``) and offline preference optimisation
(``dpo``), on top of :mod:`f5rl.config.schema` (re-exported there)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from f5rl.config.schema import Checked, TrainConfig, _one_of

# ---------------------------------------------------------------------------------------------
# stage 2


@dataclass
class ProviderCfg(Checked):
    name: str = "duration"
    weight: float = 1.0
    config: dict[str, Any] = field(default_factory=dict)
    label: str | None = None


@dataclass
class RewardsCfg(Checked):
    mode: str = "sum"  # sum | normalized_sum | group_normalized_sum | rank_shaping | harmonic
    params: dict[str, Any] = field(default_factory=dict)
    providers: list[ProviderCfg] = field(default_factory=lambda: [ProviderCfg()])
    vocoder_batch: int = 16  # f5rl: clips of equal length vocoded at once for scoring
    # f5rl: where reward models run: inline (the training process) | server (a reward server process
    # the trainer starts on loopback and stops; its CPU threads do not slow the trainer's)
    process: str = "inline"
    server_threads: int = 1  # f5rl: CPU threads of the reward server (process=server)
    # f5rl: roll out the update's prompts in this many chunks, scoring one while the next rolls out
    score_chunks: int = 1
    # f5rl: what the reward hears. auto: with synthesis prompts (rl.prompts_manifest) the generated speech
    # alone against the new text, as inference returns it and the held-out judge scores it; infilling the
    # corpus, the whole utterance against its transcript (F5R). full: always the whole output (prompt +
    # generation) against the whole text; the copied prompt then dilutes CER and SIM
    score_span: str = "auto"

    def rules(self) -> None:
        if self.vocoder_batch < 1:
            raise ValueError(f"rl.rewards.vocoder_batch={self.vocoder_batch} must be >= 1")
        _one_of("rl.rewards.process", self.process, ("inline", "server"))
        _one_of("rl.rewards.score_span", self.score_span, ("auto", "full"))
        if self.server_threads < 0:
            raise ValueError(f"rl.rewards.server_threads={self.server_threads} must be >= 0 "
                             "(0: the libraries' default)")
        if self.score_chunks < 1:
            raise ValueError(f"rl.rewards.score_chunks={self.score_chunks} must be >= 1")
        if self.score_chunks > 1 and self.process != "server":
            raise ValueError("rl.rewards.score_chunks>1 overlaps scoring with rollouts, which needs the reward models "
                             "in their own process: set rl.rewards.process=server")
        _one_of("rl.rewards.mode", self.mode,
                ("sum", "normalized_sum", "group_normalized_sum", "rank_shaping", "harmonic"))
        if not self.providers:
            raise ValueError("rl.rewards.providers is empty; configure at least one reward provider")


@dataclass
class RLCfg(Checked):
    steps: int = 30
    steps_plus_one: bool = False
    repeat_count: int = 1  # F5R: copies of a prompt across processes
    mini_repeat_count: int = 1  # F5R: consecutive copies of a prompt within a process batch
    group_size: int = 4  # f5rl: rollouts per prompt within a process (GRPO group)
    prompt_frac_range: list[float] = field(default_factory=lambda: [0.1, 0.3])
    prompt_length_mode: str = "min"  # min | per_sample | range
    cfg_strength: float = 2.0
    cfg_prob: float = 1.0  # f5rl: fraction of rollout batches made with CFG
    sway_sampling_coef: float | None = -1.0
    kl_weight: float = 1.0
    ref_model_ckpt: str | None = None
    reference_free: bool = False
    # grpo (principled) | f5r (parity with the F5R-TTS code) | online_dpo | awm (advantage-weighted
    # flow matching on the group's own rollouts: GRPO's advantages, a flow-matching surrogate)
    loss: str = "grpo"
    awm_time_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # awm: flow times t drawn uniformly
    awm_draws: int = 1  # awm: (t, noise) draws per rollout and optimiser step
    # awm: scale of below-average rollouts' (negative) weights. 1 is AWM as published; 0 only pulls the
    # velocity toward above-average rollouts (reward-filtered self-distillation, the term that moves
    # offline DPO here: CFM on the chosen sample); pushing the error of bad rollouts up is unbounded
    awm_negative_weight: float = 1.0
    # awm: fit the CFG-combined velocity v_c + w·(v_c − v_u) at the rollout's own w (the field that
    # sampled it) rather than the conditional one; false fits v_c to guided output, and inference's
    # CFG then guides a second time on top of it
    awm_guided: bool = False
    # awm: the reference regulariser is also taken at flow times drawn uniformly in [lo, hi] with their own noise,
    # beside the fit's own points (rl.awm_time_range), each term weighted by rl.kl_weight; null: the fit's points
    # only. A fit at the noise end alone moves the whole field through shared weights, and a drift taken there
    # leaves the later flow times free to follow. A window that replaced the fit's points ([0, 1] at kl_weight 1)
    # broke the policy on the demo base (docs/grpo_measurements.md), so the fit's points keep their term. [0.1, 1]
    # after DPO kept 0.019 more SIM at the same CER (one run); not measured from the base, so null stays the default
    awm_drift_time_range: list[float] | None = None
    dpo_beta: float = 500.0  # online_dpo: β of the flow-matching DPO loss on each group's best/worst pair
    dpo_loss_type: str = "dpo"  # online_dpo: dpo | ipo | rpo
    # online_dpo: flow times of the pair's errors, drawn uniformly in [lo, hi] (dpo.time_range offline; Diffusion-DPO
    # takes all of [0, 1], the offline recipe measured [0, 0.1])
    dpo_time_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    dpo_sft_weight: float = 0.0  # online_dpo: weight of the chosen rollouts' flow-matching error (dpo.sft_loss_weight)
    rollout: str = "gaussian"  # gaussian (σ head) | sde (Flow-GRPO noise on a deterministic model)
    sde_noise: float = 0.7  # a of σ_t = a·sqrt((1−t)/t)
    # f5rl: the members of a group start from one initial noise, so their rewards differ only
    # through the noise sampled along the rollout (what the log-probs see); DanceGRPO
    shared_start_noise: bool = False
    train_steps: int = 4  # grpo: ODE steps that carry gradient per update
    # all: every rollout step samples noise; train (rl.loss=grpo): only the steps that carry gradient (chosen
    # before the rollout, by train_steps and train_steps_mode, the same for every inner epoch), the others are
    # inference's deterministic steps (MixGRPO; Flow-GRPO's SDE window), so a group's reward differences come
    # from the trained steps alone; none (the losses without log-probs, awm and online_dpo): inference's ODE
    # samples, a group differing by its start noise only
    noise_steps: str = "all"
    train_steps_mode: str = "random"  # random | window (the first train_steps steps, MixGRPO-style) | all
    skip_grad_prob: float = 0.95  # f5r: each step keeps its gradient with probability 1 − p (plus the first two)
    clip_eps: float = 0.2
    inner_epochs: int = 1
    adv_clip: float | None = None
    adv_eps: float = 1e-4
    # std: A = (r − group mean) / group std (GRPO); none: A = r − group mean (Dr. GRPO), so groups whose
    # rewards differ only by the judge's noise pull weakly
    adv_norm: str = "std"
    # groups whose reward range (max − min) is below this get zero advantages (DMOSpeech 2 used 0.01)
    min_reward_spread: float = 0.0
    rollout_dropout: bool = False
    max_duration: int = 4096  # frames
    # f5rl: roll out synthesis prompts (voice prompt + new text, as inference does) from this JSONL
    # (prefs text/context rows or a test list) instead of infilling the corpus's utterances
    prompts_manifest: str | None = None
    val_manifest: str | None = None  # f5rl: JSON-lines held-out prompts (audio_path, text), e.g. test.jsonl
    val_every: int = 0  # f5rl: validate every N updates (0: never)
    val_size: int = 8
    val_seed: int = 1234
    # f5rl: stop the run after this many updates in a row in which no reward could be scored
    # (an update without any scorable reward trains nothing: its advantages would all be 0)
    max_unscorable_updates: int = 3
    rewards: RewardsCfg = field(default_factory=RewardsCfg)

    def rules(self) -> None:
        _one_of("rl.loss", self.loss, ("grpo", "f5r", "online_dpo", "awm"))
        windows = [("rl.awm_time_range", self.awm_time_range), ("rl.dpo_time_range", self.dpo_time_range)]
        if self.awm_drift_time_range is not None:
            if self.loss != "awm" or self.kl_weight <= 0 or self.reference_free:
                raise ValueError(f"rl.awm_drift_time_range={self.awm_drift_time_range} places AWM's reference "
                                 f"regulariser, which rl.loss={self.loss}, rl.kl_weight={self.kl_weight}, "
                                 f"rl.reference_free={self.reference_free} does not have: set rl.loss=awm, "
                                 "rl.kl_weight > 0 and rl.reference_free=false, or rl.awm_drift_time_range=null")
            windows.append(("rl.awm_drift_time_range", self.awm_drift_time_range))
        for key, window in windows:
            lo, hi = (list(window) + [None, None])[:2]
            if len(window) != 2 or not 0 <= lo <= hi <= 1:
                raise ValueError(f"{key}={window} must be [lo, hi] with 0 <= lo <= hi <= 1")
        if self.dpo_sft_weight < 0:
            raise ValueError(f"rl.dpo_sft_weight={self.dpo_sft_weight} must be >= 0")
        if self.steps < 2:
            raise ValueError(f"rl.steps={self.steps} must be >= 2 (ODE steps of a rollout; F5R uses 30)")
        if self.awm_draws < 1:
            raise ValueError(f"rl.awm_draws={self.awm_draws} must be >= 1")
        if self.awm_guided and self.loss != "awm":
            raise ValueError(f"rl.awm_guided=true applies to rl.loss=awm only (got rl.loss={self.loss}); "
                             "drop it or set rl.loss=awm")
        if not 0 <= self.awm_negative_weight <= 1:
            raise ValueError(f"rl.awm_negative_weight={self.awm_negative_weight} must be in [0, 1] "
                             "(1: AWM as published, 0: only above-average rollouts pull)")
        _one_of("rl.dpo_loss_type", self.dpo_loss_type, ("dpo", "ipo", "rpo"))
        _one_of("rl.adv_norm", self.adv_norm, ("std", "none"))
        if self.min_reward_spread < 0:
            raise ValueError(f"rl.min_reward_spread={self.min_reward_spread} must be >= 0 (a reward range)")
        if self.loss == "online_dpo" and (self.reference_free or self.kl_weight == 0):
            raise ValueError("rl.loss=online_dpo needs a reference model: set rl.kl_weight>0 and "
                             "rl.reference_free=false (the KL weight weights the chosen's velocity drift from it)")
        _one_of("rl.rollout", self.rollout, ("gaussian", "sde"))
        if self.rollout == "sde" and self.loss == "f5r":
            raise ValueError("rl.loss=f5r needs the σ head's density (rl.rollout=gaussian); use rl.loss=grpo with sde")
        _one_of("rl.prompt_length_mode", self.prompt_length_mode, ("min", "per_sample", "range"))
        _one_of("rl.train_steps_mode", self.train_steps_mode, ("random", "window", "all"))
        _one_of("rl.noise_steps", self.noise_steps, ("all", "train", "none"))
        if self.noise_steps == "none" and self.loss in ("grpo", "f5r"):
            raise ValueError(f"rl.noise_steps=none samples nothing, so rl.loss={self.loss} has no log-probs to train; "
                             "use rl.noise_steps=all or train, or rl.loss=awm")
        if self.noise_steps == "train" and self.loss != "grpo":
            raise ValueError(f"rl.noise_steps=train picks the trained steps before the rollout, which only "
                             f"rl.loss=grpo trains (got rl.loss={self.loss}); set rl.loss=grpo or rl.noise_steps=all")
        lo, hi = (self.prompt_frac_range + [None, None])[:2]
        if len(self.prompt_frac_range) != 2 or not 0 <= lo <= hi < 1:
            raise ValueError(f"rl.prompt_frac_range={self.prompt_frac_range} must be [lo, hi] with 0 <= lo <= hi < 1")
        if self.group_size < 1 or self.repeat_count < 1 or self.mini_repeat_count < 1:
            raise ValueError("rl.group_size, rl.repeat_count and rl.mini_repeat_count must be >= 1")
        if self.group_size * self.repeat_count * self.mini_repeat_count < 2:
            raise ValueError(
                "every GRPO group would have one member, so all advantages are zero and only the KL term trains; "
                "set rl.group_size>=2 (rollouts per prompt in one process) or rl.repeat_count>=2 across processes"
            )
        if self.rewards.mode == "group_normalized_sum" and self.repeat_count > 1:
            raise ValueError(f"rl.rewards.mode=group_normalized_sum standardises rewards within a group, but "
                             f"rl.repeat_count={self.repeat_count} spreads a group over processes; use "
                             "rl.repeat_count=1 (and rl.group_size for the group) or rl.rewards.mode=normalized_sum")
        if not 0 <= self.skip_grad_prob < 1:
            raise ValueError(f"rl.skip_grad_prob={self.skip_grad_prob} must be in [0, 1)")
        if self.train_steps < 1 or self.inner_epochs < 1:
            raise ValueError("rl.train_steps and rl.inner_epochs must be >= 1")
        if not 0 <= self.cfg_prob <= 1:
            raise ValueError(f"rl.cfg_prob={self.cfg_prob} must be in [0, 1]")
        if self.max_unscorable_updates < 1:
            raise ValueError(f"rl.max_unscorable_updates={self.max_unscorable_updates} must be >= 1")


@dataclass
class RLTrainConfig(TrainConfig):
    rl: RLCfg = field(default_factory=RLCfg)

    def rules(self) -> None:  # model.objective is grpo here: TrainConfig's rule does not apply
        key = self.ckpts.keep_best_by or ""
        labels = {p.label or p.name for p in self.rl.rewards.providers}
        self.check_keep_best(bool(self.rl.val_manifest) and self.rl.val_every > 0,
                             key == "val/mean_reward" or (key.startswith("val/") and key.split("/")[1] in labels),
                             "set rl.val_manifest=test.jsonl and rl.val_every=N",
                             f"val/mean_reward or val/<provider>[/<component>] with a provider of {sorted(labels)}")
        if self.ckpts.val_list and self.ckpts.val_every > 0:
            raise ValueError("ckpts.val_list/ckpts.val_every are stage 0/1 validation; stage 2 validates on held-out "
                             "prompts with rl.val_manifest=test.jsonl rl.val_every=N (keep_best_by=val/mean_reward)")
        if self.rl.rollout == "gaussian" and not self.model.use_rl_head:
            raise ValueError("stage 2 samples velocities from the σ head: set model.use_rl_head=true "
                             "(and model.output_dist=gaussian), starting from a stage-1 checkpoint")


# ---------------------------------------------------------------------------------------------
# offline preference optimisation


@dataclass
class DPOCfg(Checked):
    train_manifest: str | None = None  # train.jsonl of f5rl.prefs.create_preference_pairs
    val_manifest: str | None = None
    loss_type: str = "dpo"  # dpo | ipo | rpo
    beta: float = 1000.0  # flow-matching errors are small numbers: β is large (Diffusion-DPO uses 2000-5000)
    label_smoothing: float = 0.0
    rpo_eta: float = 1.0
    sft_loss_weight: float = 0.0  # dpo_sft_loss_weight: CFM loss on the chosen sample
    # CFM loss (the stage-0 objective, with its span masking and CFG dropout) on real utterances of the
    # training corpus (datasets.*), added with this weight: keeps the policy on real speech while the
    # preference term moves it (cf. the pretraining mix of InstructGPT's PPO-ptx). The chosen samples
    # are the model's own, smoother mels; fitting only those drifts the voice.
    anchor_loss_weight: float = 0.0
    anchor_batch_size: int = 4  # real utterances per micro-batch for the anchor term
    ref_model_ckpt: str | None = None
    val_every: int = 0  # held-out implicit accuracy and loss (dpo.val_manifest) every N updates (0: never)
    # held-out pairs: each pair's flow errors are averaged over this many (noise, t) draws, t stratified
    # over the training times, so the implicit reward estimates its expectation (Diffusion-DPO, eq. 12);
    # measured on 40 held-out pairs: two sets of 8 draws agreed on the sign for 85 % of pairs, of 32 for 97.5 %
    val_draws: int = 32
    # pairs per forward of those implicit-accuracy estimates (held-out pairs, and the fit of the training pairs):
    # taken in order of length, so a chunk pads only to its own longest pair, and memory stays bounded however
    # many pairs a manifest holds (a batch of all of them pads every pair to the longest one)
    val_batch_size: int = 8
    # flow times of the errors (training and held-out): t = lo + (hi - lo)·sway(u, time_sway), u ~ U(0, 1).
    # [0, 1] with sway 0 is Diffusion-DPO's uniform t; a window at the noise end ([0, 0.1]) trains where
    # the words are decided (f5rl.rl.dpo); sway < 0 packs draws towards the noise end (F5-TTS, s = -1)
    time_range: list[float] = field(default_factory=lambda: [0.0, 1.0])
    time_sway: float = 0.0
    # the reference regulariser of rl.awm_drift_time_range, for DPO: drift_weight × the squared distance of the
    # policy's velocity on the chosen sample from the reference's, at flow times of its own drawn uniformly in
    # drift_time_range (with their own noise). Errors taken at the noise end alone ([0, 0.1]) move the whole field
    # through shared weights; this holds the later flow times, where GRPO measured the voice is kept
    # (docs/grpo_measurements.md). Both or neither: null and 0 leave DPO as published
    drift_time_range: list[float] | None = None
    drift_weight: float = 0.0

    def rules(self) -> None:
        _one_of("dpo.loss_type", self.loss_type, ("dpo", "ipo", "rpo"))
        if self.drift_weight < 0:
            raise ValueError(f"dpo.drift_weight={self.drift_weight} must be >= 0 (0: no drift term)")
        if (self.drift_time_range is None) != (self.drift_weight == 0):
            raise ValueError(f"dpo.drift_time_range={self.drift_time_range} and dpo.drift_weight={self.drift_weight}: "
                             "the drift term needs both (e.g. dpo.drift_time_range=[0.1,1.0] dpo.drift_weight=100) "
                             "or neither (null and 0)")
        window = self.drift_time_range
        if window is not None and (len(window) != 2 or not 0 <= window[0] <= window[1] <= 1):
            raise ValueError(f"dpo.drift_time_range={self.drift_time_range} must be [lo, hi] with 0 <= lo <= hi <= 1")
        if self.val_draws < 1:
            raise ValueError(f"dpo.val_draws={self.val_draws} must be >= 1")
        if self.val_batch_size < 1:
            raise ValueError(f"dpo.val_batch_size={self.val_batch_size} must be >= 1 (pairs per forward)")
        if self.anchor_loss_weight < 0 or self.sft_loss_weight < 0:
            raise ValueError("dpo.sft_loss_weight and dpo.anchor_loss_weight must be >= 0")
        if self.anchor_batch_size < 1:
            raise ValueError(f"dpo.anchor_batch_size={self.anchor_batch_size} must be >= 1")
        if len(self.time_range) != 2 or not 0 <= self.time_range[0] < self.time_range[1] <= 1:
            raise ValueError(f"dpo.time_range={self.time_range} must be [lo, hi] with 0 <= lo < hi <= 1 "
                             "(e.g. [0, 0.1]: the noise end, where the words are decided)")
        if not -1.0 <= self.time_sway <= 1.0:
            raise ValueError(f"dpo.time_sway={self.time_sway} must be in [-1, 1] "
                             "(0 = uniform t; sway keeps t in [0, 1])")
        if self.val_every < 0:
            raise ValueError(f"dpo.val_every={self.val_every} must be >= 0 (0: never)")
        if self.val_every > 0 and not self.val_manifest:
            raise ValueError("dpo.val_every>0 validates on held-out pairs: set dpo.val_manifest=held_out.jsonl "
                             "(from f5rl.prefs.create_preference_pairs) or dpo.val_every=0")
        if not self.train_manifest:
            raise ValueError("dpo.train_manifest is required (train.jsonl from f5rl.prefs.create_preference_pairs)")
        if self.beta <= 0:
            raise ValueError(f"dpo.beta={self.beta} must be > 0")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError("dpo.label_smoothing must be in [0, 0.5)")


@dataclass
class DPOTrainConfig(TrainConfig):
    dpo: DPOCfg = field(default_factory=DPOCfg)

    def rules(self) -> None:
        key = self.ckpts.keep_best_by or ""
        self.check_keep_best(bool(self.dpo.val_manifest) and self.dpo.val_every > 0,
                             key == "val/loss" or key.startswith("val/dpo/"),
                             "set dpo.val_manifest=held_out.jsonl and dpo.val_every=N",
                             "val/loss (keep_best_mode=min) or val/dpo/accuracy, val/dpo/margin, ...")
        self.check_objective()

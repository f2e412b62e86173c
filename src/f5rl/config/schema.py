"""The schema of a training config. Key names follow F5-TTS's Hydra configs so recipes written
for F5-TTS run unchanged; f5rl's additions are commented. Semantic checks live in ``check()``
methods so errors name the key and say what to change."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class Checked:
    """A config node. ``check()`` checks each sub-node, then this node's own ``rules()``: the one
    pattern of every section, so a new section is checked by declaring it."""

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Checked):
                value.check()
        self.rules()

    def rules(self) -> None:
        """This node's own constraints (across its fields); raise ValueError naming the key."""


def _one_of(key: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not valid; use one of {', '.join(map(str, allowed))}")


@dataclass
class DatasetsCfg(Checked):
    name: str = "Emilia_ZH_EN"
    path: str | None = None  # f5rl: a dataset folder (raw/ + duration.json) instead of name
    data_root: str = "data"  # f5rl: where data/<name>_<tokenizer>/ lives (relative to the cwd)
    batch_size_per_gpu: int = 38400
    batch_size_type: str = "frame"
    max_samples: int = 64
    num_workers: int = 16
    min_duration: float = 0.3
    max_duration: float = 30.0

    def rules(self) -> None:
        _one_of("datasets.batch_size_type", self.batch_size_type, ("frame", "sample"))
        if self.batch_size_per_gpu <= 0:
            raise ValueError(f"datasets.batch_size_per_gpu={self.batch_size_per_gpu} must be > 0")
        if self.num_workers < 0:
            raise ValueError(f"datasets.num_workers={self.num_workers} must be >= 0")
        if not 0 <= self.min_duration < self.max_duration:
            raise ValueError("datasets.min_duration must be >= 0 and below datasets.max_duration")


@dataclass
class OptimCfg(Checked):
    epochs: int = 11
    learning_rate: float = 7.5e-5
    num_warmup_updates: int = 20000
    grad_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    bnb_optimizer: bool = False
    mixed_precision: str = "auto"  # f5rl: auto|no|bf16|fp16 (auto = bf16 where it is fast)
    weight_decay: float = 0.01
    max_updates: int | None = None  # f5rl: stop after this many updates (demos, smoke runs)
    total_updates: int | None = None  # f5rl: length of the LR schedule and run instead of epochs
    max_minutes: float | None = None  # f5rl: stop (and save) after this much training wall time
    # f5rl (TRL's name): warm-up as a fraction of the run's updates; wins over num_warmup_updates
    warmup_ratio: float | None = None
    seed: int = 666
    ema_beta: float = 0.9999  # f5rl: EMA settings (F5-TTS's fixed values by default)
    ema_update_after_step: int = 100
    ema_update_every: int = 10

    def rules(self) -> None:
        _one_of("optim.mixed_precision", self.mixed_precision, ("auto", "no", "bf16", "fp16"))
        if self.learning_rate <= 0:
            raise ValueError(f"optim.learning_rate={self.learning_rate} must be > 0")
        if self.grad_accumulation_steps < 1:
            raise ValueError(f"optim.grad_accumulation_steps={self.grad_accumulation_steps} must be >= 1")
        if self.epochs < 1:
            raise ValueError(f"optim.epochs={self.epochs} must be >= 1")
        if self.num_warmup_updates < 0:
            raise ValueError(f"optim.num_warmup_updates={self.num_warmup_updates} must be >= 0")
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio={self.warmup_ratio} must be in [0, 1)")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"optim.max_minutes={self.max_minutes} must be > 0 (or null: no time limit)")


@dataclass
class ArchCfg(Checked):
    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: float = 2.0
    text_dim: int = 512
    text_mask_padding: bool = True
    qk_norm: str | None = None
    conv_layers: int = 4
    pe_attn_head: int | None = None
    attn_backend: str = "torch"
    # true: padded frames are masked out of attention (a padded batch equals its rows run alone);
    # false: F5-TTS's released setting, padded frames are attended to (outputs depend on the padding)
    attn_mask_enabled: bool = True
    checkpoint_activations: bool = False
    text_embedding_average_upsampling: bool = False
    dropout: float = 0.1

    def rules(self) -> None:
        if self.qk_norm is not None:
            raise ValueError("model.arch.qk_norm is not supported by f5rl (released F5 models use null)")
        _one_of("model.arch.attn_backend", self.attn_backend, ("torch",))


@dataclass
class MelSpecCfg(Checked):
    target_sample_rate: int = 24000
    n_mel_channels: int = 100
    hop_length: int = 256
    win_length: int = 1024
    n_fft: int = 1024
    mel_spec_type: str = "vocos"

    def rules(self) -> None:
        _one_of("model.mel_spec.mel_spec_type", self.mel_spec_type, ("vocos", "bigvgan"))


@dataclass
class VocoderCfg(Checked):
    name: str = "griffin_lim"  # f5rl: griffin_lim (always available) | vocos
    is_local: bool = False
    local_path: str | None = None
    griffin_lim_iters: int = 32

    def rules(self) -> None:
        _one_of("model.vocoder.name", self.name, ("griffin_lim", "vocos"))
        if self.is_local and not self.local_path:
            raise ValueError("model.vocoder.is_local=true needs model.vocoder.local_path=/path/to/vocos-mel-24khz")


@dataclass
class LoraCfg(Checked):
    enabled: bool = False  # f5rl: train low-rank adapters instead of all weights
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    # name suffixes of the wrapped linear layers, or all-linear (TRL/PEFT's shorthand: every linear
    # layer but the output projections)
    targets: Any = field(default_factory=lambda: ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
                                                  "ff.ff.0.0", "ff.ff.2"])
    train_also: list[str] = field(default_factory=lambda: ["proj_out_ln_sig"])  # trained in full

    def rules(self) -> None:
        if isinstance(self.targets, str):
            if self.targets != "all-linear":
                raise ValueError(f"model.lora.targets={self.targets!r}: give a list of layer names or all-linear")
            self.targets = ["all-linear"]
        elif not (isinstance(self.targets, (list, tuple)) and self.targets
                  and all(isinstance(t, str) for t in self.targets)):
            raise ValueError(f"model.lora.targets={self.targets!r}: give a list of layer names or all-linear")
        self.targets = list(self.targets)
        if self.rank < 1:
            raise ValueError(f"model.lora.rank={self.rank} must be >= 1")


@dataclass
class ModelCfg(Checked):
    name: str = "F5TTS_v1_Base"
    tokenizer: str = "pinyin"
    tokenizer_path: str | None = None
    backbone: str = "DiT"
    output_dist: str = "deterministic"  # F5R: deterministic | gaussian
    objective: str = "mse"  # mse | gaussian_nll (stage 2 uses train_rl)
    sample_from_dist: bool = False
    use_rl_head: bool = False
    ln_sig_init: float = 1.0
    nll_t_weight: float = 1.0
    # f5rl: torch.compile the DiT's blocks for training, rollouts and sampling (f5rl.model.dit.compiled_trunk);
    # the first calls compile (about a minute on a CPU), later ones are faster (benchmarks/bench_vs_upstream.py)
    compile: bool = False
    arch: ArchCfg = field(default_factory=ArchCfg)
    mel_spec: MelSpecCfg = field(default_factory=MelSpecCfg)
    vocoder: VocoderCfg = field(default_factory=VocoderCfg)
    lora: LoraCfg = field(default_factory=LoraCfg)
    # f5rl: train only the DiT modules named here (checkpoint names, e.g. [proj_out_ln_sig]: a σ-head warmup that
    # leaves the velocity as it is, for a model already aligned); empty: every weight
    train_only: list[str] = field(default_factory=list)

    def rules(self) -> None:
        if not (isinstance(self.train_only, (list, tuple)) and all(isinstance(m, str) for m in self.train_only)):
            raise ValueError(f"model.train_only={self.train_only!r}: give a list of module names, e.g. "
                             "[proj_out_ln_sig]")
        if self.train_only and self.lora.enabled:
            raise ValueError(f"model.train_only={list(self.train_only)} with model.lora.enabled=true: LoRA trains its "
                             "adapters; name the modules it trains in full in model.lora.train_also instead")
        _one_of("model.tokenizer", self.tokenizer, ("char", "pinyin", "custom", "byte", "phoneme"))
        _one_of("model.backbone", self.backbone, ("DiT",))
        _one_of("model.output_dist", self.output_dist, ("deterministic", "gaussian"))
        if self.tokenizer == "custom" and not self.tokenizer_path:
            raise ValueError("model.tokenizer=custom needs model.tokenizer_path=/path/to/vocab.txt")
        if self.output_dist == "gaussian" and not self.use_rl_head:
            raise ValueError("model.output_dist=gaussian needs model.use_rl_head=true")
        if self.sample_from_dist and not self.use_rl_head:
            raise ValueError("model.sample_from_dist=true needs model.use_rl_head=true")
        if self.ln_sig_init <= 0:
            raise ValueError(f"model.ln_sig_init={self.ln_sig_init} must be > 0 (it is σ0)")


@dataclass
class CkptsCfg(Checked):
    logger: str | None = "trackio"  # trackio | wandb | tensorboard | null
    log_samples: bool = True
    save_per_updates: int = 50000
    keep_last_n_checkpoints: int = -1
    last_per_updates: int = 5000
    save_dir: str = "ckpts/run"
    init_from: str | None = None  # f5rl: weights to start from when the save dir has none
    project: str = "f5rl"  # f5rl: logger project name
    run_name: str | None = None
    sample_steps: int = 32  # f5rl: ODE steps for logged samples
    sample_cfg_strength: float = 2.0
    log_every: int = 1  # f5rl: log metrics every N updates
    keep_best_by: str | None = None  # f5rl: e.g. val/mean_reward or val/cer -> model_best.pt
    keep_best_mode: str = "max"  # f5rl: max (higher is better) | min (e.g. val/cer)
    val_list: str | None = None  # f5rl: stage 0/1 validation test list (Seed-TTS .lst or JSONL), e.g. test_eval.jsonl
    val_lists: list[str] = field(default_factory=list)  # f5rl: more lists (e.g. test_free_eval.jsonl), each
    # logged as val/<file stem>/cer ...; with any, val/all/cer ... are the means over every list's items
    val_every: int = 0  # f5rl: evaluate every N updates, between training steps (0: never)
    val_size: int = 8  # items of each list
    val_nfe: int = 16

    def rules(self) -> None:
        if self.logger is not None:
            _one_of("ckpts.logger", self.logger, ("trackio", "wandb", "tensorboard"))
        if self.keep_last_n_checkpoints < -1:
            raise ValueError("ckpts.keep_last_n_checkpoints must be -1 (keep all), 0 (none) or N > 0")
        _one_of("ckpts.keep_best_mode", self.keep_best_mode, ("max", "min"))
        if self.keep_best_by and self.keep_best_by.startswith("val_"):
            # NeMo's spelling (val_mean_reward) names the same logged value as val/mean_reward
            self.keep_best_by = "val/" + self.keep_best_by.removeprefix("val_")
        if self.save_per_updates <= 0 or self.last_per_updates <= 0:
            raise ValueError("ckpts.save_per_updates and ckpts.last_per_updates must be > 0")
        stems = [Path(p).stem for p in self.val_lists]
        if self.val_lists and not self.val_list:
            raise ValueError("ckpts.val_lists adds lists to ckpts.val_list; set ckpts.val_list too")
        if len(set(stems)) < len(stems) or "all" in stems:
            raise ValueError(f"ckpts.val_lists {self.val_lists}: each list's file name names its metrics "
                             "(val/<name>/cer), so the names must differ and not be 'all'")


@dataclass
class TrainConfig(Checked):
    datasets: DatasetsCfg = field(default_factory=DatasetsCfg)
    optim: OptimCfg = field(default_factory=OptimCfg)
    model: ModelCfg = field(default_factory=ModelCfg)
    ckpts: CkptsCfg = field(default_factory=CkptsCfg)

    def check_keep_best(self, validating: bool, known: bool, how: str, names: str) -> None:
        """``ckpts.keep_best_by`` needs validation that logs the named value."""
        key = self.ckpts.keep_best_by
        if not key:
            return
        if not validating:
            raise ValueError(f"ckpts.keep_best_by={key} keeps the best validated model, but validation is off: {how}")
        if not known:
            raise ValueError(f"ckpts.keep_best_by={key} is not a value this stage's validation logs; use {names}")

    def rules(self) -> None:
        key = self.ckpts.keep_best_by or ""
        metrics = ("cer", "wer", "sim", "dnsmos", "rtf")
        groups = ["val/"] + ([f"val/{Path(p).stem}/" for p in self.ckpts.val_lists] + ["val/all/"]
                             if self.ckpts.val_lists else [])
        self.check_keep_best(bool(self.ckpts.val_list) and self.ckpts.val_every > 0,
                             key in {g + m for g in groups for m in metrics},
                             "set ckpts.val_list=test_eval.jsonl and ckpts.val_every=N",
                             "val/cer (keep_best_mode=min), val/wer, val/sim, val/dnsmos or val/rtf"
                             + (", or the same under val/<list name>/ or val/all/" if self.ckpts.val_lists else ""))
        self.check_objective()

    def check_objective(self) -> None:
        if self.model.objective not in ("mse", "gaussian_nll"):
            raise ValueError(
                f"model.objective={self.model.objective!r}: f5rl.train.train runs mse|gaussian_nll; "
                "GRPO runs with python -m f5rl.train.train_rl"
            )
        if self.model.objective == "gaussian_nll" and not self.model.use_rl_head:
            raise ValueError("model.objective=gaussian_nll needs model.use_rl_head=true")


# stage 2 and DPO live in their own module (one module per concept); importable from here too
from f5rl.config.alignment import (  # noqa: E402
    DPOCfg,
    DPOTrainConfig,
    ProviderCfg,
    RewardsCfg,
    RLCfg,
    RLTrainConfig,
)

__all__ = ["ArchCfg", "Checked", "CkptsCfg", "DPOCfg", "DPOTrainConfig", "DatasetsCfg", "LoraCfg", "MelSpecCfg",
           "ModelCfg", "OptimCfg", "ProviderCfg", "RLCfg", "RLTrainConfig", "RewardsCfg", "TrainConfig",
           "VocoderCfg"]

import subprocess
import sys
import time

import pytest

from f5rl.config import ConfigError, compose, validate
from f5rl.config.loading import available_configs
from f5rl.config.schema import TrainConfig

STAGE1_RECIPE = [
    "datasets.name=mini_rl", "datasets.batch_size_per_gpu=2", "datasets.batch_size_type=sample",
    "datasets.num_workers=2", "model.tokenizer=custom",
    "model.tokenizer_path=/x/data/Emilia_ZH_EN_pinyin/vocab.txt", "model.output_dist=gaussian",
    "model.objective=gaussian_nll", "model.sample_from_dist=false", "model.use_rl_head=true",
    "model.arch.checkpoint_activations=false", "optim.epochs=1", "optim.learning_rate=1e-5",
    "optim.num_warmup_updates=0", "optim.grad_accumulation_steps=1", "optim.bnb_optimizer=false",
    "ckpts.save_dir=ckpts/mini_rl_warmup", "ckpts.save_per_updates=1000", "ckpts.keep_last_n_checkpoints=0",
    "ckpts.log_samples=false", "ckpts.logger=null",
]


def test_every_shipped_config_loads_and_validates():
    names = available_configs()
    assert {"F5TTS_v1_Base", "F5TTS_Base", "F5TTS_v1_Small", "F5TTS_tiny_demo"} <= set(names)
    from f5rl.config.schema import DPOTrainConfig, RLTrainConfig

    for name in names:
        schema = RLTrainConfig if name.startswith("F5TTS_RL") else TrainConfig
        over = []
        if name.startswith("F5TTS_DPO"):
            schema, over = DPOTrainConfig, ["dpo.train_manifest=pairs/train.jsonl"]
        cfg = validate(compose(name, over), schema)
        assert cfg.model.name and cfg.ckpts.save_dir


def test_variant_architectures():
    v0 = validate(compose("F5TTS_Base"), TrainConfig)
    assert v0.model.arch.text_mask_padding is False and v0.model.arch.pe_attn_head == 1
    small = validate(compose("F5TTS_v1_Small"), TrainConfig)
    assert (small.model.arch.dim, small.model.arch.depth, small.model.arch.heads) == (768, 18, 12)


def test_stage1_recipe_overrides_parse():
    cfg = validate(compose("F5TTS_v1_Base", STAGE1_RECIPE), TrainConfig)
    assert cfg.model.objective == "gaussian_nll" and cfg.model.use_rl_head
    assert cfg.ckpts.logger is None and cfg.datasets.num_workers == 2
    assert cfg.ckpts.keep_last_n_checkpoints == 0


@pytest.mark.parametrize("override, key", [
    ("model.archx.dim=3", "archx"),
    ("optim.epochz=2", "epochz"),
])
def test_misspelt_key_names_the_key(override, key):
    with pytest.raises(Exception, match=key):
        compose("F5TTS_tiny_demo", [override])


@pytest.mark.parametrize("override, key", [
    ("optim.epochs=abc", "optim.epochs"),
    ("datasets.batch_size_type=frames", "datasets.batch_size_type"),
    ("model.objective=gaussian_nll", "use_rl_head"),
    ("ckpts.logger=tensorbored", "ckpts.logger"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        validate(compose("F5TTS_tiny_demo", [override]), TrainConfig)


def test_cli_typo_fails_fast_with_key_name(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "f5rl.train.train", "-cn", "F5TTS_tiny_demo", "optim.epochz=1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    elapsed = time.perf_counter() - t0
    print(f"CLI typo rejected in {elapsed:.2f} s (interpreter start included)")
    assert proc.returncode != 0
    assert "epochz" in proc.stderr + proc.stdout
    proc = subprocess.run([sys.executable, "-m", "f5rl.train.train", "-cn", "F5TTS_tiny_demo", "optim.epochs=x"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "optim.epochs" in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing heavy started


def test_every_arch_key_reaches_the_dit_and_every_mel_key_the_front_end():
    """model.arch is the DiT's config and model.mel_spec the mel front end's: no hand-copied field can
    be forgotten (only qk_norm and attn_backend, which the schema restricts, stay behind)."""
    from dataclasses import fields

    from f5rl.config.schema import ModelCfg
    from f5rl.model.build import dit_config, mel_config

    m = ModelCfg()
    m.arch.dim, m.arch.depth, m.arch.attn_mask_enabled, m.arch.dropout = 96, 3, False, 0.25
    m.mel_spec.n_mel_channels, m.mel_spec.hop_length = 80, 240
    d = dit_config(m, vocab_size=42)
    for f in fields(m.arch):
        if f.name not in ("qk_norm", "attn_backend"):
            assert getattr(d, f.name) == getattr(m.arch, f.name), f.name
    assert (d.mel_dim, d.text_num_embeds) == (80, 42)
    assert not d.compile
    m.compile = True
    assert dit_config(m, vocab_size=42).compile  # model.compile reaches the DiT
    mel = mel_config(m)
    assert (mel.n_mels, mel.hop_length, mel.sample_rate, mel.mel_type) == (80, 240, 24000, "vocos")


def test_rl_tiny_defaults_are_the_measured_grpo_recipe():
    """README "GRPO on the demo base": the best measured stage-2 row is F5TTS_RL_tiny's defaults."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig

    cfg = validate(compose("F5TTS_RL_tiny", []), RLTrainConfig)
    rl = cfg.rl
    assert (rl.loss, rl.awm_negative_weight, list(rl.awm_time_range), rl.steps, rl.inner_epochs, rl.kl_weight,
            rl.cfg_prob, rl.awm_guided) == ("awm", 0.0, [0.0, 0.1], 8, 8, 1.0, 1.0, False)
    assert cfg.optim.learning_rate == 1e-4 and cfg.model.lora.enabled is False
    assert (rl.rewards.mode, rl.rewards.process) == ("group_normalized_sum", "server")
    # both Whisper providers encode a 10-s window (the paired bench run: level with 30 s, 1.7x the updates)
    assert [(p.name, p.weight, p.config.get("model"), p.config.get("window_s")) for p in rl.rewards.providers] == [
        ("whisper_asr", 1.0, "embedded:tiny.en", 10.0), ("resemblyzer_sim", 1.0, None, None),
        ("whisper_nll", 1.0, "embedded:tiny.en", 10.0)]


def test_keep_best_by_needs_validation_and_a_logged_name(tmp_path):
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig, RLTrainConfig, TrainConfig

    def rl(*over):
        return validate(compose("F5TTS_RL_tiny", list(over)), RLTrainConfig)

    on = ["rl.val_manifest=held_out.jsonl", "rl.val_every=5"]
    assert rl(*on, "ckpts.keep_best_by=val_mean_reward").ckpts.keep_best_by == "val/mean_reward"  # NeMo's name
    assert rl(*on, "ckpts.keep_best_by=val/whisper_asr/accuracy").ckpts.keep_best_by == "val/whisper_asr/accuracy"
    with pytest.raises(ValueError, match="validation is off: set rl.val_manifest"):
        rl("ckpts.keep_best_by=val/mean_reward")
    with pytest.raises(ValueError, match="not a value this stage's validation logs"):
        rl(*on, "ckpts.keep_best_by=val/mean_rewrad")
    with pytest.raises(ValueError, match="validation is off: set ckpts.val_list"):
        validate(compose("F5TTS_tiny_demo", ["ckpts.keep_best_by=val/cer"]), TrainConfig)
    with pytest.raises(ValueError, match="use val/cer"):
        validate(compose("F5TTS_tiny_demo", ["ckpts.keep_best_by=val/mean_reward", "ckpts.val_list=x.jsonl",
                                             "ckpts.val_every=5"]), TrainConfig)
    on = ["ckpts.val_list=t.jsonl", "ckpts.val_every=5"]
    both = validate(compose("F5TTS_tiny_demo", [*on, "ckpts.val_lists=[free.jsonl]",
                                                "ckpts.keep_best_by=val/all/cer"]), TrainConfig)
    assert both.ckpts.val_lists == ["free.jsonl"]
    assert validate(compose("F5TTS_tiny_demo", [*on, "ckpts.val_lists=[free.jsonl]",
                                                "ckpts.keep_best_by=val/free/sim"]), TrainConfig)
    with pytest.raises(ValueError, match="use val/cer"):  # no second list: nothing logs val/all/
        validate(compose("F5TTS_tiny_demo", [*on, "ckpts.keep_best_by=val/all/cer"]), TrainConfig)
    with pytest.raises(ValueError, match="set ckpts.val_list too"):
        validate(compose("F5TTS_tiny_demo", ["ckpts.val_lists=[free.jsonl]"]), TrainConfig)
    with pytest.raises(ValueError, match="names must differ"):
        validate(compose("F5TTS_tiny_demo", [*on, "ckpts.val_lists=[a/free.jsonl,b/free.jsonl]"]), TrainConfig)
    with pytest.raises(ValueError, match="validation is off: set dpo.val_manifest"):
        validate(compose("F5TTS_DPO_tiny", ["dpo.train_manifest=t.jsonl", "ckpts.keep_best_by=val/loss"]),
                 DPOTrainConfig)


@pytest.mark.parametrize("override, message", [
    ("rl.awm_negative_weight=1.5", "rl.awm_negative_weight=1.5 must be in"),
    ("rl.awm_negative_weight=-0.1", "rl.awm_negative_weight=-0.1 must be in"),
    ("rl.awm_draws=0", "rl.awm_draws=0 must be >= 1"),
    ("rl.awm_time_range=[0.5,0.1]", "rl.awm_time_range"),
    ("rl.adv_norm=max", "rl.adv_norm"),
    ("rl.min_reward_spread=-0.1", "rl.min_reward_spread=-0.1 must be >= 0"),
    ("rl.loss=grpo rl.awm_guided=true", "rl.awm_guided=true applies to rl.loss=awm only"),  # awm is the default
    ("rl.awm_drift_time_range=[0.2,1.5]", "rl.awm_drift_time_range"),
    ("rl.awm_drift_time_range=[0,1] rl.kl_weight=0", "set rl.loss=awm, rl.kl_weight > 0"),
    ("rl.awm_drift_time_range=[0,1] rl.reference_free=true", "rl.reference_free=false"),
    ("rl.awm_drift_time_range=[0,1] rl.loss=grpo", "or rl.awm_drift_time_range=null"),
])
def test_bad_awm_settings_are_refused(override, message):
    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig

    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        validate(compose("F5TTS_RL_tiny", override.split()), RLTrainConfig)
    assert validate(compose("F5TTS_RL_tiny", ["rl.awm_negative_weight=0"]), RLTrainConfig).rl.awm_negative_weight == 0
    assert validate(compose("F5TTS_RL_tiny", ["rl.awm_drift_time_range=[0,1]"]),
                    RLTrainConfig).rl.awm_drift_time_range == [0, 1]

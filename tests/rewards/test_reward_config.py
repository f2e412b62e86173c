"""Reward keys of the published recipes are settable without Hydra's ``+`` and checked at config time."""

import subprocess
import sys

import pytest

from f5rl.config import compose, validate
from f5rl.config.schema import RLTrainConfig
from f5rl.train.rl_trainer import check_rewards


def rl(name="F5TTS_RL_tiny", *over):
    return validate(compose(name, list(over)), RLTrainConfig)


def test_recipe_reward_keys_are_declared_and_reach_the_providers():
    from f5rl.rewards.combine import RewardSet
    from f5rl.train.rl_trainer import provider_dicts

    cfg = rl("F5TTS_RL_tiny", "rl.rewards.providers.0.config.wer_mode=word",
             "rl.rewards.providers.0.config.ref_source=audio", "rl.rewards.providers.0.label=asr",
             "rl.rewards.mode=harmonic", "rl.rewards.params.beta_c=5", "rl.rewards.params.lambda_n=0.25")
    check_rewards(cfg)
    r = cfg.rl.rewards
    rs = RewardSet.from_config(provider_dicts(r), r.mode, dict(r.params))
    asr = rs.providers[0]
    assert (asr.wer_mode, asr.ref_source, asr.err_name, rs.labels[0]) == ("word", "audio", "word_error_rate", "asr")
    assert rs.params["beta_c"] == 5 and rs.params["lambda_n"] == 0.25
    # F5-TTS RL README: funasr_wer is provider 1 of F5TTS_RL
    big = rl("F5TTS_RL", "rl.rewards.providers.1.config.wer_mode=word")
    check_rewards(big)
    assert big.rl.rewards.providers[1].config["wer_mode"] == "word"


@pytest.mark.parametrize("override, message", [
    ("rl.rewards.providers.0.config.wer_mode=words", "rl.rewards.providers.0 (whisper_asr): wer_mode='words'"),
    ("rl.rewards.providers.0.config.ref_source=ground", "ref_source='ground'; use text or audio"),
    ("+rl.rewards.providers.1.config.chars_per_second=3",
     "rl.rewards.providers.1 (resemblyzer_sim): .*unexpected keyword argument 'chars_per_second'"),
    ("rl.rewards.providers.1.name=resemblyzr_sim", "unknown reward provider 'resemblyzr_sim'"),
    ("rl.rewards.params.beta_c=5", "rl.rewards.params.beta_c=5 only applies to rl.rewards.mode=harmonic"),
    ("rl.rewards.providers.1.label=whisper_asr", "share a label"),
])
def test_bad_reward_settings_fail_at_config_time(override, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_rewards(rl("F5TTS_RL_tiny", override))


def test_group_normalized_sum_needs_each_group_in_one_process():
    ok = rl("F5TTS_RL_tiny", "rl.rewards.mode=group_normalized_sum")
    assert ok.rl.rewards.mode == "group_normalized_sum"
    with pytest.raises(ValueError, match="rl.repeat_count=2 spreads a group over processes"):
        rl("F5TTS_RL_tiny", "rl.rewards.mode=group_normalized_sum", "rl.repeat_count=2")


def test_train_rl_refuses_a_bad_reward_value_in_one_line_before_loading_anything(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "f5rl.train.train_rl", "-cn", "F5TTS_RL_tiny",
                           f"ckpts.save_dir={tmp_path}", "rl.rewards.providers.0.config.wer_mode=words"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("config error: rl.rewards.providers.0 (whisper_asr)")
    assert "Traceback" not in proc.stderr and not list(tmp_path.glob("*.pt"))

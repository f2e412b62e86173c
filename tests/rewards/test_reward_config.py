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


def test_asr_reward_averages_its_error_over_shifted_copies():
    """``shifts_ms``: each clip is transcribed after each amount of leading silence (one batch) and the
    error is the mean over them; the reported transcript is the first shift's."""
    import numpy as np
    import torch

    from f5rl.rewards.base import RewardBatch
    from f5rl.rewards.providers.asr import ASRReward

    calls = []

    class ShiftSensitive(ASRReward):  # hears "abcd" from a clip that starts with sound, "abxy" after silence
        def transcribe(self, clips, languages):
            calls.append([len(c) for c in clips])
            return ["abxy" if c[0] == 0 else "abcd" for c in clips]

    batch = RewardBatch([torch.full((160,), 0.5), torch.full((320,), 0.5)], ["abcd", "abcd"], sample_rate=16000)
    plain = ShiftSensitive()(batch)
    assert plain.scores.tolist() == [1.0, 1.0] and calls == [[160, 320]]
    calls.clear()
    asr = ShiftSensitive(shifts_ms=[0, 5])
    out = asr(batch)
    # CER 0 unshifted, 0.5 after 5 ms (80 samples at 16 kHz): mean 0.25
    assert calls == [[160, 320, 240, 400]]
    assert out.scores.tolist() == [0.75, 0.75] and out.components["char_error_rate"].tolist() == [0.25, 0.25]
    assert asr.last_transcripts == ["abcd", "abcd"]
    for bad in ([], [-5], "5", [0, 500]):
        with pytest.raises(ValueError, match="shifts_ms="):
            ShiftSensitive(shifts_ms=bad)
    assert np.isclose(ShiftSensitive(shifts_ms=(0, 2.5)).shifts_ms, [0, 2.5]).all()


def test_recipe_asr_takes_shifts_from_the_config():
    from f5rl.rewards.combine import RewardSet
    from f5rl.train.rl_trainer import provider_dicts

    cfg = rl("F5TTS_RL_tiny", "rl.rewards.providers.0.config.shifts_ms=[0,5,10,15]")
    check_rewards(cfg)
    r = cfg.rl.rewards
    assert RewardSet.from_config(provider_dicts(r), r.mode, dict(r.params)).providers[0].shifts_ms == [0, 5, 10, 15]
    with pytest.raises(ValueError, match="shifts_ms="):
        check_rewards(rl("F5TTS_RL_tiny", "rl.rewards.providers.0.config.shifts_ms=[-1]"))

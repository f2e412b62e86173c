"""The stage-1 command lines that make demo, bench_grpo.py and the CI test share (f5rl.scripts.grpo_recipe)."""

from pathlib import Path

import pytest

from f5rl.config.loading import compose, validate
from f5rl.config.schema import TrainConfig
from f5rl.eval.base_model import SHIPPED
from f5rl.scripts.grpo_recipe import warmup_argv


@pytest.mark.parametrize("sigma_only, train_only, lr", [(False, [], 3e-4), (True, ["proj_out_ln_sig"], 1e-2)])
def test_warmup_command_trains_every_weight_or_the_sigma_head_alone(tmp_path, sigma_only, train_only, lr):
    argv = warmup_argv(SHIPPED, Path("data/demo_char"), tmp_path / "s1", 50, init=tmp_path / "dpo.pt",
                       sigma_only=sigma_only)
    assert argv[:2] == ["-cn", "F5TTS_tiny_demo"]
    cfg = validate(compose(argv[1], argv[2:]), TrainConfig)
    assert cfg.model.train_only == train_only and cfg.optim.learning_rate == lr
    assert cfg.model.objective == "gaussian_nll" and cfg.model.use_rl_head
    assert cfg.ckpts.init_from == str(tmp_path / "dpo.pt") and cfg.optim.total_updates == 50

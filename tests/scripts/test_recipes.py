"""The runnable recipes in scripts/ (what users copy): each one's --dry-run prints the commands it would
run; every Hydra command among them composes and validates (a misspelt key fails here, not on a GPU
cluster), and every other f5rl command names flags its module really has."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from f5rl.config import compose, validate
from f5rl.config.schema import DPOTrainConfig, RLTrainConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {"f5rl.train.train": TrainConfig, "f5rl.train.train_rl": RLTrainConfig,
           "f5rl.train.train_dpo": DPOTrainConfig}
ENV = {"PATH": "/usr/bin:/bin", "AUDIO_CONTEXTS": "c.jsonl", "TEXTS": "t.txt", "HELD_OUT": "h.jsonl",
       "INIT": "ckpts/grpo/model_last.pt"}


def dry_run(script: str, *args: str, **env: str) -> list[list[str]]:
    proc = subprocess.run(["bash", str(ROOT / "scripts" / script), "--dry-run", *args], capture_output=True,
                          text=True, timeout=60, env={**ENV, **env})
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def module_of(argv: list[str]) -> tuple[str, list[str]]:
    i = argv.index("-m")
    return argv[i + 1], argv[i + 2:]


def check(argv: list[str]) -> str:
    module, args = module_of(argv)
    if module in SCHEMAS:
        assert args[0] == "-cn"
        validate(compose(args[1], args[2:]), SCHEMAS[module])
    else:
        source = (ROOT / "src" / Path(*module.split("."))).with_suffix(".py").read_text()
        for flag in (a for a in args if re.fullmatch(r"--[a-z_]+", a)):
            assert f'"{flag}"' in source, f"{module} has no flag {flag}"
    return module


def test_two_stage_gpu_recipe():
    cmds = [c for c in dry_run("two_stage_gpu.sh", LAUNCH="accelerate launch --multi_gpu --num_processes 8")
            if "-m" in c]
    modules = [check(c) for c in cmds]
    assert modules == ["f5rl.data.prepare", "f5rl.scripts.fetch_reward_asr_model",
                       "f5rl.scripts.fetch_reward_spk_model", "f5rl.train.train", "f5rl.train.train_rl"]
    assert cmds[3][:5] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "8"]


@pytest.mark.parametrize("env", [{"NPROC": "2"}, {"NPROC": "16", "NNODES": "2", "MACHINE_RANK": "1",
                                                   "MASTER": "10.0.0.1"}])
def test_multi_gpu_and_multi_node_launch(env):
    (cmd,) = dry_run("multi_gpu.sh", "rl.repeat_count=2", **env)
    assert check(cmd) == "f5rl.train.train_rl" and "rl.repeat_count=2" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == env["NPROC"]
    if "NNODES" in env:
        assert cmd[cmd.index("--machine_rank") + 1] == "1" and cmd[cmd.index("--main_process_ip") + 1] == "10.0.0.1"


def test_reward_server_and_dpo_rounds():
    (serve,) = dry_run("reward_server.sh", PROVIDERS="whisper_asr", PORT="8123")
    assert check(serve) == "f5rl.rewards.serve" and serve[serve.index("--port") + 1] == "8123"
    pairs, rounds = dry_run("dpo_rounds.sh", "optim.max_updates=5")
    assert [check(pairs), check(rounds)] == ["f5rl.prefs.create_text_context_pairs", "f5rl.prefs.iterate"]
    from f5rl.prefs.iterate import parser

    args = parser().parse_args(module_of(rounds)[1])
    validate(compose(args.config_name, ["dpo.train_manifest=x.jsonl", *args.overrides]), DPOTrainConfig)
    assert args.overrides == ["optim.max_updates=5"] and args.rounds == 2

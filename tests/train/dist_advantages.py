"""Run under `accelerate launch --num_processes 2`: stage-2 advantages of a group that spans the
two processes (rl.repeat_count=2), plus one real RL update. The main process writes JSON."""

import json
import sys

import torch
from plain_grpo import PLAIN_GRPO  # beside this script (accelerate puts its folder on sys.path)

from f5rl.config import compose, validate
from f5rl.config.schema import RLTrainConfig
from f5rl.train.rl_trainer import RLTrainer


def main(data_dir: str, save_dir: str, out: str) -> None:
    over = [f"ckpts.save_dir={save_dir}", f"datasets.path={data_dir}", "ckpts.logger=null", "ckpts.log_samples=false",
            "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
            "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no", "rl.steps=4",
            "rl.group_size=2", "rl.repeat_count=2", "datasets.batch_size_per_gpu=2", "optim.max_updates=1",
            "model.vocoder.griffin_lim_iters=2",
            "rl.rewards.providers=[{name: mel_energy, weight: 1.0, config: {target: -2.0}}]", *PLAIN_GRPO]
    trainer = RLTrainer(validate(compose("F5TTS_RL_tiny", over), RLTrainConfig))
    trainer.setup()
    acc = trainer.accelerator
    # each process holds 2 prompts x 2 rollouts; the same prompts sit on both processes
    rewards = torch.tensor([1.0, 2.0, 5.0, 9.0]) + 10 * acc.process_index
    adv = trainer.advantages(rewards)
    all_adv = acc.gather(adv.adv.to(trainer.device)).cpu()
    all_rewards = acc.gather(rewards.to(trainer.device)).cpu()
    batches = [trainer.sampler.epoch_batches(0)[0]]
    all_batches = acc.gather(torch.tensor(batches[0], device=trainer.device)).cpu()
    summary = trainer.train()
    if acc.is_main_process:
        with open(out, "w") as f:
            json.dump({"adv": all_adv.tolist(), "rewards": all_rewards.tolist(), "batches": all_batches.tolist(),
                       "updates": summary.updates}, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])

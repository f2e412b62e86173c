"""Stage 2 entry point: GRPO over ODE rollouts (the F5-TTS RL recipe's command, package renamed).

    python -m f5rl.train.train_rl [-cn F5TTS_RL] rl.steps=30 rl.group_size=4 rl.loss=grpo ...
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from f5rl.config.loading import validate_or_exit
from f5rl.config.schema import RLTrainConfig


def run(cfg: RLTrainConfig):
    from f5rl.train.rl_trainer import RLTrainer

    trainer = RLTrainer(cfg)
    try:
        trainer.setup()
        summary = trainer.train()
    finally:
        trainer.close()  # the reward server of rl.rewards.process=server
    if trainer.accelerator.is_main_process:
        print(summary.render())
    return summary


@hydra.main(config_path="../configs", config_name="F5TTS_RL", version_base="1.3")
def main(raw: DictConfig) -> None:
    from f5rl.train.checkpointing import check_start
    from f5rl.train.rl_trainer import check_rewards

    run(validate_or_exit(raw, RLTrainConfig, check_rewards, check_start))


if __name__ == "__main__":
    from f5rl.config.loading import precheck_command_line

    precheck_command_line("F5TTS_RL")
    main()

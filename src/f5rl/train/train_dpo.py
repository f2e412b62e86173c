"""Flow-matching DPO entry point:

    python -m f5rl.train.train_dpo -cn F5TTS_DPO_tiny dpo.train_manifest=pairs/train.jsonl \
        dpo.val_manifest=pairs/val.jsonl ckpts.init_from=<policy checkpoint> dpo.loss_type=dpo dpo.beta=1000
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from f5rl.config.loading import validate_or_exit
from f5rl.config.schema import DPOTrainConfig


def run(cfg: DPOTrainConfig):
    from f5rl.train.dpo_trainer import DPOTrainer

    trainer = DPOTrainer(cfg)
    trainer.setup()
    summary = trainer.train()
    if trainer.accelerator.is_main_process:
        print(summary.render())
    return trainer, summary


@hydra.main(config_path="../configs", config_name="F5TTS_DPO", version_base="1.3")
def main(raw: DictConfig) -> None:
    from f5rl.train.checkpointing import check_start

    run(validate_or_exit(raw, DPOTrainConfig, lambda cfg: check_start(cfg, need_weights=True)))


if __name__ == "__main__":
    from f5rl.config.loading import precheck_command_line

    precheck_command_line("F5TTS_DPO")
    main()

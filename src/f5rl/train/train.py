"""Stage 0/1 training entry point (F5-TTS's command line, package renamed):

    python -m f5rl.train.train -cn F5TTS_v1_Base datasets.name=... model.objective=gaussian_nll ...

The config is composed by Hydra from the configs shipped in the package, validated against the
schema (a misspelt key or a wrong type fails before torch is imported), then handed to the
trainer.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from f5rl.config.loading import validate_or_exit
from f5rl.config.schema import TrainConfig


def run(cfg: TrainConfig) -> None:
    from f5rl.train.trainer import Trainer

    trainer = Trainer(cfg)
    trainer.setup()
    summary = trainer.train()
    if trainer.accelerator.is_main_process:
        print(summary.render())


@hydra.main(config_path="../configs", config_name="F5TTS_v1_Base", version_base="1.3")
def main(raw: DictConfig) -> None:
    from f5rl.train.checkpointing import check_start

    run(validate_or_exit(raw, TrainConfig, check_start))


if __name__ == "__main__":
    from f5rl.config.loading import precheck_command_line

    precheck_command_line("F5TTS_v1_Base")
    main()

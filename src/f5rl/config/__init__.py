"""Typed, validated configuration (Hydra YAML → dataclasses). Imports no torch."""

from f5rl.config.loading import ConfigError, compose, config_dir, validate
from f5rl.config.schema import TrainConfig

__all__ = ["ConfigError", "TrainConfig", "compose", "config_dir", "validate"]

"""Reward providers behind one protocol, a registry with entry-point plugins, and combiners."""

from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.registry import available, build_provider, get_provider_class, register

__all__ = ["RewardBatch", "RewardOutput", "RewardProvider", "available", "build_provider", "get_provider_class",
           "register"]

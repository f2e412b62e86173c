"""Model: the DiT backbone, flow-matching wrapper, sampler pieces and checkpoint io."""

from f5rl.model.cfm import CFM, CFMConfig, LossOutput, SampleOutput
from f5rl.model.checkpoint import load_dit_checkpoint, load_dit_state, save_released_format
from f5rl.model.dit import DiT, DiTConfig, VelocityOutput

__all__ = [
    "CFM", "CFMConfig", "DiT", "DiTConfig", "LossOutput", "SampleOutput", "VelocityOutput",
    "load_dit_checkpoint", "load_dit_state", "save_released_format",
]

"""Vocoder choice by name: ``griffin_lim`` (always available, embedded default) or ``vocos``."""

from __future__ import annotations

from torch import nn

from f5rl.audio.griffinlim import GriffinLim, GriffinLimConfig
from f5rl.audio.mel import MelConfig

VOCODERS = ("griffin_lim", "vocos")


def build_vocoder(name: str = "griffin_lim", path: str | None = None, mel: MelConfig | None = None,
                  n_iter: int = 32) -> nn.Module:
    """Return a module mapping log-mel ``(b, d, n)`` to audio ``(b, s)`` at 24 kHz."""
    mel = mel or MelConfig()
    if name == "griffin_lim":
        return GriffinLim(mel, GriffinLimConfig(n_iter=n_iter)).eval()
    if name == "vocos":
        if mel.mel_type != "vocos":
            raise ValueError("the Vocos vocoder expects mel_spec_type='vocos' features")
        from f5rl.audio.vocos import VOCOS_HUB_ID, Vocos

        return Vocos.from_pretrained(path or f"hf://{VOCOS_HUB_ID}")
    raise ValueError(f"unknown vocoder {name!r}; available: {', '.join(VOCODERS)}")

"""Audio: file io and resampling, the F5 mel front ends, and vocoders."""

from f5rl.audio.griffinlim import GriffinLim, GriffinLimConfig, spectral_convergence
from f5rl.audio.io import TARGET_SAMPLE_RATE, load_audio, resample, save_audio
from f5rl.audio.mel import MelConfig, MelSpectrogram, mel_filterbank
from f5rl.audio.vocoder import build_vocoder

__all__ = [
    "GriffinLim", "GriffinLimConfig", "MelConfig", "MelSpectrogram", "TARGET_SAMPLE_RATE",
    "build_vocoder", "load_audio", "mel_filterbank", "resample", "save_audio", "spectral_convergence",
]

"""Log-mel front ends of F5-TTS, in torch alone (no torchaudio).

Two variants (DESIGN §3):

* ``vocos``: what ``torchaudio.transforms.MelSpectrogram(24000, n_fft=1024, win_length=1024,
  hop_length=256, n_mels=100, power=1, center=True, pad_mode="reflect", norm=None,
  mel_scale="htk")`` computes, followed by ``log(clamp(x, 1e-5))``.
* ``bigvgan``: slaney mel basis with slaney area normalisation, reflect pad of ``(n_fft-hop)/2`` on
  both sides, ``center=False``, magnitude ``sqrt(re² + im² + 1e-9)``.

Shapes: audio ``(b, s)`` samples → mel ``(b, d, n)`` with ``d`` mel bins and ``n`` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MEL_TYPES = ("vocos", "bigvgan")


@dataclass(frozen=True)
class MelConfig:
    """Mel front-end settings; defaults are the F5-TTS 24 kHz values."""

    sample_rate: int = 24000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 100
    mel_type: str = "vocos"

    def __post_init__(self) -> None:
        if self.mel_type not in MEL_TYPES:
            raise ValueError(f"mel_spec_type={self.mel_type!r} is not known; use one of {MEL_TYPES}")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length


def hz_to_mel_htk(f: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz_htk(m: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


# Slaney (Auditory Toolbox) scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel_slaney(f: Tensor) -> Tensor:
    lin = f / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(f, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz_slaney(m: Tensor) -> Tensor:
    lin = _F_SP * m
    log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (m - _MIN_LOG_MEL))
    return torch.where(m >= _MIN_LOG_MEL, log, lin)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float = 0.0,
    f_max: float | None = None,
    scale: str = "htk",
    norm: str | None = None,
) -> Tensor:
    """Triangular mel filterbank ``(n_mels, n_fft//2 + 1)`` in float64.

    ``scale='htk', norm=None`` equals torchaudio's ``melscale_fbanks`` used by Vocos;
    ``scale='slaney', norm='slaney'`` equals ``librosa.filters.mel`` defaults used by BigVGAN.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    to_mel, to_hz = (hz_to_mel_htk, mel_to_hz_htk) if scale == "htk" else (hz_to_mel_slaney, mel_to_hz_slaney)
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    m_pts = torch.linspace(
        float(to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    f_pts = to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - fft_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0).T  # (n_mels, n_freqs)
    if norm == "slaney":
        fb = fb * (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels]))[:, None]
    elif norm is not None:
        raise ValueError(f"mel filter norm={norm!r} is not supported; use None or 'slaney'")
    return fb


class MelSpectrogram(nn.Module):
    """Batched log-mel spectrogram on any device; ``forward(audio (b, s)) -> (b, d, n)``."""

    def __init__(self, config: MelConfig | None = None) -> None:
        super().__init__()
        self.config = config or MelConfig()
        c = self.config
        if c.mel_type == "vocos":
            fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, scale="htk", norm=None)
        else:
            fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, scale="slaney", norm="slaney")
        self.register_buffer("filterbank", fb, persistent=False)  # float64; cast per call
        self.register_buffer("window", torch.hann_window(c.win_length, dtype=torch.float64), persistent=False)

    def magnitude(self, audio: Tensor) -> Tensor:
        """Linear STFT magnitude ``(b, n_fft//2+1, n)`` with the variant's padding."""
        c = self.config
        # float64 input stays float64 (reference comparisons); anything else runs in float32
        audio = audio if audio.dtype == torch.float64 else audio.float()
        window = self.window.to(audio.dtype)
        if c.mel_type == "vocos":
            spec = torch.stft(
                audio, c.n_fft, c.hop_length, c.win_length, window,
                center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
            )
            return spec.abs()
        pad = (c.n_fft - c.hop_length) // 2
        audio = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            audio, c.n_fft, c.hop_length, c.win_length, window,
            center=False, normalized=False, onesided=True, return_complex=True,
        )
        return torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)

    def forward(self, audio: Tensor) -> Tensor:
        if audio.ndim == 1:
            audio = audio.unsqueeze(0)
        if audio.ndim != 2:
            raise ValueError(f"audio must be (batch, samples); got shape {tuple(audio.shape)}")
        mag = self.magnitude(audio)
        mel = torch.matmul(self.filterbank.to(mag.dtype), mag)  # (b, d, n)
        return torch.log(torch.clamp(mel, min=1e-5))


def num_frames(num_samples: int, hop_length: int = 256) -> int:
    """Frames the centred Vocos STFT yields for ``num_samples`` (``1 + s // hop``)."""
    return 1 + num_samples // hop_length

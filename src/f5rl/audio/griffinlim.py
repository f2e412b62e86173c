"""Griffin-Lim inverse of the log-mel: the always-available vocoder.

Two steps, both batched torch:

1. mel → linear magnitude by non-negative least squares against the mel filterbank
   (pseudo-inverse start, then projected gradient steps), since the filterbank is not invertible;
2. magnitude → waveform by fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99) with the same
   centred STFT as the mel front end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from f5rl.audio.mel import MelConfig, MelSpectrogram


@dataclass(frozen=True)
class GriffinLimConfig:
    n_iter: int = 32
    momentum: float = 0.99
    nnls_iter: int = 30
    power: float = 1.0  # magnitudes are raised to this power before phase recovery (>1 sharpens)
    seed: int = 0


def spectral_convergence(target_mag: Tensor, est_mag: Tensor) -> Tensor:
    """``‖S − Ŝ‖_F / ‖S‖_F`` per batch item (lower is better)."""
    num = (target_mag - est_mag).flatten(1).norm(dim=1)
    return num / target_mag.flatten(1).norm(dim=1).clamp_min(1e-8)


class GriffinLim(nn.Module):
    """``forward(log_mel (b, d, n)) -> audio (b, s)`` with ``s = (n - 1) * hop``."""

    def __init__(self, mel_config: MelConfig | None = None, config: GriffinLimConfig | None = None) -> None:
        super().__init__()
        self.mel = MelSpectrogram(mel_config)
        self.config = config or GriffinLimConfig()
        fb = self.mel.filterbank.double()
        self.register_buffer("fb_pinv", torch.linalg.pinv(fb).float(), persistent=False)
        # step size 1/L for projected gradient; L = largest eigenvalue of Fᵀ F
        self.nnls_step = float(1.0 / torch.linalg.matrix_norm(fb, ord=2) ** 2)

    def mel_to_magnitude(self, log_mel: Tensor) -> Tensor:
        """NNLS estimate of the linear magnitude ``(b, n_fft//2+1, n)`` from a log-mel."""
        fb = self.mel.filterbank.float()
        target = torch.exp(log_mel.float())
        mag = torch.clamp(self.fb_pinv @ target, min=0.0)
        for _ in range(self.config.nnls_iter):
            grad = fb.T @ (fb @ mag - target)
            mag = torch.clamp(mag - self.nnls_step * grad, min=0.0)
        return mag

    def _stft(self, audio: Tensor) -> Tensor:
        c = self.mel.config
        return torch.stft(
            audio, c.n_fft, c.hop_length, c.win_length, self.mel.window.float(),
            center=True, pad_mode="reflect", return_complex=True,
        )

    def _istft(self, spec: Tensor, length: int) -> Tensor:
        c = self.mel.config
        return torch.istft(spec, c.n_fft, c.hop_length, c.win_length, self.mel.window.float(), center=True,
                           length=length)

    def magnitude_to_audio(self, mag: Tensor) -> Tensor:
        c = self.config
        length = (mag.shape[-1] - 1) * self.mel.config.hop_length
        mag = mag.pow(c.power) if c.power != 1.0 else mag
        gen = torch.Generator(device="cpu").manual_seed(c.seed)
        # one initial phase for every row: a clip vocoded in a batch equals the clip vocoded alone
        phase = torch.rand(mag.shape[-2:], generator=gen).to(mag.device).expand_as(mag) * 2 * torch.pi
        angles = torch.polar(torch.ones_like(mag), phase)
        prev = torch.zeros_like(angles)
        for _ in range(c.n_iter):
            audio = self._istft(mag * angles, length)
            rebuilt = self._stft(audio)
            # fast Griffin-Lim: extrapolate the consistent spectrogram with momentum
            angles = rebuilt - (c.momentum / (1 + c.momentum)) * prev
            angles = angles / angles.abs().clamp_min(1e-16)
            prev = rebuilt
        return self._istft(mag * angles, length)

    @torch.no_grad()
    def forward(self, log_mel: Tensor) -> Tensor:
        if log_mel.ndim == 2:
            log_mel = log_mel.unsqueeze(0)
        audio = self.magnitude_to_audio(self.mel_to_magnitude(log_mel))
        return audio.clamp(-1.0, 1.0)

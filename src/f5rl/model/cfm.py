"""Conditional flow matching around a DiT: training objectives and the ODE sampler (DESIGN §6).

Path: ``x_t = (1−t)·x0 + t·x1`` with ``x0 ~ N(0, I)``, target velocity ``u = x1 − x0``.
Training infills a random span (70–100 % of each utterance) given the rest as ``cond``.

Legend: ``b`` batch, ``n`` frames, ``m`` mel bins, ``t`` text tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from f5rl.model.dit import DiT, VelocityOutput
from f5rl.model.sampling import (
    cfg_combine,
    lens_to_mask,
    make_generators,
    per_sample_noise,
    span_mask,
    time_grid,
)
from f5rl.rl.gaussian_nll import gaussian_nll_elementwise
from f5rl.rl.masked import masked_mean
from f5rl.utils.precision import autocast

OBJECTIVES = ("mse", "gaussian_nll")


@dataclass
class CFMConfig:
    objective: str = "mse"
    frac_lengths_mask: tuple[float, float] = (0.7, 1.0)
    audio_drop_prob: float = 0.3  # drop the audio prompt only
    cond_drop_prob: float = 0.2  # drop audio prompt and text (unconditional branch)
    nll_t_weight: float = 1.0  # λ_t of the t²·lnσ term (F5R: 1)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"model.objective={self.objective!r} is not a CFM objective; use one of {OBJECTIVES}")
        lo, hi = self.frac_lengths_mask
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"frac_lengths_mask={self.frac_lengths_mask} must satisfy 0 < lo <= hi <= 1")


@dataclass
class FlowDraws:
    x0: Tensor  # (b, n, m) noise
    time: Tensor  # (b,) flow time
    span: Tensor  # (b, n) frames to infill (inside the valid length)
    drop_audio: bool
    drop_text: bool


@dataclass
class LossOutput:
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)
    pred: Tensor | None = None  # (b, n, m) predicted velocity mean
    span: Tensor | None = None  # (b, n) infilled frames


@dataclass
class SampleOutput:
    mel: Tensor  # (b, N, m) with the prompt region copied from the input
    durations: Tensor  # (b,) total frames (prompt + generated)
    prompt_lens: Tensor  # (b,)
    trajectory: Tensor | None = None  # (steps+1, b, N, m) when asked for

    def generated(self, i: int) -> Tensor:
        """The newly generated frames of sample ``i``: ``(frames, m)``."""
        return self.mel[i, int(self.prompt_lens[i]): int(self.durations[i])]


class CFM(nn.Module):
    def __init__(self, transformer: DiT, config: CFMConfig | None = None) -> None:
        super().__init__()
        self.transformer = transformer
        self.config = config or CFMConfig()
        if self.config.objective == "gaussian_nll" and not transformer.has_sigma_head:
            raise ValueError("model.objective=gaussian_nll needs the Gaussian head: set model.use_rl_head=true")

    @property
    def num_channels(self) -> int:
        return self.transformer.config.mel_dim

    # ------------------------------------------------------------------ training
    def draw(self, mel: Tensor, lens: Tensor) -> FlowDraws:
        """Random draws of one training step from the global torch RNG (so a checkpointed RNG
        state resumes exactly). CFG dropout is decided once per batch, as in F5-TTS."""
        b, n, _ = mel.shape
        device = mel.device
        lo, hi = self.config.frac_lengths_mask
        frac = torch.empty(b, device=device).uniform_(lo, hi)
        span = span_mask(lens, frac, torch.rand(b, device=device), n) & lens_to_mask(lens, n)
        x0 = torch.randn_like(mel)
        time = torch.rand(b, device=device, dtype=mel.dtype)
        u = torch.rand(2).tolist()
        drop_text = u[1] < self.config.cond_drop_prob
        drop_audio = u[0] < self.config.audio_drop_prob or drop_text
        return FlowDraws(x0, time, span, drop_audio, drop_text)

    def forward(self, mel: Tensor, text: Tensor, lens: Tensor | None = None) -> LossOutput:
        """One CFM loss on a batch ``mel (b, n, m)``, ``text (b, t)``, ``lens (b,)``."""
        b, n, _ = mel.shape
        lens = torch.full((b,), n, device=mel.device, dtype=torch.long) if lens is None else lens
        d = self.draw(mel, lens)
        return self.flow_loss(mel, d.x0, d.time, text, lens_to_mask(lens, n), d.span, d.drop_audio, d.drop_text)

    def flow_loss(self, x1: Tensor, x0: Tensor, time: Tensor, text: Tensor, mask: Tensor, span: Tensor,
                  drop_audio_cond: bool = False, drop_text: bool = False) -> LossOutput:
        """The objective for given noise, times and infill span (shared with DPO, which needs
        the same draws for chosen and rejected)."""
        t = time.view(-1, 1, 1)
        xt = (1 - t) * x0 + t * x1
        target = x1 - x0
        cond = torch.where(span.unsqueeze(-1), torch.zeros_like(x1), x1)
        out: VelocityOutput = self.transformer(
            xt, cond, text, time, mask=mask, drop_audio_cond=drop_audio_cond, drop_text=drop_text
        )
        mu = out.mu.float()
        mse = masked_mean(F.mse_loss(mu, target, reduction="none"), span.unsqueeze(-1))
        metrics = {"loss/mse": mse.detach()}
        if self.config.objective == "mse":
            loss = mse
        else:
            ln_sig = out.ln_sig.float()
            nll = gaussian_nll_elementwise(mu, ln_sig, target, time, self.config.nll_t_weight)
            loss = masked_mean(nll, span.unsqueeze(-1))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"gaussian_nll loss is {loss.item()} (ln σ range {ln_sig.min().item():.3g}.."
                    f"{ln_sig.max().item():.3g}); lower the learning rate or raise model.ln_sig_init"
                )
            metrics["loss/nll"] = loss.detach()
            metrics["stats/sigma_mean"] = masked_mean(ln_sig.exp(), span.unsqueeze(-1)).detach()
        return LossOutput(loss, metrics, mu, span)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,  # (b, n_c, m) prompt mel (log)
        text: Tensor,  # (b, t) ids of prompt text + target text, −1 padded
        duration: int | Tensor,  # total frames per sample (prompt included)
        *,
        lens: Tensor | None = None,  # (b,) prompt frames; default n_c
        steps: int = 32,
        cfg_strength: float = 2.0,
        sway_sampling_coef: float | None = -1.0,
        seed: int | Sequence[int] | None = None,
        use_epss: bool = True,
        sample_from_dist: bool = False,
        max_duration: int = 4096,
        precision: str = "no",
        return_trajectory: bool = False,
    ) -> SampleOutput:
        """Euler ODE (torchdiffeq) from ``y0 ~ N(0, I)`` with packed CFG, sway and EPSS.

        Each sample draws its noise from its own generator, so a batch equals its samples run
        one by one with the same seeds; the prompt region is copied back bit-exactly."""
        from torchdiffeq import odeint

        if sample_from_dist and not self.transformer.has_sigma_head:
            raise ValueError("model.sample_from_dist=true needs the Gaussian head (model.use_rl_head=true)")
        was_training = self.training
        self.eval()
        device = cond.device
        b, n_c, m = cond.shape
        lens = torch.full((b,), n_c, device=device, dtype=torch.long) if lens is None else lens.to(device)
        if isinstance(duration, int):
            duration = torch.full((b,), duration, device=device, dtype=torch.long)
        text_lens = (text != -1).sum(dim=-1).to(device)
        # at least one generated frame beyond both the prompt and the text
        duration = torch.maximum(torch.maximum(text_lens, lens) + 1, duration.to(device)).clamp(max=max_duration)
        total = int(duration.max())
        cond = F.pad(cond, (0, 0, 0, max(total - n_c, 0)))[:, :total]
        cond_mask = lens_to_mask(lens, total).unsqueeze(-1)  # (b, N, 1)
        step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond))
        mask = None if bool((duration == total).all()) else lens_to_mask(duration, total)

        gens = make_generators(seed, b)
        lengths = duration.tolist()
        y0 = per_sample_noise(lengths, m, gens, device, torch.float32, total)

        def velocity(t: Tensor, x: Tensor) -> Tensor:
            if cfg_strength < 1e-5:
                out = self.transformer(x, step_cond, text, t, mask=mask)
                return self._draw(out, gens, sample_from_dist, lengths).float()
            out = self.transformer(x, step_cond, text, t, mask=mask, cfg_infer=True)
            mu_c, mu_u = out.mu.float().chunk(2, dim=0)
            if sample_from_dist:
                # F5R: f = (1+w)(μ_c + σ_c ε) − w(μ_u + σ_u ε')
                s_c, s_u = out.ln_sig.float().exp().chunk(2, dim=0)
                mu_c = mu_c + s_c * self._noise_like(mu_c, gens, lengths)
                mu_u = mu_u + s_u * self._noise_like(mu_u, gens, lengths)
            return cfg_combine(mu_c, mu_u, cfg_strength)

        grid = time_grid(steps, sway_sampling_coef, use_epss).to(device)
        # one autocast region for the whole ODE: weights are cast to bf16 once, not every step
        with self.transformer.cached_text(), autocast(device, precision):
            traj = odeint(velocity, y0, grid, method="euler")
        out = torch.where(cond_mask, cond.float(), traj[-1])
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        self.train(was_training)
        return SampleOutput(out, duration, lens, traj if return_trajectory else None)

    def _draw(self, out: VelocityOutput, gens: list[torch.Generator] | None, from_dist: bool,
              lengths: list[int]) -> Tensor:
        if not from_dist:
            return out.mu
        if out.ln_sig is None:
            raise ValueError("model.sample_from_dist=true needs the Gaussian head (model.use_rl_head=true)")
        return out.mu + out.ln_sig.exp() * self._noise_like(out.mu, gens, lengths)

    @staticmethod
    def _noise_like(x: Tensor, gens: list[torch.Generator] | None, lengths: list[int]) -> Tensor:
        """Per-sample standard normal noise of each sample's own length (batched == single)."""
        if gens is None:
            return torch.randn_like(x)
        return per_sample_noise(lengths, x.shape[-1], gens, x.device, x.dtype, x.shape[1])

"""Building blocks of the F5-TTS DiT; names and shapes match released checkpoints.

Legend: ``b`` batch, ``n`` mel frames, ``t`` text tokens, ``d`` model width, ``h`` heads,
``e`` head width, ``c`` text width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ---------------------------------------------------------------------------------------------
# positions


class SinusPositionEmbedding(nn.Module):
    """Sinusoidal embedding of a scalar (flow time); ``scale`` 1000 as in F5-TTS."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor, scale: float = 1000.0) -> Tensor:  # (b,) -> (b, dim)
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=x.device).float() * -(math.log(10000) / (half - 1)))
        arg = scale * x.float().unsqueeze(1) * freq.unsqueeze(0)
        return torch.cat((arg.sin(), arg.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, dim: int, freq_embed_dim: int = 256) -> None:
        super().__init__()
        self.time_embed = SinusPositionEmbedding(freq_embed_dim)
        self.time_mlp = nn.Sequential(nn.Linear(freq_embed_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, time: Tensor) -> Tensor:  # (b,) -> (b, d)
        emb = self.time_embed(time).to(self.time_mlp[0].weight.dtype)
        return self.time_mlp(emb)


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0) -> Tensor:
    """Fixed sinusoidal text positions ``(end, dim)``: cos half then sin half."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = torch.outer(torch.arange(end).float(), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


@dataclass(frozen=True)
class RopeTable:
    """cos and sin of the RoPE angles, ``(n, e/2)`` fp32, one per adjacent channel pair; computed once
    per forward and shared by every layer (the angles depend only on the frame index)."""

    cos: Tensor
    sin: Tensor


class RotaryEmbedding(nn.Module):
    """RoPE frequencies as in x-transformers (which F5-TTS uses).

    The released models were trained with x-transformers' convention: each frequency is repeated
    for an *adjacent pair* of channels and ``rotate_half`` turns pair ``(x0, x1)`` into
    ``(−x1, x0)``. (A half-split layout would compute different attention with the same weights.)
    """

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)  # persistent: present in released checkpoints

    def forward(self, seq_len: int) -> RopeTable:
        pos = torch.arange(seq_len, device=self.inv_freq.device).float()
        angles = torch.outer(pos, self.inv_freq.float())  # (n, e/2)
        return RopeTable(angles.cos(), angles.sin())


def apply_rotary(x: Tensor, rope: RopeTable) -> Tensor:
    """Rotate each adjacent channel pair ``(x0, x1)`` of the first ``2·rope.cos.shape[-1]`` channels of
    ``x (..., n, e)`` by its angle, in fp32: ``(x0·c − x1·s, x1·c + x0·s)`` — the same floating-point
    operations as x-transformers' ``x·cos + rotate_half(x)·sin``, without repeating the tables."""
    rot = 2 * rope.cos.shape[-1]
    xr = x[..., :rot].float().unflatten(-1, (-1, 2))  # (..., n, e/2, 2)
    x0, x1 = xr.unbind(dim=-1)
    c, s = rope.cos, rope.sin
    out = torch.stack((x0 * c - x1 * s, x1 * c + x0 * s), dim=-1).flatten(-2).to(x.dtype)
    return out if rot == x.shape[-1] else torch.cat((out, x[..., rot:]), dim=-1)


# ---------------------------------------------------------------------------------------------
# text encoder


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) over the time axis."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:  # (b, n, c), valid (b, n)
        # the norm is over the time axis, so a batch's padding frames would change every frame of a
        # shorter row; ``valid`` keeps them out (F5-TTS releases count them)
        gx = torch.norm(x if valid is None else x * valid.unsqueeze(-1).to(x.dtype), p=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.grn = GRN(intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: Tensor, valid: Tensor | None = None) -> Tensor:  # (b, n, c), valid (b, n)
        y = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y))), valid))
        return x + y


def average_upsample(text: Tensor, valid: Tensor, audio_lens: Tensor) -> Tensor:
    """Spread each sample's ``T`` valid text positions evenly over its ``L`` audio frames.

    Position ``j`` is repeated ``⌊L/T⌋`` times and the last ``L mod T`` positions once more
    (upstream F5's ``text_embedding_average_upsampling``); frames past ``L`` are zero.
    ``text (b, n, c)``, ``valid (b, n)`` bool (contiguous from 0), ``audio_lens (b,)`` → ``(b, n, c)``.
    """
    b, n, _ = text.shape
    lens = audio_lens.clamp(max=n).long()
    T = torch.minimum(valid.sum(dim=1), lens)  # text beyond the audio is dropped
    L = lens
    Ts = T.clamp(min=1)
    base, rem = L // Ts, L % Ts
    head = (Ts - rem) * base  # frames covered by the first T-rem tokens
    f = torch.arange(n, device=text.device).unsqueeze(0)  # (1, n)
    first = f // base.clamp(min=1).unsqueeze(1)
    second = (Ts - rem).unsqueeze(1) + (f - head.unsqueeze(1)) // (base + 1).unsqueeze(1)
    src = torch.where(f < head.unsqueeze(1), first, second).clamp(0, n - 1)
    out = torch.gather(text, 1, src.unsqueeze(-1).expand_as(text))
    keep = (f < L.unsqueeze(1)) & (T > 0).unsqueeze(1)
    return out * keep.unsqueeze(-1).to(out.dtype)


class TextEmbedding(nn.Module):
    """Token embedding + fixed positions + ConvNeXt-V2 blocks; ``(b, t) ids -> (b, n, c)``.

    ``mask_frames``: the blocks' global response normalisation sees only each row's own frames
    (``audio_lens``), so a row of a padded batch is embedded as it is alone (F5-TTS releases: false)."""

    def __init__(self, text_num_embeds: int, text_dim: int, mask_padding: bool = True,
                 conv_layers: int = 4, conv_mult: int = 2, average_upsampling: bool = False,
                 mask_frames: bool = False) -> None:
        super().__init__()
        self.mask_frames = mask_frames
        self.text_embed = nn.Embedding(text_num_embeds + 1, text_dim)  # row 0 is the filler token
        self.mask_padding = mask_padding
        self.average_upsampling = average_upsampling
        self.max_pos = 4096
        self.register_buffer("freqs_cis", precompute_freqs_cis(text_dim, self.max_pos), persistent=False)
        self.text_blocks = nn.Sequential(
            *[ConvNeXtV2Block(text_dim, text_dim * conv_mult) for _ in range(conv_layers)]
        )

    def forward(self, text: Tensor, seq_len: int, drop_text: bool = False,
                audio_lens: Tensor | None = None) -> Tensor:
        text = text + 1  # padding −1 becomes filler 0
        text = text[:, :seq_len]
        text = F.pad(text, (0, seq_len - text.shape[1]), value=0)
        filler = text == 0  # (b, n); computed before dropping so positions stay comparable
        if drop_text:
            text = torch.zeros_like(text)
        x = self.text_embed(text)  # (b, n, c)
        pos = torch.arange(seq_len, device=text.device).clamp(max=self.max_pos - 1)
        x = x + self.freqs_cis[pos].to(x.dtype)
        valid = None
        if self.mask_frames and audio_lens is not None:
            valid = torch.arange(seq_len, device=text.device).unsqueeze(0) < audio_lens.unsqueeze(1)
        if self.mask_padding:
            keep = (~filler).unsqueeze(-1).to(x.dtype)
            x = x * keep
            for block in self.text_blocks:
                x = block(x, valid) * keep
        else:
            for block in self.text_blocks:
                x = block(x, valid)
        if self.average_upsampling:
            if audio_lens is None:
                audio_lens = torch.full((x.shape[0],), seq_len, device=x.device, dtype=torch.long)
            x = average_upsample(x, ~filler, audio_lens)
        return x


# ---------------------------------------------------------------------------------------------
# audio input


class ConvPositionEmbedding(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 31, groups: int = 16) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=pad), nn.Mish(),
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=pad), nn.Mish(),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # (b, n, d)
        if mask is None:
            return self.conv1d(x.transpose(1, 2)).transpose(1, 2)
        # Upstream masks only before and after the stack, so padding leaks into valid frames
        # through the first conv's bias; masking between the convs as well makes a padded batch
        # compute exactly what each unpadded sample computes (same weights, same names).
        keep = mask.unsqueeze(1)  # (b, 1, n)
        h = x.transpose(1, 2).masked_fill(~keep, 0.0)
        for i in range(0, len(self.conv1d), 2):
            h = self.conv1d[i + 1](self.conv1d[i](h)).masked_fill(~keep, 0.0)
        return h.transpose(1, 2)


class InputEmbedding(nn.Module):
    def __init__(self, mel_dim: int, text_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(mel_dim * 2 + text_dim, out_dim)
        self.conv_pos_embed = ConvPositionEmbedding(out_dim)

    def forward(self, x: Tensor, cond: Tensor, text_embed: Tensor, drop_audio_cond: bool = False,
                mask: Tensor | None = None) -> Tensor:
        if drop_audio_cond:
            cond = torch.zeros_like(cond)
        x = self.proj(torch.cat((x, cond, text_embed.to(x.dtype)), dim=-1))
        return self.conv_pos_embed(x, mask=mask) + x


# ---------------------------------------------------------------------------------------------
# transformer


class AdaLayerNorm(nn.Module):
    """adaLN-Zero modulation: shift/scale/gate for attention, then for the MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 6)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: Tensor, emb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.linear(self.silu(emb)).chunk(6, dim=1)
        x = self.norm(x) * (1 + scale_msa[:, None]) + shift_msa[:, None]
        return x, gate_msa, shift_mlp, scale_mlp, gate_mlp


class AdaLayerNormFinal(nn.Module):
    """Final adaLN; the linear gives **scale then shift** (F5 order)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 2)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.linear(self.silu(emb)).chunk(2, dim=1)
        return self.norm(x) * (1 + scale)[:, None, :] + shift[:, None, :]


class Attention(nn.Module):
    """Multi-head self-attention with RoPE on the first ``pe_attn_head`` heads (all when None)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0,
                 pe_attn_head: int | None = None, mask_enabled: bool = True) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head, self.pe_attn_head = heads, dim_head, pe_attn_head
        self.mask_enabled = mask_enabled  # model.arch.attn_mask_enabled
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def forward(self, x: Tensor, mask: Tensor | None = None, rope: RopeTable | None = None) -> Tensor:
        b, n, _ = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, self.dim_head).transpose(1, 2)
                   for proj in (self.to_q, self.to_k, self.to_v))  # (b, h, n, e)
        if rope is not None:
            pn = self.pe_attn_head
            if pn is None:
                q, k = apply_rotary(q, rope), apply_rotary(k, rope)
            else:
                q = torch.cat((apply_rotary(q[:, :pn], rope), q[:, pn:]), dim=1)
                k = torch.cat((apply_rotary(k[:, :pn], rope), k[:, pn:]), dim=1)
        attn_mask = mask[:, None, None, :] if mask is not None and self.mask_enabled else None  # (b, 1, 1, n) keys
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        out = self.to_out[1](self.to_out[0](out))
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = int(dim * mult)
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh")),
            nn.Dropout(dropout),
            nn.Linear(inner, dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: float = 4, dropout: float = 0.1,
                 pe_attn_head: int | None = None, attn_mask_enabled: bool = True) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, dropout, pe_attn_head, attn_mask_enabled)
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim, ff_mult, dropout)

    def forward(self, x: Tensor, t: Tensor, mask: Tensor | None = None, rope: RopeTable | None = None) -> Tensor:
        norm, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attn_norm(x, t)
        x = x + gate_msa.unsqueeze(1) * self.attn(norm, mask=mask, rope=rope)
        norm = self.ff_norm(x) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        return x + gate_mlp.unsqueeze(1) * self.ff(norm)

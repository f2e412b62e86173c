"""The F5-TTS DiT backbone with an optional Gaussian head (F5R ``proj_out_ln_sig``).

The backbone only knows ``forward(x, cond, text, time, mask, drop_audio_cond, drop_text)``; the
flow-matching wrapper (``cfm.py``) owns the probability path, the infill mask and CFG dropout.

Legend: ``b`` batch, ``n`` frames, ``m`` mel bins, ``t`` text tokens, ``d`` width.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from f5rl.model.modules import (
    AdaLayerNormFinal,
    DiTBlock,
    InputEmbedding,
    RopeTable,
    RotaryEmbedding,
    TextEmbedding,
    TimestepEmbedding,
)

log = logging.getLogger(__name__)


@dataclass
class DiTConfig:
    """Architecture of ``model.arch``; defaults are F5TTS_v1_Base."""

    dim: int = 1024
    depth: int = 22
    heads: int = 16
    dim_head: int = 64
    ff_mult: float = 2
    text_dim: int = 512
    conv_layers: int = 4
    text_mask_padding: bool = True
    pe_attn_head: int | None = None  # None: RoPE on every head (v1); 1: head 0 only (v0)
    text_embedding_average_upsampling: bool = False
    dropout: float = 0.1
    checkpoint_activations: bool = False
    # true: padded frames are masked out of attention and out of the text encoder's global response
    # normalisation (a padded batch equals its rows run alone); false: F5-TTS's released setting,
    # both also read padded frames
    attn_mask_enabled: bool = True
    mel_dim: int = 100
    text_num_embeds: int = 256
    use_rl_head: bool = False  # build proj_out_ln_sig (log σ of the velocity)
    ln_sig_init: float = 1.0  # σ0 for a freshly initialised head: weight 0, bias log σ0
    # run the transformer blocks and output head through torch.compile (model.compile): not a weight,
    # not part of the architecture; the same outputs within float tolerance, faster after compiling
    compile: bool = False

    def __post_init__(self) -> None:
        if self.dim != self.heads * self.dim_head and self.dim % self.heads:
            raise ValueError(f"model.arch.dim={self.dim} is not divisible by heads={self.heads}")
        if self.text_embedding_average_upsampling and not self.text_mask_padding:
            raise ValueError("model.arch.text_embedding_average_upsampling needs text_mask_padding=true")
        if self.ln_sig_init <= 0:
            raise ValueError(f"model.ln_sig_init={self.ln_sig_init} must be > 0 (it is σ0, not log σ0)")


@dataclass
class VelocityOutput:
    """Predicted velocity mean ``(b, n, m)`` and, with the Gaussian head, its log σ ``(b, n, m)``."""

    mu: Tensor
    ln_sig: Tensor | None = None


class DiT(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.time_embed = TimestepEmbedding(c.dim)
        self.text_embed = TextEmbedding(
            c.text_num_embeds, c.text_dim, mask_padding=c.text_mask_padding, conv_layers=c.conv_layers,
            average_upsampling=c.text_embedding_average_upsampling, mask_frames=c.attn_mask_enabled,
        )
        self.input_embed = InputEmbedding(c.mel_dim, c.text_dim, c.dim)
        self.rotary_embed = RotaryEmbedding(c.dim_head)
        self.transformer_blocks = nn.ModuleList(
            [DiTBlock(c.dim, c.heads, c.dim_head, c.ff_mult, c.dropout, c.pe_attn_head, c.attn_mask_enabled)
             for _ in range(c.depth)]
        )
        self.norm_out = AdaLayerNormFinal(c.dim)
        self.proj_out = nn.Linear(c.dim, c.mel_dim)
        self.proj_out_ln_sig = nn.Linear(c.dim, c.mel_dim) if c.use_rl_head else None
        self.reset_ln_sig_head()
        self._text_cache: dict[bool, Tensor] | None = None

    @property
    def has_sigma_head(self) -> bool:
        return self.proj_out_ln_sig is not None

    def reset_ln_sig_head(self) -> None:
        """Initialise the Gaussian head to predict σ0 everywhere (weight 0, bias log σ0)."""
        if self.proj_out_ln_sig is not None:
            nn.init.zeros_(self.proj_out_ln_sig.weight)
            nn.init.constant_(self.proj_out_ln_sig.bias, float(torch.tensor(self.config.ln_sig_init).log()))

    @contextlib.contextmanager
    def cached_text(self) -> Iterator[None]:
        """Within this context the text embedding is computed once per branch (ODE sampling)."""
        self._text_cache = {}
        try:
            yield
        finally:
            self._text_cache = None

    def embed_text(self, text: Tensor, seq_len: int, drop_text: bool, mask: Tensor | None) -> Tensor:
        if self._text_cache is not None and drop_text in self._text_cache:
            return self._text_cache[drop_text]
        lens = mask.sum(dim=1) if mask is not None else None
        emb = self.text_embed(text, seq_len, drop_text=drop_text, audio_lens=lens)
        if self._text_cache is not None:
            self._text_cache[drop_text] = emb
        return emb

    def _input(self, x: Tensor, cond: Tensor, text: Tensor, mask: Tensor | None, drop_audio_cond: bool,
               drop_text: bool) -> Tensor:
        text_emb = self.embed_text(text, x.shape[1], drop_text, mask)
        return self.input_embed(x, cond, text_emb, drop_audio_cond=drop_audio_cond, mask=mask)

    def forward(
        self,
        x: Tensor,  # (b, n, m) noisy mel x_t
        cond: Tensor,  # (b, n, m) masked prompt mel
        text: Tensor,  # (b, t) ids, −1 padded
        time: Tensor,  # (b,) or scalar
        mask: Tensor | None = None,  # (b, n) valid frames
        drop_audio_cond: bool = False,
        drop_text: bool = False,
        cfg_infer: bool = False,
    ) -> VelocityOutput:
        """Velocity field. With ``cfg_infer`` the batch is packed to 2b rows: conditional first,
        then unconditional (audio and text dropped), in one forward pass."""
        b, n = x.shape[:2]
        if time.ndim == 0:
            time = time.repeat(b)
        t = self.time_embed(time)  # (b, d)
        if cfg_infer:
            h = torch.cat((self._input(x, cond, text, mask, False, False),
                           self._input(x, cond, text, mask, True, True)), dim=0)  # (2b, n, d)
            t = torch.cat((t, t), dim=0)
            mask = torch.cat((mask, mask), dim=0) if mask is not None else None
        else:
            h = self._input(x, cond, text, mask, drop_audio_cond, drop_text)
        rope = self.rotary_embed(n)
        trunk = compiled_trunk() if self.config.compile else run_trunk
        return trunk(self, h, t, mask, rope)


def run_trunk(net: DiT, h: Tensor, t: Tensor, mask: Tensor | None, rope: RopeTable) -> VelocityOutput:
    """The transformer blocks and the output head of ``net`` on embedded input ``h (b, n, d)``, time
    embedding ``t (b, d)``: where nearly all of a forward's time goes, and what ``model.compile`` compiles."""
    for block in net.transformer_blocks:
        if net.config.checkpoint_activations and net.training and torch.is_grad_enabled():
            h = checkpoint(block, h, t, mask, rope, use_reentrant=False)
        else:
            h = block(h, t, mask=mask, rope=rope)
    h = net.norm_out(h, t)
    mu = net.proj_out(h)
    ln_sig = net.proj_out_ln_sig(h) if net.proj_out_ln_sig is not None else None
    return VelocityOutput(mu, ln_sig)


@functools.cache
def compiled_trunk():
    """``run_trunk`` through ``torch.compile`` (built once per process, shared by every DiT: the policy,
    its reference and EMA copies take the same code with their own weights). Frame counts vary from call
    to call, so shapes become dynamic after the first change instead of compiling every length. Where
    compiling fails (no C++ compiler, an unsupported op) dynamo warns and runs that call eagerly."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True  # fall back to eager, with dynamo's warning, on failure
    log.info("model.compile: the DiT trunk is compiled on its first calls (about a minute per new shape "
             "kind on a CPU); later calls reuse it")
    return torch.compile(run_trunk, dynamic=None)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

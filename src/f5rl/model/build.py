"""Build components from whole config sections (the config flows once)."""

from __future__ import annotations

from pathlib import Path

from f5rl.audio.mel import MelConfig
from f5rl.config.schema import ModelCfg
from f5rl.model.cfm import CFM, CFMConfig
from f5rl.model.dit import DiT, DiTConfig
from f5rl.text.tokenizer import Tokenizer, build_tokenizer


def mel_config(model: ModelCfg) -> MelConfig:
    m = model.mel_spec
    return MelConfig(sample_rate=m.target_sample_rate, n_fft=m.n_fft, win_length=m.win_length,
                     hop_length=m.hop_length, n_mels=m.n_mel_channels, mel_type=m.mel_spec_type)


def tokenizer_for(model: ModelCfg, data_dir: Path | None) -> Tokenizer:
    """custom: ``model.tokenizer_path``; char/pinyin: the dataset's vocab.txt; byte: none."""
    if model.tokenizer == "custom":
        return build_tokenizer("custom", model.tokenizer_path)
    if model.tokenizer == "byte":
        return build_tokenizer("byte")
    path = Path(model.tokenizer_path) if model.tokenizer_path else (data_dir / "vocab.txt" if data_dir else None)
    return build_tokenizer(model.tokenizer, path)


def dit_config(model: ModelCfg, vocab_size: int) -> DiTConfig:
    a = model.arch
    return DiTConfig(
        dim=a.dim, depth=a.depth, heads=a.heads, dim_head=a.dim_head, ff_mult=a.ff_mult, text_dim=a.text_dim,
        conv_layers=a.conv_layers, text_mask_padding=a.text_mask_padding, pe_attn_head=a.pe_attn_head,
        text_embedding_average_upsampling=a.text_embedding_average_upsampling, dropout=a.dropout,
        checkpoint_activations=a.checkpoint_activations, attn_mask_enabled=a.attn_mask_enabled,
        mel_dim=model.mel_spec.n_mel_channels,
        text_num_embeds=vocab_size, use_rl_head=model.use_rl_head, ln_sig_init=model.ln_sig_init,
    )


def build_cfm(model: ModelCfg, vocab_size: int, objective: str | None = None) -> CFM:
    objective = objective or model.objective
    cfm_objective = objective if objective in ("mse", "gaussian_nll") else "mse"
    return CFM(DiT(dit_config(model, vocab_size)), CFMConfig(objective=cfm_objective, nll_t_weight=model.nll_t_weight))

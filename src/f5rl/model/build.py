"""Build components from whole config sections (the config flows once)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from f5rl.audio.mel import MelConfig
from f5rl.config.schema import ModelCfg
from f5rl.model.cfm import CFM, CFMConfig
from f5rl.model.dit import DiT, DiTConfig
from f5rl.text.tokenizer import Tokenizer, build_tokenizer

# ``model.mel_spec`` keys (F5-TTS's names) that MelConfig spells differently
_MEL_NAMES = {"target_sample_rate": "sample_rate", "n_mel_channels": "n_mels", "mel_spec_type": "mel_type"}


def mel_config(model: ModelCfg) -> MelConfig:
    m = model.mel_spec
    return MelConfig(**{_MEL_NAMES.get(f.name, f.name): getattr(m, f.name) for f in fields(m)})


def tokenizer_for(model: ModelCfg, data_dir: Path | None) -> Tokenizer:
    """custom: ``model.tokenizer_path``; char/pinyin: the dataset's vocab.txt; byte: none."""
    if model.tokenizer == "custom":
        return build_tokenizer("custom", model.tokenizer_path)
    if model.tokenizer == "byte":
        return build_tokenizer("byte")
    path = Path(model.tokenizer_path) if model.tokenizer_path else (data_dir / "vocab.txt" if data_dir else None)
    return build_tokenizer(model.tokenizer, path)


def dit_config(model: ModelCfg, vocab_size: int) -> DiTConfig:
    """``model.arch`` is the DiT's architecture: every key the DiT knows is passed as it is (the
    schema rejects ``qk_norm`` and other ``attn_backend`` values the DiT does not implement)."""
    known = {f.name for f in fields(DiTConfig)}
    arch = {f.name: getattr(model.arch, f.name) for f in fields(model.arch) if f.name in known}
    return DiTConfig(**arch, mel_dim=model.mel_spec.n_mel_channels, text_num_embeds=vocab_size,
                     use_rl_head=model.use_rl_head, ln_sig_init=model.ln_sig_init, compile=model.compile)


def build_cfm(model: ModelCfg, vocab_size: int, objective: str | None = None) -> CFM:
    objective = objective or model.objective
    cfm_objective = objective if objective in ("mse", "gaussian_nll") else "mse"
    return CFM(DiT(dit_config(model, vocab_size)), CFMConfig(objective=cfm_objective, nll_t_weight=model.nll_t_weight))


def train_only(net: DiT, prefixes: list[str]) -> int:
    """Freeze every parameter of ``net`` but the named ones and those under the named modules
    (``model.train_only``), e.g. ``[proj_out_ln_sig]``: a σ warmup that leaves the velocity exactly as it was.
    Returns the trainable count."""

    def named(n: str, m: str) -> bool:
        return n == m or n.startswith(m + ".")

    for n, p in net.named_parameters():
        p.requires_grad = any(named(n, m) for m in prefixes)
    unmatched = [m for m in prefixes if not any(named(n, m) for n, _ in net.named_parameters())]
    if unmatched:
        raise ValueError(f"model.train_only={list(prefixes)}: {unmatched} matches no module of the model; "
                         "name DiT modules by their checkpoint names, e.g. proj_out_ln_sig, transformer_blocks.0, "
                         "text_embed")
    return sum(p.numel() for p in net.parameters() if p.requires_grad)

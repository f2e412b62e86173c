"""Reading and writing F5-format model weights (DESIGN §5).

Formats understood:

* released EMA safetensors (``model_1250000.safetensors``): ``ema_model.transformer.*`` keys plus
  the EMA buffers ``initted`` and ``step``;
* ``.pt`` training checkpoints: ``model_state_dict``, ``ema_model_state_dict``,
  ``optimizer_state_dict``, ``scheduler_state_dict``, ``update``;
* plain state dicts of a CFM (``transformer.*``) or of a bare DiT.

Everything is normalised to DiT keys (no ``ema_model.``/``transformer.`` prefix) and loaded
strictly; only the Gaussian head may be missing, and is then initialised (weight 0, bias log σ0).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from f5rl.model.dit import DiT
from f5rl.utils.atomic import atomic_path

log = logging.getLogger(__name__)

EMA_BUFFERS = ("initted", "step")
SIGMA_HEAD = ("proj_out_ln_sig.weight", "proj_out_ln_sig.bias")
TEXT_EMBED = "text_embed.text_embed.weight"


def read_weights_file(path: str | os.PathLike) -> dict:
    """Raw contents of a ``.safetensors`` or ``.pt`` file (``weights_only`` torch load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # SafetensorError, OSError: a truncated or foreign file
            raise ValueError(f"cannot read checkpoint {path} (truncated or not a .safetensors file): {err}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a torch checkpoint): "
                         f"{str(err).splitlines()[0]}") from None


def dit_state_from(raw: dict, use_ema: bool = True) -> dict[str, Tensor]:
    """DiT state dict from any supported container (EMA weights preferred when present)."""
    if "ema_model_state_dict" in raw or "model_state_dict" in raw:
        key = "ema_model_state_dict" if use_ema and "ema_model_state_dict" in raw else "model_state_dict"
        if key not in raw:
            raise KeyError(f"checkpoint has no {key}; keys: {sorted(raw)[:8]}")
        raw = raw[key]
    state = {}
    for k, v in raw.items():
        if k in EMA_BUFFERS:
            continue
        for prefix in ("ema_model.", "module.", "_orig_mod.", "transformer."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.startswith("mel_spec."):
            continue  # front-end buffers of some F5 versions; f5rl computes the mel itself
        state[k] = v
    return state


def load_dit_state(model: DiT, state: dict[str, Tensor], strict: bool = True) -> list[str]:
    """Load DiT weights; returns the keys that were missing and initialised (the RL head).

    A text-embedding size mismatch gets an error pointing to vocabulary extension."""
    own = model.state_dict()
    if TEXT_EMBED in state and TEXT_EMBED in own and state[TEXT_EMBED].shape[0] != own[TEXT_EMBED].shape[0]:
        got, want = state[TEXT_EMBED].shape[0], own[TEXT_EMBED].shape[0]
        raise ValueError(
            f"the checkpoint's text embedding has {got} rows (vocab of {got - 1} tokens) but the model was "
            f"built for {want - 1} tokens. Use the checkpoint's vocab.txt (model.tokenizer=custom "
            f"model.tokenizer_path=...) or grow the checkpoint with f5rl.text.extend_vocab."
        )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    head_missing = [k for k in missing if k in SIGMA_HEAD]
    missing = [k for k in missing if k not in SIGMA_HEAD]
    if model.has_sigma_head is False:
        unexpected = [k for k in unexpected if k not in SIGMA_HEAD]  # a deterministic model ignores it
        state = {k: v for k, v in state.items() if k not in SIGMA_HEAD}
    if strict and (missing or unexpected):
        raise KeyError(
            f"checkpoint does not match the model: missing {missing[:6]}{'...' if len(missing) > 6 else ''}, "
            f"unexpected {unexpected[:6]}{'...' if len(unexpected) > 6 else ''}. Check model.arch "
            f"(dim/depth/heads/text_dim/conv_layers) against the checkpoint's config."
        )
    for k, v in state.items():
        if k in own and own[k].shape != v.shape:
            raise ValueError(f"shape of {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}; check "
                             "model.arch (dim/depth/heads/text_dim/conv_layers) against the checkpoint's config")
    model.load_state_dict(state, strict=False)
    if head_missing:
        model.reset_ln_sig_head()
        log.warning("checkpoint has no Gaussian head; proj_out_ln_sig initialised to σ0=%s", model.config.ln_sig_init)
    return head_missing


def load_dit_checkpoint(model: DiT, path: str | os.PathLike, use_ema: bool = True, strict: bool = True) -> list[str]:
    """Read ``path`` in any supported format and load it into ``model``."""
    return load_dit_state(model, dit_state_from(read_weights_file(path), use_ema=use_ema), strict=strict)


def atomic_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` or ``safetensors`` to a temp file in the same folder, then rename.

    A crash mid-write leaves any previous file at ``path`` intact."""
    path = Path(path)
    # training checkpoints (optimizer state, RNG) stay owner-only; released weights are for sharing
    with atomic_path(path, mode=0o644 if path.suffix == ".safetensors" else 0o600) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in obj.items()}, tmp)
        else:
            torch.save(obj, tmp)
    return path


def save_released_format(dit_state: dict[str, Tensor], path: str | os.PathLike, step: int = 0) -> Path:
    """Write DiT weights as an F5 release would: ``ema_model.transformer.*`` + ``initted``/``step``."""
    out = {f"ema_model.transformer.{k}": v.detach().cpu() for k, v in dit_state.items()}
    out["initted"] = torch.tensor([True])
    out["step"] = torch.tensor([step])
    return atomic_save(out, path)

"""``vocab.txt`` files and vocabulary extension (DESIGN §4).

Line *i* of ``vocab.txt`` is token id *i*; the id of ``" "`` must be 0. The text embedding of a
model has ``len(vocab) + 1`` rows because ids are shifted by one so that row 0 is the filler token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from f5rl.utils.atomic import atomic_write_text

EMBED_KEY = "text_embed.text_embed.weight"


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Token → id map of a ``vocab.txt``; raises if the file is missing or ``" "`` is not id 0."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocab file not found: {path} (set model.tokenizer_path or prepare the dataset)")
    tokens = path.read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens = tokens[:-1]
    if not tokens or tokens[0] != " ":
        raise ValueError(f"{path}: the first line must be a single space (token id 0), got {tokens[:1]!r}")
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        vocab.setdefault(tok, i)
    return vocab


def write_vocab(path: str | os.PathLike, tokens: Iterable[str]) -> Path:
    """Write tokens one per line with ``" "`` first, atomically."""
    tokens = list(dict.fromkeys(tokens))
    if " " in tokens:
        tokens.remove(" ")
    tokens = [" ", *tokens]
    bad = [t for t in tokens if "\n" in t]
    if bad:
        raise ValueError(f"tokens may not contain newlines: {bad[:3]}")
    return atomic_write_text(path, "\n".join(tokens) + "\n")


def build_char_vocab(texts: Iterable[str]) -> list[str]:
    """Sorted set of characters in ``texts`` with ``" "`` first."""
    chars = set()
    for t in texts:
        chars.update(t)
    chars.discard(" ")
    return [" ", *sorted(chars)]


def extend_vocab(
    state_dict: dict[str, Tensor], old_vocab: dict[str, int], new_tokens: Iterable[str], seed: int = 0
) -> tuple[dict[str, Tensor], list[str]]:
    """Grow the text embedding for ``new_tokens`` not yet in ``old_vocab``, keeping old rows.

    New rows are drawn from N(0, std of the old rows) so they start at the scale the model knows.
    Returns the new state dict (other tensors shared) and the new token list for ``write_vocab``.
    """
    key = next((k for k in state_dict if k.endswith(EMBED_KEY)), None)
    if key is None:
        raise KeyError(f"no {EMBED_KEY} in the state dict; is this an F5 DiT checkpoint?")
    weight = state_dict[key]
    if weight.shape[0] != len(old_vocab) + 1:
        raise ValueError(
            f"embedding has {weight.shape[0]} rows but the vocab has {len(old_vocab)} tokens (+1 filler expected)"
        )
    tokens = sorted(old_vocab, key=old_vocab.get)
    added = [t for t in dict.fromkeys(new_tokens) if t not in old_vocab]
    gen = torch.Generator().manual_seed(seed)
    extra = torch.randn(len(added), weight.shape[1], generator=gen) * weight.float().std()
    new_weight = torch.cat([weight, extra.to(weight.dtype)], dim=0)
    out = dict(state_dict)
    out[key] = new_weight
    return out, tokens + added

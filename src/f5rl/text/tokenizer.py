"""Text tokenizers of F5-TTS: ``char``, ``pinyin``, ``custom`` (a vocab.txt path) and ``byte``, plus
``phoneme`` (English IPA tokens from espeak-ng, :mod:`f5rl.text.phonemes`).

Encoding rules (DESIGN §4): unknown tokens map to 0, batches are padded with −1; the model adds 1
so that −1 becomes the filler row 0 of its embedding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from f5rl.text.inventory import Fallback, read_counts
from f5rl.text.vocab import read_vocab

TOKENIZERS = ("char", "pinyin", "custom", "byte", "phoneme")
PAD_ID = -1


def _has_cjk(text: str) -> bool:
    return any("\u3100" <= c <= "\u9fff" for c in text)


def to_pinyin_tokens(text: str) -> list[str]:
    """Split text into tokens, converting Chinese characters to tone-numbered pinyin (F5 style).

    Latin letters and symbols stay single characters; each Chinese syllable becomes one token
    preceded by a space. Needs the ``pinyin`` extra.
    """
    try:
        import jieba
        from pypinyin import Style, lazy_pinyin
    except ImportError as err:
        raise ImportError("the pinyin tokenizer needs: pip install 'f5rl[pinyin]'") from err
    text = text.translate(str.maketrans({";": ",", "“": '"', "”": '"', "‘": "'", "’": "'"}))
    tokens: list[str] = []
    for seg in jieba.cut(text):
        if len(seg.encode("utf-8")) == len(seg):  # ascii only
            if tokens and len(seg) > 1 and tokens[-1] not in " :'\"":
                tokens.append(" ")
            tokens.extend(seg)
            continue
        if len(seg.encode("utf-8")) == 3 * len(seg):  # all CJK: convert the word (tone sandhi)
            for c, syllable in zip(seg, lazy_pinyin(seg, style=Style.TONE3, tone_sandhi=True)):
                if _has_cjk(c):
                    tokens.append(" ")
                tokens.append(syllable)
            continue
        for c in seg:
            if ord(c) < 256:
                tokens.append(c)
            elif _has_cjk(c):
                tokens.append(" ")
                tokens.extend(lazy_pinyin(c, style=Style.TONE3, tone_sandhi=True))
            else:
                tokens.append(c)
    return tokens


@dataclass
class Tokenizer:
    """Maps strings to id tensors; ``vocab_size`` is the model's ``text_num_embeds``."""

    kind: str
    vocab: dict[str, int] | None = None
    path: Path | None = None
    # phoneme models: a token without a trained row is read as its nearest trained variant
    fallback: Fallback | None = None

    @property
    def vocab_size(self) -> int:
        return 256 if self.vocab is None else len(self.vocab)

    @property
    def uses_pinyin(self) -> bool:
        # a custom vocab with multi-character tokens (e.g. the Emilia pinyin vocab) needs conversion
        return self.kind == "pinyin" or (
            self.kind == "custom" and self.vocab is not None and any(len(t) > 1 for t in self.vocab)
        )

    def tokenize(self, text: str) -> list[str]:
        if self.kind == "phoneme":
            from f5rl.text.phonemes import phonemize

            return phonemize(text)
        if self.uses_pinyin and _has_cjk(text):
            return to_pinyin_tokens(text)
        return list(text)

    def length(self, text: str) -> int:
        """Text length for duration estimates: phoneme tokens for ``phoneme``, else UTF-8 bytes (F5)."""
        if self.kind == "phoneme":
            return len(self.tokenize(text))
        return len(text.encode("utf-8"))

    def ids(self, text: str) -> list[int]:
        if self.vocab is None:
            return list(text.encode("utf-8"))
        if self.fallback is not None:
            return [i if (i := self.fallback.id(tok)) is not None else 0 for tok in self.tokenize(text)]
        return [self.vocab.get(tok, 0) for tok in self.tokenize(text)]

    def for_training(self) -> Tokenizer:
        """The tokenizer that reads training text: every row the vocab has counts as trained, since
        training on a token trains its row (reading a never-trained token as its neighbour there would
        keep the row untrained for ever); tokens without a row still fall back."""
        if self.fallback is None:
            return self
        return replace(self, fallback=Fallback(self.vocab, None))

    def unknown(self, text: str) -> list[str]:
        """Tokens of ``text`` the model cannot read (they would be read as a space): missing from the
        vocab, or for phoneme models with no trained variant near them either."""
        if self.vocab is None:
            return []
        if self.fallback is not None:
            return sorted({tok for tok in self.tokenize(text) if self.fallback.resolve(tok) is None})
        return sorted({tok for tok in self.tokenize(text) if tok not in self.vocab})

    def encode(self, texts: list[str]) -> Tensor:
        """``(b, t)`` long tensor padded with −1."""
        seqs = [torch.tensor(self.ids(t), dtype=torch.long) for t in texts]
        return pad_sequence(seqs, batch_first=True, padding_value=PAD_ID)


def build_tokenizer(kind: str, path: str | os.PathLike | None = None) -> Tokenizer:
    """``kind`` in ``char|pinyin|custom|byte|phoneme``; ``path`` is the vocab.txt for all but ``byte``."""
    if kind not in TOKENIZERS:
        raise ValueError(f"model.tokenizer={kind!r} is not known; use one of {', '.join(TOKENIZERS)}")
    if kind == "byte":
        return Tokenizer("byte")
    if path is None:
        hint = "model.tokenizer_path" if kind == "custom" else "data/<name>_<tokenizer>/vocab.txt"
        raise ValueError(f"tokenizer {kind!r} needs a vocab.txt path ({hint})")
    vocab = read_vocab(path)
    if kind == "phoneme":
        return Tokenizer(kind, vocab, Path(path), Fallback(vocab, read_counts(Path(path))))
    return Tokenizer(kind, vocab, Path(path))

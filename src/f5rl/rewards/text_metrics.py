"""Text normalisation and error rates for ASR rewards and evaluation."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']|_")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str, lowercase: bool = True) -> str:
    """NFKC (full-width → half-width), lower case, punctuation removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    text = _PUNCT.sub(" ", text).replace(" '", " ").replace("' ", " ")
    return _SPACES.sub(" ", text).strip()


def edit_distance(ref: list[str] | str, hyp: list[str] | str) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def _is_cjk(c: str) -> bool:
    return "\u3100" <= c <= "\u9fff"


def char_error_rate(ref: str, hyp: str) -> float:
    """CER on normalised text without spaces (the usual definition for Chinese and for TTS eval)."""
    r = normalize_text(ref).replace(" ", "")
    h = normalize_text(hyp).replace(" ", "")
    if not r:
        return 0.0 if not h else 1.0
    return edit_distance(r, h) / len(r)


def word_error_rate(ref: str, hyp: str) -> float:
    """WER on normalised words; CJK characters count as words."""
    def words(t: str) -> list[str]:
        out: list[str] = []
        for w in normalize_text(t).split():
            if any(_is_cjk(c) for c in w):
                out.extend(w)
            else:
                out.append(w)
        return out

    r, h = words(ref), words(hyp)
    if not r:
        return 0.0 if not h else 1.0
    return edit_distance(r, h) / len(r)


def error_rate(ref: str, hyp: str, mode: str = "char") -> float:
    if mode == "char":
        return char_error_rate(ref, hyp)
    if mode == "word":
        return word_error_rate(ref, hyp)
    raise ValueError(f"wer_mode={mode!r}; use char or word")

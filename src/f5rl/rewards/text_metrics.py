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


def word_hits(ref: str, hyp: str) -> list[tuple[str, bool]]:
    """Each normalised word of ``ref`` with whether a minimum-edit word alignment to ``hyp`` matches it
    exactly (the hits of WER's alignment: a word said in the wrong place does not count)."""
    r, h = normalize_text(ref).split(), normalize_text(hyp).split()
    # cost[i][j]: edit distance of r[:i] and h[:j]; then walk back from the end along a cheapest path
    cost = [[i + j if i == 0 or j == 0 else 0 for j in range(len(h) + 1)] for i in range(len(r) + 1)]
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (r[i - 1] != h[j - 1]))
    hit = [False] * len(r)
    i, j = len(r), len(h)
    while i > 0 and j > 0:
        if r[i - 1] == h[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            hit[i - 1] = True
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j - 1] + 1:
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return list(zip(r, hit))


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

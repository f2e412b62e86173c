"""The complete phoneme inventory of the ``phoneme`` tokenizer, and the fallback for tokens a model
has a row for but never trained (or no row at all).

Coverage by construction: ``assets/text/phonemes_en_us.txt`` lists every token espeak-ng en-us can
emit (each vowel with no stress, ``ˈ`` and ``ˌ``), so a vocabulary built from it refuses no English
text. A model trained on a corpus that never contained a token (e.g. unstressed ``ʌ``) has only an
untrained row for it; its folder's ``token_counts.json`` says which rows were trained, and such a
token is read as its nearest trained variant (:func:`candidates`): the same vowel with another stress,
then the same vowel with another length, then the documented neighbours of :data:`NEAREST`.
"""

from __future__ import annotations

import functools
import json
import logging
import unicodedata
from pathlib import Path

log = logging.getLogger(__name__)

INVENTORY_FILE = Path(__file__).resolve().parents[1] / "assets" / "text" / "phonemes_en_us.txt"
COUNTS_FILE = "token_counts.json"  # beside a model's vocab.txt: {"counts": {token: training occurrences}}
STRESSES = ("", "ˈ", "ˌ")

# Nearest sounds for a symbol with no trained row (after its other stress and length variants).
# Documented choices: the glottal stop stands for the /t/ it replaces in American English ("button");
# syllabic n, nasal and foreign vowels and consonants fall back to their plain English neighbours;
# punctuation to the pause it makes.
NEAREST: dict[str, tuple[str, ...]] = {
    "ʔ": ("t",), "n̩": ("n",), "ɔ̃": ("ɔ", "ɔː"), "ɑ̃": ("ɑː", "a"), "x": ("k", "h"), "ç": ("h", "ʃ"),
    "ɬ": ("l",), "r": ("ɹ",), "ʲ": ("j",), "ɾ": ("t", "d"),
    "i": ("iː", "ɪ"), "iː": ("i", "ɪ"), "u": ("uː", "ʊ"), "uː": ("u", "ʊ"), "ɔ": ("ɔː", "ɑː"),
    "ɔː": ("ɔ", "ɑː"), "ɑː": ("ɔː", "a"), "ə": ("ɐ", "ʌ"), "ɐ": ("ə", "ʌ"), "ʌ": ("ɐ", "ə"), "ɚ": ("ɜː", "ə"),
    "ɜː": ("ɚ", "ə"), "ᵻ": ("ɪ", "ə"), "ɪ": ("ᵻ", "i"), "ʊ": ("u", "uː"), "e": ("ɛ",), "ɛ": ("e", "æ"),
    "o": ("ɔ", "ɔː"), "a": ("æ", "ɑː"), "æ": ("a", "ɛ"),
    "!": (".",), "?": (".",), ";": (",",), ":": (",",), ",": (" ",), ".": (" ",),
}
NEAREST = {unicodedata.normalize("NFD", k): tuple(unicodedata.normalize("NFD", x) for x in v)
           for k, v in NEAREST.items()}


@functools.lru_cache(maxsize=1)
def inventory() -> tuple[str, ...]:
    """Every token of the inventory file, in its order."""
    lines = INVENTORY_FILE.read_text(encoding="utf-8").split("\n")
    return tuple(ln for ln in lines if ln and not ln.startswith("#"))


def split_stress(token: str) -> tuple[str, str]:
    """``'ˈiː' -> ('ˈ', 'iː')``."""
    return (token[0], token[1:]) if token[:1] in "ˈˌ" and len(token) > 1 else ("", token)


def candidates(token: str) -> list[str]:
    """Tokens to try, nearest first, for a token without a trained row (the token itself first)."""
    stress, base = split_stress(token)
    other_stresses = [s for s in (stress, *STRESSES) if s != stress]
    out = [token, *(s + base for s in other_stresses)]
    lengths = [base[:-1]] if base.endswith("ː") else [base + "ː"]
    for near in (*lengths, *NEAREST.get(base, ())):
        out += [s + near for s in (stress, *other_stresses)] if stress or near in _STRESSABLE() else [near]
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1)
def _STRESSABLE() -> frozenset[str]:  # noqa: N802 (a constant read from the inventory file)
    return frozenset(split_stress(t)[1] for t in inventory() if split_stress(t)[0])


def read_counts(vocab_path: Path | None) -> dict[str, int] | None:
    """Training occurrences per token recorded beside a vocab.txt (None when the folder has none)."""
    if vocab_path is None:
        return None
    path = Path(vocab_path).with_name(COUNTS_FILE)
    return load_counts(path) if path.is_file() else None


def load_counts(path: Path) -> dict[str, int]:
    """The ``counts`` of a ``token_counts.json`` (tokens NFD-normalised, as the tokenizer writes them)."""
    return {unicodedata.normalize("NFD", k): int(v) for k, v in json.loads(Path(path).read_text())["counts"].items()}


class Fallback:
    """Maps a token to the id of itself or its nearest trained variant; warns once per mapping."""

    def __init__(self, vocab: dict[str, int], counts: dict[str, int] | None) -> None:
        self.vocab = vocab
        self.trained = None if counts is None else {t for t, n in counts.items() if n > 0 and t in vocab}
        self.warned: set[tuple[str, str]] = set()

    def usable(self, token: str) -> bool:
        return token in self.vocab and (self.trained is None or token in self.trained)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one Fallback per tokenizer, kept for its life)
    def resolve(self, token: str) -> str | None:
        """The token this model reads ``token`` as, or None when nothing near it was trained."""
        for c in candidates(token):
            if self.usable(c):
                return c
        return None

    def id(self, token: str) -> int | None:
        target = self.resolve(token)
        if target is None:
            return None
        if target != token and (token, target) not in self.warned:
            self.warned.add((token, target))
            why = "no row" if token not in self.vocab else "a row never trained"
            log.warning("phoneme %r has %s in this model: read as %r (the nearest trained variant)", token, why,
                        target)
        return self.vocab[target]

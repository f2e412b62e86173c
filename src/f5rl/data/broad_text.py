"""Broad-text training sentences: common English words in random order, for a corpus that teaches a
phoneme model English at large rather than one grammar's few hundred words.

The template grammar of ``prepare_demo`` repeats ~150 words, so a model trained on it only says
those words well (free-text CER twice the template CER on the shipped base before its ``any_text``
stage). These sentences draw words from the most frequent English words of the ``wordfreq`` package
(Apache-2.0 code; its word lists are built from public corpora, CC BY-SA 4.0), with probability
proportional to frequency^``flatten`` so that function words are frequent, as in real text, while
content words still vary. They are not grammatical; what a TTS model learns from them is how every
phoneme sounds next to every other and how long it lasts, which the held-out free-text sentences need.
"""

from __future__ import annotations

import random
import re

# words kept out of generated training text (offensive or sexual; wordfreq lists web text)
_BLOCKED = frozenset((
    "porn", "porno", "sex", "sexy", "nude", "naked", "fuck", "fucking", "fucked", "fucker", "shit", "shitty",
    "bitch", "bitches", "ass", "asshole", "dick", "cock", "pussy", "cunt", "whore", "slut", "rape", "raped",
    "rapist", "nigga", "nigger", "fag", "faggot", "retard", "retarded", "boobs", "tits", "anal", "orgasm",
    "horny", "dildo", "cum", "masturbation", "hooker", "bastard", "piss", "pissed", "xxx", "viagra",
))

_WORD = re.compile(r"^[a-z]+(?:'[a-z]+)?$")


def common_words(n_words: int = 8000) -> tuple[list[str], list[float]]:
    """The ``n_words`` most frequent English words (letters and one inner apostrophe only, no single
    letters but "a" and "I", none of a short blocklist) and their frequencies."""
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError as err:
        raise ImportError("broad-text sentences need word frequencies: pip install 'f5rl[demo]'") from err
    words = [w for w in top_n_list("en", n_words)
             if _WORD.match(w) and (len(w) > 1 or w in ("a", "i")) and w not in _BLOCKED]
    return words, [word_frequency(w, "en") for w in words]


def broad_sentences(n: int, seed: int, n_words: int = 8000, flatten: float = 0.5, min_len: int = 4,
                    max_len: int = 14, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """``n`` distinct sentences of ``min_len``..``max_len`` words drawn with probability ∝ frequency^``flatten``
    (0: uniform over the list, 1: as often as in text); a comma now and then, a full stop or (one in six)
    a question mark. Sentences in ``exclude`` (e.g. held-out text) are never returned."""
    words, freqs = common_words(n_words)
    weights = [f**flatten for f in freqs]
    rng = random.Random(seed)
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        ws = rng.choices(words, weights, k=rng.randint(min_len, max_len))
        ws = ["I" + w[1:] if w == "i" or w.startswith("i'") else w for w in ws]
        for i in range(1, len(ws) - 2):
            if rng.random() < 0.06:
                ws[i] += ","
        s = " ".join(ws)
        s = s[0].upper() + s[1:] + ("?" if rng.random() < 1 / 6 else ".")
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out

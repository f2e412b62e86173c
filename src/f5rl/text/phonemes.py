"""English text to IPA phoneme tokens with espeak-ng (the ``phoneme`` tokenizer).

espeak-ng writes stress marks before a syllable's vowel and length marks after it; as separate
tokens they would take audio frames of their own under average-upsampled text (each text token
gets an equal share of the frames), so a token here is one phoneme with its marks attached:
``ˈiː`` is one token, ``p`` another. Spaces and punctuation stay tokens (pauses take time).
The espeak-ng binding is the one shipped by ``piper-tts`` (the ``phoneme`` extra).
"""

from __future__ import annotations

import functools
import re
import unicodedata

STRESS = "ˈˌ"
SUFFIX_MARKS = "ːˑ"  # length marks, attached to the phoneme before them


@functools.lru_cache(maxsize=1)
def _bridge():
    try:
        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR
    except ImportError as err:
        raise ImportError("the phoneme tokenizer needs espeak-ng: pip install 'f5rl[phoneme]'") from err
    espeakbridge.initialize(str(ESPEAK_DATA_DIR))
    return espeakbridge


def group_marks(chars: list[str]) -> list[str]:
    """Attach stress marks to the following symbol and length marks/combining diacritics to the
    previous one: ``['p','l','ˈ','i','ː','z'] -> ['p','l','ˈiː','z']``."""
    out: list[str] = []
    pending = ""
    for c in chars:
        if c in STRESS:
            pending += c
        elif (c in SUFFIX_MARKS or unicodedata.combining(c)) and out and not pending:
            out[-1] += c
        else:
            out.append(pending + c)
            pending = ""
    if pending:
        out.append(pending)
    return out


@functools.lru_cache(maxsize=65536)
def _phonemize_cached(text: str, voice: str) -> tuple[str, ...]:
    bridge = _bridge()
    bridge.set_voice(voice)
    chars: list[str] = []
    for phonemes, terminator, _end in bridge.get_phonemes(text):
        phonemes = re.sub(r"\([^)]+\)", "", phonemes)  # language-switch flags like (en)
        chunk = phonemes + terminator
        if chars and chars[-1] != " ":
            chars.append(" ")
        chars.extend(unicodedata.normalize("NFD", chunk))
    return tuple(group_marks(chars))


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """IPA tokens of ``text`` (cached: the same sentence is phonemised once per process)."""
    return list(_phonemize_cached(text, voice))

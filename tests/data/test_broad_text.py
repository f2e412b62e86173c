"""Broad-text training sentences (common English words in random order)."""

import pytest

pytest.importorskip("wordfreq", reason="wordfreq (the demo extra) gives the word frequencies")


def test_broad_sentences_are_seeded_distinct_and_phonemizable():
    from f5rl.data.broad_text import _BLOCKED, broad_sentences, common_words
    from f5rl.text.inventory import inventory
    from f5rl.text.phonemes import phonemize

    a = broad_sentences(60, seed=3)
    assert a == broad_sentences(60, seed=3) != broad_sentences(60, seed=4)
    assert len(a) == len(set(a)) == 60
    inv = set(inventory())
    for s in a:
        words = s[:-1].replace(",", "").split()
        assert 4 <= len(words) <= 14 and s[-1] in ".?" and s[0].isupper()
        assert "i" not in words and not any(w.lower() in _BLOCKED for w in words)
        assert set(phonemize(s)) <= inv  # every token has a row in a phoneme model's vocabulary
    # frequency-weighted draws: the 100 most common words (1.3% of the list) are ~10% of the words drawn
    top = set(common_words()[0][:100])
    drawn = [w.lower().strip(",") for s in a for w in s[:-1].split()]
    assert sum(w in top for w in drawn) / len(drawn) > 0.05


def test_broad_sentences_never_return_excluded_text():
    from f5rl.data.broad_text import broad_sentences

    first = broad_sentences(5, seed=9)
    again = broad_sentences(5, seed=9, exclude=set(first[:3]))
    assert not set(first[:3]) & set(again) and len(again) == 5

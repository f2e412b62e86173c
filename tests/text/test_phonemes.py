import pytest

from f5rl.text.phonemes import group_marks, phonemize
from f5rl.text.tokenizer import build_tokenizer
from f5rl.text.vocab import write_vocab


def test_group_marks_by_hand():
    # stress attaches forward, length marks backward, a trailing stress mark stays a token
    assert group_marks(["p", "l", "ˈ", "i", "ː", "z"]) == ["p", "l", "ˈiː", "z"]
    assert group_marks(["ˌ", "ɔ", "n", " ", "ˈ", "ɑ", "ː", "ɡ"]) == ["ˌɔ", "n", " ", "ˈɑː", "ɡ"]
    assert group_marks(["a", "\u0303", "ˈ"]) == ["a\u0303", "ˈ"]  # combining tilde joins 'a'
    assert group_marks(["ː", "a"]) == ["ː", "a"]  # nothing before it: kept as is


def test_phonemize_english():
    pytest.importorskip("piper", reason="piper (the demo extra) is the espeak-ng G2P behind phonemize")
    assert phonemize("please") == ["p", "l", "ˈiː", "z"]
    toks = phonemize("Did Tom call? Yes.")
    assert toks[-1] == "." and "?" in toks
    assert toks[toks.index("?") + 1] == " "  # clauses are separated by a space token
    assert phonemize("please") == phonemize("please")  # cached result is a fresh list each call
    assert phonemize("please") is not phonemize("please")


def test_phoneme_tokenizer(tmp_path):
    pytest.importorskip("piper", reason="piper (the demo extra) is the espeak-ng G2P behind phonemize")
    vocab = write_vocab(tmp_path / "vocab.txt", [" ", "p", "l", "ˈiː", "z", "k", "ˈɔː"])
    tok = build_tokenizer("phoneme", vocab)
    assert tok.tokenize("please call") == ["p", "l", "ˈiː", "z", " ", "k", "ˈɔː", "l"]
    ids = tok.encode(["please call", "please"])
    assert ids.shape == (2, 8)
    assert ids[1, 4:].tolist() == [-1] * 4  # padding
    assert tok.unknown("please sing") == sorted({"s", "ˈɪ", "ŋ"})
    assert tok.length("please call") == 8  # duration estimates count phonemes, not letters
    assert build_tokenizer("char", vocab).length("é") == 2  # others keep F5's UTF-8 bytes
    with pytest.raises(ValueError, match="vocab.txt"):
        build_tokenizer("phoneme")

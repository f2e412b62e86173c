import pytest
import torch

from f5rl.text import build_char_vocab, build_tokenizer, extend_vocab, read_vocab, write_vocab


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab(tmp_path / "vocab.txt", build_char_vocab(["hello world", "ab"]))


def test_vocab_space_is_id_zero_and_lines_are_ids(vocab_file):
    vocab = read_vocab(vocab_file)
    assert vocab[" "] == 0
    lines = vocab_file.read_text().split("\n")[:-1]
    assert all(vocab[tok] == i for i, tok in enumerate(lines))


def test_char_encoding_unknown_to_zero_and_padding(vocab_file):
    tok = build_tokenizer("char", vocab_file)
    ids = tok.encode(["ab", "hez"])
    v = tok.vocab
    assert ids.tolist() == [[v["a"], v["b"], -1], [v["h"], v["e"], 0]]
    assert tok.unknown("hez!") == ["!", "z"]
    assert tok.vocab_size == len(v)


def test_byte_tokenizer():
    tok = build_tokenizer("byte")
    assert tok.vocab_size == 256
    assert tok.encode(["é"]).tolist() == [[0xC3, 0xA9]]


def test_bad_vocab_and_kind_errors(tmp_path):
    (tmp_path / "v.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="single space"):
        read_vocab(tmp_path / "v.txt")
    with pytest.raises(FileNotFoundError, match="tokenizer_path"):
        read_vocab(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="use one of"):
        build_tokenizer("phonemes")
    with pytest.raises(ValueError, match="needs a vocab"):
        build_tokenizer("custom")


def test_custom_multichar_vocab_uses_pinyin_only_for_cjk(tmp_path):
    path = write_vocab(tmp_path / "v.txt", [" ", "a", "b", "ni3", "hao3"])
    tok = build_tokenizer("custom", path)
    assert tok.uses_pinyin
    assert tok.tokenize("ab") == ["a", "b"]  # no CJK: no conversion, no optional import needed


def test_pinyin_conversion_when_extra_installed(tmp_path):
    pytest.importorskip("pypinyin", reason="pinyin extra not installed")
    pytest.importorskip("jieba", reason="pinyin extra not installed")
    path = write_vocab(tmp_path / "v.txt", [" ", "a", "ni3", "hao3"])
    tok = build_tokenizer("pinyin", path)
    assert [t for t in tok.tokenize("你好") if t != " "] == ["ni2", "hao3"]  # tone sandhi


def test_extend_vocab_keeps_old_rows(vocab_file):
    vocab = read_vocab(vocab_file)
    weight = torch.randn(len(vocab) + 1, 8)
    state = {"transformer.text_embed.text_embed.weight": weight, "other": torch.ones(1)}
    new_state, tokens = extend_vocab(state, vocab, ["x", "a", "y"])
    new_w = new_state["transformer.text_embed.text_embed.weight"]
    assert new_w.shape == (len(vocab) + 3, 8)
    assert torch.equal(new_w[: len(vocab) + 1], weight)
    assert tokens[: len(vocab)] == sorted(vocab, key=vocab.get) and tokens[-2:] == ["x", "y"]
    assert new_state["other"] is state["other"]
    with pytest.raises(ValueError, match="rows"):
        extend_vocab({"text_embed.text_embed.weight": torch.randn(3, 2)}, vocab, ["q"])

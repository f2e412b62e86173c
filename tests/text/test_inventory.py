"""Any English sentence: the phoneme inventory covers what espeak-ng emits, and a token whose row was
never trained is read as its nearest trained variant, never refused."""

import logging
import unicodedata

import pytest
import torch

from f5rl.data.coverage import free_text_sentences
from f5rl.eval.base_model import SHIPPED
from f5rl.text.inventory import Fallback, candidates, inventory, read_counts
from f5rl.text.tokenizer import build_tokenizer

QUOTED = ["The train to the coast was late by almost an hour.", "A gentle breeze carried the smell of cut grass.",
          "Two owls called to each other from the tall pines."]


def nfd(s: str) -> str:
    return unicodedata.normalize("NFD", s)


def test_inventory_is_closed_under_stress_and_starts_with_space():
    inv = inventory()
    assert inv[0] == " " and len(inv) == len(set(inv)) == 105
    assert all(t == nfd(t) for t in inv)
    stressed = {t[1:] for t in inv if t[0] in "ˈˌ"}
    for base in stressed:  # every stressable symbol has all three variants
        assert {base, "ˈ" + base, "ˌ" + base} <= set(inv), base
    assert {"ʌ", "ˈʌ", "ˌʌ", nfd("n̩"), "ʔ", "ˌa", "ˈi"} <= set(inv)  # the tokens the old vocab refused


def test_fallback_by_hand(caplog):
    vocab = {t: i for i, t in enumerate([" ", "ˈʌ", "ʌ", "n", nfd("n̩"), "t", "ʔ", "ˌa", "a", "ˈi", "i",
                                         nfd("ɔ̃"), "ɔ", ".", "!"])}
    counts = {" ": 9, "ˈʌ": 5, "ʌ": 0, "n": 3, nfd("n̩"): 0, "t": 4, "ʔ": 0, "ˌa": 0, "a": 2, "ˈi": 0, "i": 1,
              nfd("ɔ̃"): 0, "ɔ": 0, ".": 7, "!": 0}
    fb = Fallback(vocab, counts)
    expected = {
        "ʌ": "ˈʌ",  # unstressed -> the same vowel stressed
        "ˌʌ": "ˈʌ",  # not in the vocab at all -> the trained stress variant
        nfd("n̩"): "n",  # syllabic n -> n
        "ʔ": "t",  # glottal stop -> the /t/ it replaces
        "ˌa": "a", "ˈi": "i",  # stress variants
        "!": ".",  # punctuation -> the pause it makes
        "n": "n", "ˈʌ": "ˈʌ",  # trained tokens read as themselves
    }
    with caplog.at_level(logging.WARNING, logger="f5rl.text.inventory"):
        for token, target in expected.items():
            assert fb.resolve(token) == target, token
            assert fb.id(token) == vocab[target]
            fb.id(token)  # a second use does not warn again
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 7 and any("'ʔ' has a row never trained in this model: read as 't'" in w for w in warned)
    assert fb.resolve(nfd("ɔ̃")) is None  # nothing near it trained (ɔ untrained, ɔː absent): refused
    assert candidates("ˈiː")[:3] == ["ˈiː", "iː", "ˌiː"] and "ˈi" in candidates("ˈiː")


def test_training_text_trains_rows_that_were_never_trained(demo_corpus):
    """Stage 0/1 collate reads a corpus token as itself even where token_counts.json says its row was never
    trained (training is what trains it); synthesis keeps the fallback."""
    from types import SimpleNamespace

    from f5rl.audio.mel import MelConfig
    from f5rl.train.trainer import Trainer

    tok = build_tokenizer("phoneme", SHIPPED / "vocab.txt")
    text = "A gentle breeze carried the smell of cut grass."
    untrained = [t for t in tok.tokenize(text) if read_counts(SHIPPED / "vocab.txt")[t] == 0]
    assert untrained  # e.g. unstressed ʌ in "cut"
    assert tok.ids(text) != [tok.vocab[t] for t in tok.tokenize(text)]
    train_tok = tok.for_training()
    assert train_tok.ids(text) == [tok.vocab[t] for t in tok.tokenize(text)]
    assert tok.ids(text) != train_tok.ids(text)  # the synthesis tokenizer is unchanged
    trainer = SimpleNamespace(cfg=SimpleNamespace(datasets=SimpleNamespace(min_duration=0.3, max_duration=30.0)),
                              mel_config=MelConfig(), tokenizer=tok, trains_text_rows=Trainer.trains_text_rows)
    _, collate = Trainer.build_dataset(trainer, demo_corpus)  # what stage 0/1 batches are encoded with
    assert collate.tokenizer.ids(text) == train_tok.ids(text)


def test_free_text_list_is_covered_by_the_shipped_vocabulary_and_its_counts():
    sentences = free_text_sentences()
    assert len(sentences) >= 100 and len(set(sentences)) == len(sentences)
    tok = build_tokenizer("phoneme", SHIPPED / "vocab.txt")
    counts = read_counts(SHIPPED / "vocab.txt")
    used = {t for s in sentences for t in tok.tokenize(s)}
    assert used <= set(tok.vocab), used - set(tok.vocab)
    fallen = {t: tok.fallback.resolve(t) for t in used if counts[t] == 0}
    print(f"{len(used)} tokens in the free-text list; read through a fallback: {fallen}")
    assert all(target is not None and counts[target] > 0 for target in fallen.values())
    assert tok.unknown(" ".join(sentences)) == []


def test_template_text_reads_exactly_as_before_the_inventory():
    """Tokens the shipped model trained keep their ids: the old 60 rows are the first 60 of its vocab."""
    from f5rl.data.prepare_demo import make_sentences

    tok = build_tokenizer("phoneme", SHIPPED / "vocab.txt")
    for s in make_sentences(50, 1234):
        assert tok.ids(s) == [tok.vocab[t] for t in tok.tokenize(s)]
        assert max(tok.ids(s)) < 60


def test_the_shipped_model_says_every_free_text_sentence():
    from f5rl.infer.tts import TTS

    tts = TTS.from_checkpoint(SHIPPED / "model.safetensors", device="cpu")
    prompt = torch.randn(24000) * 0.05
    for s in free_text_sentences():
        tts.check_text(s)  # nothing refused
    for s in QUOTED:
        out = tts.synthesize(prompt, "The old dog is near the market.", s, nfe=4)
        assert out.audio.numel() > 24000 and torch.isfinite(out.audio).all()
    with pytest.raises(ValueError, match="no sounds"):
        tts.check_text("(( — ))")  # espeak-ng reads nothing here


def test_record_training_counts_each_corpus_once_with_the_initial_weights(tmp_path, demo_corpus):
    import json

    from f5rl.data.coverage import record_training, write_counts

    init_dir = tmp_path / "base"
    init_dir.mkdir()
    write_counts({"a": 2, "ʌ": 0}, init_dir / "token_counts.json", "the base's corpus")
    other = tmp_path / "other_corpus"  # no token_counts.json: counted from its texts
    other.mkdir()
    save = tmp_path / "run"
    save.mkdir()
    own = json.loads((demo_corpus / "token_counts.json").read_text())["counts"]
    rec = record_training(save, demo_corpus, list, init_dir / "model.safetensors")
    assert len(rec["corpora"]) == 2 and rec["counts"]["a"] == own["a"] + 2
    assert record_training(save, demo_corpus, list, init_dir / "model.safetensors") == rec  # a resume: once
    rec = record_training(save, other, lambda: ["cut cut"])
    assert len(rec["corpora"]) == 3 and rec["counts"]["ˈʌ"] == own["ˈʌ"] + 2 and rec["counts"]["ʌ"] == own["ʌ"]
    assert json.loads((save / "token_counts.json").read_text()) == rec


def test_stage_one_records_what_it_trained_and_validates_by_that_record(tmp_path, demo_corpus):
    from f5rl.text.inventory import load_counts
    from f5rl.train.trainer import Trainer
    from tests.conftest import tiny_train_config

    cfg = tiny_train_config(tmp_path / "ph", demo_corpus, "model.tokenizer=phoneme", "optim.max_updates=1",
                            f"model.tokenizer_path={demo_corpus / 'vocab_phoneme.txt'}")
    t = Trainer(cfg)
    t.setup()
    counts = load_counts(tmp_path / "ph" / "token_counts.json")
    assert counts == load_counts(demo_corpus / "token_counts.json")  # no initial weights: this corpus only
    trained = {k for k, v in counts.items() if v > 0}
    assert t.tokenizer.fallback.trained == trained and len(trained) < len(t.tokenizer.vocab)

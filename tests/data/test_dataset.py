import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from f5rl.data import Collate, DynamicBatchSampler, TTSDataset, dataset_dir
from f5rl.data.prepare import prepare
from f5rl.text import build_tokenizer
from tests.conftest import speech_like


@pytest.fixture
def wav_folder(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, (secs, text) in enumerate([(1.0, "hello there"), (0.5, "a cat"), (0.2, "too short"), (1.5, "good day")]):
        sf.write(folder / f"u{i}.wav", speech_like(secs, sr=16000, seed=i), 16000)
        (folder / f"u{i}.txt").write_text(text)
    return folder


def test_prepare_folder_and_load_through_loader(wav_folder, tmp_path):
    out = prepare(str(wav_folder), "mini", "char", data_root=str(tmp_path / "data"))
    assert out == tmp_path / "data" / "mini_char"
    assert json.loads((out / "duration.json").read_text())["duration"][0] == pytest.approx(1.0, abs=1e-3)
    ds = TTSDataset(dataset_dir("mini", "char", tmp_path / "data"))
    assert len(ds) == 3  # the 0.2 s item is outside 0.3-30 s
    item = ds[0]
    assert item.mel.shape[1] == 100 and abs(item.mel.shape[0] - 94) <= 1  # 1 s at 93.75 frames/s
    tok = build_tokenizer("char", out / "vocab.txt")
    loader = torch.utils.data.DataLoader(ds, batch_sampler=DynamicBatchSampler(ds.frame_lens, 400),
                                         collate_fn=Collate(tok))
    batch = next(iter(loader))
    assert batch.mel.shape[0] == len(batch.mel_lengths) == batch.text.shape[0]
    assert (batch.text == -1).any() or len(set(map(len, batch.texts))) == 1


def test_prepare_csv_and_jsonl(wav_folder, tmp_path):
    (wav_folder / "m.csv").write_text("audio_file|text\nu0.wav|hello there\nu3.wav|good day\n")
    out = prepare(str(wav_folder / "m.csv"), "csvset", "char", data_root=str(tmp_path / "d"))
    assert len(json.loads((out / "duration.json").read_text())["duration"]) == 2
    (wav_folder / "m.jsonl").write_text(json.dumps({"audio_path": "u1.wav", "text": "a cat"}) + "\n")
    out = prepare(str(wav_folder / "m.jsonl"), "js", "byte", data_root=str(tmp_path / "d"))
    assert not (out / "vocab.txt").exists()
    with pytest.raises(ValueError, match="audio column"):
        (wav_folder / "bad.csv").write_text("path,words\nu0.wav,hi\n")
        prepare(str(wav_folder / "bad.csv"), "bad", "char", data_root=str(tmp_path / "d"))


def test_missing_dataset_error_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_demo"):
        dataset_dir("demo", "char", tmp_path)
    with pytest.raises(FileNotFoundError, match="f5rl.data.prepare"):
        dataset_dir("other", "char", tmp_path)


def test_demo_corpus_loads_and_is_reproducible(demo_corpus, tmp_path):
    from f5rl.data.prepare_demo import make_sentences

    ds = TTSDataset(demo_corpus)
    summary = json.loads((demo_corpus / "speakers.json").read_text())
    assert len(ds) == summary["train_items"] and summary["test_items"] >= 4
    assert set(ds.table["speaker"]) == {"joe", "ava", "max", "ivy"}
    test_rows = [json.loads(ln) for ln in (demo_corpus / "test.jsonl").read_text().splitlines()]
    assert not {r["text"] for r in test_rows} & set(ds.table["text"])  # held-out sentences
    tok = build_tokenizer("char", demo_corpus / "vocab.txt")
    assert all(not tok.unknown(r["text"]) for r in test_rows)
    assert make_sentences(10, 7) == make_sentences(10, 7) != make_sentences(10, 8)


def test_extra_train_sentences_keep_the_held_out_split(demo_corpus, tmp_path):
    """A larger train set built from the same seed keeps the test split of the smaller corpus, so a
    model trained on it is still measured on sentences it never saw."""
    from f5rl.data.prepare_demo import build

    big = tmp_path / "big"
    summary = build(big, sentences=28, test_fraction=0.15, seed=7, speakers=["joe", "ava", "max", "ivy"],
                    report_similarity=False, extra_train_sentences=10, broad_train_sentences=4)
    small = json.loads((demo_corpus / "speakers.json").read_text())
    assert summary["train_items"] == small["train_items"] + 14 and summary["test_items"] == small["test_items"]
    assert (big / "test_eval.jsonl").read_text() == (demo_corpus / "test_eval.jsonl").read_text()
    # (durations may differ by a few samples: espeak-ng keeps state across syntheses in one process)
    held_out = lambda d: [(r["audio_path"], r["text"], r["speaker"])  # noqa: E731
                          for r in map(json.loads, (d / "test.jsonl").read_text().splitlines())]
    assert held_out(big) == held_out(demo_corpus)
    test_texts = {json.loads(ln)["text"] for ln in (big / "test.jsonl").read_text().splitlines()}
    train_texts = set(TTSDataset(big).table["text"])
    assert set(TTSDataset(demo_corpus).table["text"]) < train_texts and not test_texts & train_texts
    from f5rl.data.broad_text import broad_sentences
    from f5rl.data.prepare_demo import make_sentences

    assert set(broad_sentences(4, seed=7, exclude=set(make_sentences(38, 7)))) < train_texts  # after the grammar's
    with pytest.raises(ValueError, match="extra_train_sentences"):
        build(tmp_path / "bad", sentences=28, extra_train_sentences=-1)
    with pytest.raises(ValueError, match="broad_train_sentences"):
        build(tmp_path / "bad", sentences=28, broad_train_sentences=-1)


def test_demo_corpus_is_reproducible_from_its_seed(tmp_path):
    """Two fresh processes with the same seed write identical audio (espeak-ng keeps synthesis
    state within a process, so the comparison is between processes, as users run it)."""
    import hashlib
    import subprocess
    import sys

    digests = []
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-m", "f5rl.data.prepare_demo", "--out", str(tmp_path / run),
                        "--sentences", "12", "--seed", "3", "--speakers", "joe,ava,max,ivy", "--no_similarity",
                        "--no_free_text"],
                       check=True, capture_output=True, timeout=300)
        wavs = sorted((tmp_path / run / "wavs").glob("*.wav"))
        digests.append([(w.name, hashlib.md5(w.read_bytes()).hexdigest()) for w in wavs])
    assert len(digests[0]) == 12 and digests[0] == digests[1]


def test_an_f5tts_readme_option_a_set_loads_with_paths_relative_to_the_working_directory(tmp_path, monkeypatch):
    """The F5-TTS RL README's option A script, as written (synthetic audio in place of the HF dummy
    set): it saves ``audio_path`` as ``data/mini_rl_custom/wavs/...``, relative to where it ran."""
    from datasets import Dataset

    monkeypatch.chdir(tmp_path)
    out_root = Path("data/mini_rl_custom")
    wav_dir = out_root / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    items, durations = [], []
    for idx in range(3):
        audio, sr = speech_like(1.0 + 0.25 * idx, sr=16000, seed=idx), 16000
        wav_path = wav_dir / f"sample_{idx:02d}.wav"
        sf.write(wav_path, audio, sr)
        duration = len(audio) / sr
        items.append({"audio_path": str(wav_path), "text": f"sample {idx}", "duration": duration})
        durations.append(duration)
    Dataset.from_list(items).save_to_disk(str(out_root / "raw"))
    with (out_root / "duration.json").open("w", encoding="utf-8") as f:
        json.dump({"duration": durations}, f)

    ds = TTSDataset(dataset_dir("mini_rl", "custom", "data"))  # datasets.name=mini_rl model.tokenizer=custom
    assert [ds[i].text for i in range(3)] == ["sample 0", "sample 1", "sample 2"]
    assert abs(ds[2].mel.shape[0] - 1.5 * 93.75) <= 2
    # run from elsewhere the relative paths point nowhere: one clear error at load, not at the first batch
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="neither in .* nor under the working directory"):
        TTSDataset(tmp_path / "data" / "mini_rl_custom")

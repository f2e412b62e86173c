"""Row files users write: JSON lines and TRL's TSV, with errors naming the file and the true line."""

import json

import pytest
import soundfile as sf

from f5rl.data.rows import read_rows
from tests.conftest import speech_like


def test_trl_tsv_rows_and_a_plain_tsv(tmp_path):
    trl = tmp_path / "audio_data.tsv"
    messages = [{"messages": [{"role": "user", "content": "Transcribe this audio"},
                              {"role": "assistant", "content": "Hello world"}]}]
    trl.write_text(f'sample_001\t["/data/a.wav"]\t{json.dumps(messages)}\n\nsample_002\tb.wav\tGood day\n')
    rows = read_rows(trl, ("id", "audio_path", "text"))
    assert rows == [{"id": "sample_001", "audio_path": "/data/a.wav", "text": "Hello world"},
                    {"id": "sample_002", "audio_path": "b.wav", "text": "Good day"}]
    plain = tmp_path / "plain.tsv"
    plain.write_text("id\taudio\ttext\nu1\tu1.wav\thi there\n")  # a header line is skipped
    assert read_rows(plain) == [{"id": "u1", "audio_path": "u1.wav", "text": "hi there"}]
    bad = tmp_path / "bad.tsv"
    bad.write_text('u1\tu1.wav\thi\nu2\t["x.wav"]\t[{"messages": [{"role": "user", "content": "q"}]}]\n')
    with pytest.raises(ValueError, match=r"bad.tsv:2: the messages have no assistant turn"):
        read_rows(bad)


def test_jsonl_errors_name_the_true_line_and_the_field(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"id": "a", "text": "x"}\n\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:3: no 'text' field"):
        read_rows(p, ("id", "text"))
    p.write_text('{"id": "a", "audio": "a.wav", "text": "x"}\n')
    assert read_rows(p, ("audio_path",), aliases={"audio_path": ("audio",)})[0]["audio_path"] == "a.wav"
    with pytest.raises(FileNotFoundError, match="--manifest .*none.jsonl does not exist"):
        read_rows(tmp_path / "none.jsonl", what="--manifest")


def test_prepare_and_validation_manifests_read_tsv(tmp_path):
    from f5rl.data.manifest import read_manifest
    from f5rl.data.prepare import prepare

    for i in range(2):
        sf.write(tmp_path / f"u{i}.wav", speech_like(1.0, sr=16000, seed=i), 16000)
    tsv = tmp_path / "set.tsv"
    tsv.write_text("u0\tu0.wav\thello there\nu1\t[\"u1.wav\"]\tgood day\n")
    out = prepare(str(tsv), "tsvset", "char", data_root=str(tmp_path / "data"))
    from datasets import load_from_disk

    assert list(load_from_disk(str(out / "raw"))["text"]) == ["hello there", "good day"]
    rows = read_manifest(tsv)
    assert [r["audio_path"] for r in rows] == [str(tmp_path / "u0.wav"), str(tmp_path / "u1.wav")]

"""``--asr_config`` / ``--sim_config`` of ``prefs.generate`` and ``prefs.iterate``: the scorers' own settings
(a Whisper model or window, a WeSpeaker folder, a reward server's URL) given as ``KEY=VALUE``, checked before any
model loads, used by every generation process and recorded in each row."""

import json
import os
import subprocess

import pytest
import soundfile as sf

from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
from tests.prefs.test_pipeline import _run_generate


def test_provider_config_items_are_read_as_yaml_values():
    from f5rl.rewards.registry import parse_provider_config

    got = parse_provider_config(["window_s=10", "model=embedded:base", "shifts_ms=[0, 5]", "beam_size=2",
                                 "compute_type=null", "wer_mode=word"], "--asr_config")
    assert got == {"window_s": 10, "model": "embedded:base", "shifts_ms": [0, 5], "beam_size": 2,
                   "compute_type": None, "wer_mode": "word"}
    assert parse_provider_config([], "--asr_config") == {}
    with pytest.raises(ValueError, match=r"--sim_config 'model_dir': give KEY=VALUE"):
        parse_provider_config(["model_dir"], "--sim_config")
    with pytest.raises(ValueError, match=r"--asr_config gives 'window_s' twice"):
        parse_provider_config(["window_s=10", "window_s=20"], "--asr_config")


@pytest.mark.parametrize("flags, message", [
    (["--asr", "whisper_asr", "--asr_config", "window_sec=10"], "--asr_config: reward provider 'whisper_asr': bad "
                                                                "config {'window_sec': 10}"),
    (["--asr", "whisper_asr", "--asr_config", "window_s=45"], "--asr_config: window_s=45: Whisper's encoder window"),
    (["--sim_config", "chars_per_second"], "--sim_config 'chars_per_second': give KEY=VALUE"),
])
def test_generate_refuses_a_bad_scorer_config_in_one_line_before_any_model_loads(tmp_path, capsys, flags, message):
    from f5rl.prefs import generate

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "text": "hello there", "context_audio": "x.wav",
                                    "context_text": "hi"}) + "\n")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")  # loading it would fail with another message
    with pytest.raises(SystemExit) as exit_:
        generate.main(["--manifest", str(manifest), "--ckpt", str(ckpt), "--out_dir", str(tmp_path / "o"),
                       "--sim", "duration", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow(seconds=25)
def test_the_scorer_config_reaches_every_generation_process_and_is_recorded(tmp_path, demo_corpus, tiny_ckpt):
    """Two processes score with ``chars_per_second=5`` (the default is 14): every row's SIM is the duration
    reward at 5 characters per second, and the row records the scorers it was scored with."""
    import torch

    from f5rl.rewards.base import RewardBatch
    from f5rl.rewards.providers.simple import DurationReward

    manifest = write_jsonl(demo_rows(demo_corpus, groups=2, nsamples=2), tmp_path / "m.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    flags = ["--processes", "2", "--sim_config", "chars_per_second=5", "--asr_config", "chars_per_second=20"]
    argv = _run_generate(manifest, tiny_ckpt, tmp_path / "gen", flags)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(p.read_text()) for p in sorted((tmp_path / "gen").glob("*.json"))]
    assert len(rows) == 4
    five, fourteen = DurationReward(chars_per_second=5), DurationReward()
    for row in rows:
        assert row["scorers"] == {"asr": {"name": "duration", "config": {"chars_per_second": 20}},
                                  "sim": {"name": "duration", "config": {"chars_per_second": 5}}}
        audio, sr = sf.read(tmp_path / "gen" / row["audio_path"], dtype="float32")
        batch = RewardBatch([torch.from_numpy(audio)], [row["text"]], sample_rate=sr)
        assert row["sim"] == pytest.approx(float(five(batch).scores[0]), abs=1e-5)
        assert row["sim"] != pytest.approx(float(fourteen(batch).scores[0]), abs=1e-3)


def test_iterate_checks_the_scorer_configs_and_passes_them_to_every_generation(tmp_path, monkeypatch, capsys):
    from f5rl.prefs import iterate

    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "text": "hello there", "context_audio": "x.wav",
                                    "context_text": "hi"}) + "\n")
    with pytest.raises(SystemExit) as exit_:
        iterate.main(["--manifest", str(manifest), "--init_ckpt", str(ckpt), "--work_dir", str(tmp_path / "w"),
                      "--group_size", "4", "--asr_config", "window_s=0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "--asr_config: window_s=0.5" in err[0], err

    seen = []

    def fake_generate(manifest, ckpt, out_dir, **kw):
        seen.append((kw["asr"], kw["asr_config"], kw["sim"], kw["sim_config"]))
        raise RuntimeError("stop here")

    monkeypatch.setattr("f5rl.prefs.generate.generate", fake_generate)
    with pytest.raises(RuntimeError, match="stop here"):
        iterate.main(["--manifest", str(manifest), "--init_ckpt", str(ckpt), "--work_dir", str(tmp_path / "w"),
                      "--group_size", "4", "--asr_config", "window_s=10", "model=embedded:tiny.en",
                      "--sim", "duration", "--sim_config", "chars_per_second=4"])
    assert seen == [("whisper_asr", {"window_s": 10, "model": "embedded:tiny.en"}, "duration",
                     {"chars_per_second": 4})]


@pytest.mark.slow(seconds=15)
def test_a_folder_is_resumed_only_with_the_scorers_that_scored_it(tmp_path, demo_corpus, tiny_ckpt, capsys):
    """Pairs compare a group's samples by their scores: a run that would add rows scored another way to a folder
    is refused in one line before any model loads; the same scorers resume it."""
    from f5rl.prefs import generate

    manifest = write_jsonl(demo_rows(demo_corpus, groups=1, nsamples=2), tmp_path / "m.jsonl")
    argv = ["--manifest", str(manifest), "--ckpt", str(tiny_ckpt), "--out_dir", str(tmp_path / "gen"), "--nfe", "2",
            "--asr", "duration", "--sim", "duration", "--no_progress"]
    generate.main([*argv, "--sim_config", "chars_per_second=5"])
    first = (tmp_path / "gen").glob("*.json")
    kept = {p.name: p.read_text() for p in first}
    (tmp_path / "gen" / sorted(kept)[0]).unlink()  # one row to do again
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        generate.main([*argv, "--sim_config", "chars_per_second=6"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert "holds rows scored by" in err[0] and "'chars_per_second': 5" in err[0] and "another --out_dir" in err[0]
    assert len(list((tmp_path / "gen").glob("*.json"))) == 1  # nothing written
    generate.main([*argv, "--sim_config", "chars_per_second=5.0"])  # the same value, written otherwise
    assert "| 2 | 0 | 1 | 2 |" in capsys.readouterr().out
    assert {p.name: p.read_text() for p in (tmp_path / "gen").glob("*.json")}.keys() == kept.keys()

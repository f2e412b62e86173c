"""``prefs.generate --processes N`` and ``prefs.iterate --gen_processes N``: the rows shared among N
processes started by the command itself, with the same files as one process."""

import json
import os
import subprocess

import pytest

from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
from tests.prefs.test_pipeline import _digest, _run_generate


def _run(argv, threads: int, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow(seconds=25)
def test_two_generation_processes_write_the_files_of_one(tmp_path, demo_corpus, tiny_ckpt):
    rows = demo_rows(demo_corpus, groups=4, nsamples=3)
    rows += [dict(rows[0], id="text_ctx", group="t", context_type="text")]  # skipped by F5 generation
    manifest = write_jsonl(rows, tmp_path / "m.jsonl")
    one = _run(_run_generate(manifest, tiny_ckpt, tmp_path / "one"), threads=1)
    assert one.returncode == 0, one.stderr
    # two threads shared by two processes: one thread each, as the single process had
    two = _run(_run_generate(manifest, tiny_ckpt, tmp_path / "two", ["--processes", "2", "--desc", "gen"]), threads=2)
    assert two.returncode == 0, two.stderr
    assert "gen [1/2]" in two.stderr and "gen [2/2]" in two.stderr  # both shards ran, each with its own bar
    assert "| 13 | 1 | 12 | 12 |" in two.stdout, two.stdout  # 13 rows, 1 skipped, 12 generated now, 12 done
    a, b = _digest(tmp_path / "one"), _digest(tmp_path / "two")
    assert len(a) == 36 and a == b  # same rows, seeds, audio and mels, byte for byte
    assert not list((tmp_path / "two").glob(".*"))

    again = _run(_run_generate(manifest, tiny_ckpt, tmp_path / "two", ["--processes", "2"]), threads=2)
    assert again.returncode == 0 and "| 13 | 1 | 0 | 12 |" in again.stdout  # all done: nothing started


@pytest.mark.slow(seconds=7)
def test_a_failed_generation_process_stops_the_command_with_one_line(tmp_path, demo_corpus):
    manifest = write_jsonl(demo_rows(demo_corpus, groups=2, nsamples=2), tmp_path / "m.jsonl")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    r = _run(_run_generate(manifest, broken, tmp_path / "gen", ["--processes", "2"]), threads=2, timeout=300)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and last.startswith("generate: error: generation process "), r.stderr
    assert "exited with status 2" in last and "run again to resume" in last
    assert "generate: error: no config.yaml beside" in r.stderr  # the process's own line comes first
    assert not list((tmp_path / "gen").glob("*.json"))


@pytest.mark.parametrize("flags, message", [
    (["--processes", "0"], "--processes 0: must be >= 1"),
    (["--asr", "whisper_asrr"], "unknown reward provider 'whisper_asrr'"),
])
def test_generate_refuses_bad_flags_before_any_model_loads(tmp_path, flags, message):
    from f5rl.prefs import generate

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "text": "hello there", "context_audio": "x.wav",
                                    "context_text": "hi"}) + "\n")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        generate.main(["--manifest", str(manifest), "--ckpt", str(ckpt), "--out_dir", str(tmp_path / "o"), *flags])
    assert exit_.value.code == 2
    assert not (tmp_path / "o").exists()


def test_processes_inside_a_multi_process_launch_are_refused(tmp_path, monkeypatch):
    from f5rl.prefs.generate import run_processes

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="already sharded by WORLD_SIZE"):
        run_processes(2, "m.jsonl", "c.pt", tmp_path, None, 4, 2.0, 0, "duration", "duration", None, (), "g", False)


def test_iterate_checks_gen_processes_and_passes_it_to_generation(tmp_path, monkeypatch):
    """``--gen_processes`` is checked with the other flags and reaches the round's generation (all three of a
    round's generations take the same keywords)."""
    from f5rl.prefs import iterate

    with pytest.raises(SystemExit) as exit_:
        iterate.main(["--manifest", "m.jsonl", "--init_ckpt", "c.pt", "--work_dir", str(tmp_path), "--group_size",
                      "4", "--gen_processes", "0"])
    assert exit_.value.code == 2

    seen = []

    def fake_generate(manifest, ckpt, out_dir, **kw):
        seen.append((out_dir, kw["processes"]))
        raise RuntimeError("stop here")

    monkeypatch.setattr("f5rl.prefs.generate.generate", fake_generate)
    with pytest.raises(RuntimeError, match="stop here"):
        iterate.run_round(0, "m.jsonl", "c.pt", tmp_path, 4, "F5TTS_DPO_tiny", [], gen_processes=3)
    assert seen == [(str(tmp_path / "iter_0" / "generated"), 3)]


def test_each_generation_process_gets_its_shard_threads_and_gpu(monkeypatch):
    from f5rl.prefs.generate import process_env, visible_gpus

    assert process_env(1, 2, 3, []) == {"RANK": "1", "WORLD_SIZE": "2", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    # four processes on the GPUs a launcher made visible (2 and 5): each its own, in turn
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    gpus = visible_gpus()
    assert [process_env(r, 4, 1, gpus)["CUDA_VISIBLE_DEVICES"] for r in range(4)] == ["2", "5", "2", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr("torch.cuda.device_count", lambda: 3)
    assert visible_gpus() == ["0", "1", "2"]

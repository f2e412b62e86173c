import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from f5rl.audio import load_audio
from f5rl.infer.tts import TTS, chunk_text, clip_reference


@pytest.fixture(scope="module")
def ckpt(tiny_ckpt):
    return tiny_ckpt


@pytest.fixture(scope="module")
def prompt(demo_corpus):
    row = json.loads((demo_corpus / "test_eval.jsonl").read_text().splitlines()[0])
    return demo_corpus / row["prompt_wav"], row["prompt_text"]


def test_api_batched_equals_single_and_long_text_is_chunked(ckpt, prompt):
    tts = TTS.from_checkpoint(ckpt)
    ref = load_audio(prompt[0])
    single = tts.synthesize(ref, prompt[1], "Tom will clean the window.", seed=5, nfe=4)
    texts = ["Please open the red door.", "Tom will clean the window."]
    both = tts.synthesize_batch([ref, ref], [prompt[1]] * 2, texts, [9, 5], nfe=4)
    assert torch.allclose(both[1].mel, single.mel, atol=1e-4)
    long = "Anna found the old book today. " * 6
    chunks = chunk_text(long.strip(), 60)
    assert len(chunks) == 6 and all(len(c.encode()) <= 60 for c in chunks)
    out = tts.synthesize_long(ref, prompt[1], long.strip(), seed=1, nfe=4, max_chars=60)
    from f5rl.model.sampling import estimate_duration

    n_prompt = tts.prepare_prompt(ref).shape[0]
    expected = sum(estimate_duration(n_prompt, prompt[1], c) - n_prompt for c in chunks) * 256 / 24000
    expected -= (len(chunks) - 1) * 0.15  # cross-fades overlap the chunks
    got = out.audio.numel() / 24000
    print(f"long text: {len(chunks)} chunks, {got:.2f} s generated vs {expected:.2f} s estimated")
    assert abs(got - expected) / expected < 0.05


def test_compiled_synthesis_equals_eager(ckpt, prompt):
    """TTS.from_checkpoint(compile=True) (synthesize --compile, model.compile) samples what eager does."""
    ref = load_audio(prompt[0])
    eager, compiled = TTS.from_checkpoint(ckpt, precision="no"), TTS.from_checkpoint(ckpt, precision="no",
                                                                                     compile=True)
    assert compiled.model.transformer.config.compile and not eager.model.transformer.config.compile
    for text in ("Tom will clean the window.", "Please open the red door today."):  # two lengths
        a = eager.synthesize(ref, prompt[1], text, seed=5, nfe=4)
        b = compiled.synthesize(ref, prompt[1], text, seed=5, nfe=4)
        torch.testing.assert_close(b.mel, a.mel, atol=1e-4, rtol=1e-4)


def test_best_of_n_returns_the_highest_scoring_candidate(ckpt, prompt):
    from f5rl.infer.best_of_n import best_of_n
    from f5rl.rewards.combine import RewardSet

    tts = TTS.from_checkpoint(ckpt)
    rewards = RewardSet.from_config([{"name": "mel_energy", "config": {"target": -2.0}}])
    ranked = best_of_n(tts, rewards, load_audio(prompt[0]), prompt[1], "Can you fix the car?", n=4, seed=3, nfe=4)
    assert ranked.index == int(ranked.rewards.argmax()) and len(ranked.rewards) == 4
    assert ranked.best.seed == 3 + ranked.index
    assert len(set(ranked.rewards.tolist())) > 1


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "f5rl.infer.synthesize", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_synthesises_and_bad_inputs_get_one_line_errors(ckpt, prompt, tmp_path):
    ok = _cli("--ckpt", ckpt, "--ref_audio", prompt[0], "--ref_text", prompt[1], "--text", "Tom will fix the lamp.",
              "--out", tmp_path / "o.wav", "--nfe", "4")
    assert ok.returncode == 0 and sf.info(str(tmp_path / "o.wav")).samplerate == 24000
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    sf.write(tmp_path / "low.wav", np.zeros(4000, dtype=np.float32), 4000)
    cases = {
        "not found": ["--ref_audio", tmp_path / "none.wav", "--text", "hi"],
        "cannot read": ["--ref_audio", tmp_path / "junk.wav", "--text", "hi"],
        "empty": ["--ref_audio", prompt[0], "--text", "  "],
        "vocabulary": ["--ref_audio", prompt[0], "--text", "costs 5 €"],
        "sample rate": ["--ref_audio", tmp_path / "low.wav", "--text", "hi"],
    }
    for needle, args in cases.items():
        proc = _cli("--ckpt", ckpt, "--ref_text", "x", "--out", tmp_path / "e.wav", *args)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and needle in err[0], (needle, proc.stderr[-500:])
    # a checkpoint of another vocabulary size
    from f5rl.model import DiT, save_released_format
    from tests.conftest import tiny_config

    other = tmp_path / "other"
    other.mkdir()
    save_released_format(DiT(tiny_config(text_num_embeds=7, dim=64, depth=2, heads=2, dim_head=32)).state_dict(),
                         other / "model.safetensors")
    (other / "config.yaml").write_text((ckpt.parent / "config.yaml").read_text())
    proc = _cli("--ckpt", other / "model.safetensors", "--ref_audio", prompt[0], "--ref_text", "x", "--text", "hi",
                "--out", tmp_path / "e.wav")
    assert proc.returncode == 2 and "extend_vocab" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_best_of_n_scores_with_the_reward_configs_given(ckpt, prompt, tmp_path):
    """``--reward_config NAME=JSON`` reaches the reward that ranks the candidates; a config for a reward not in
    --rewards, a key it does not take, or weights of another count are one line before the model loads."""
    text = "Tom will fix the lamp."
    proc = _cli("--ckpt", ckpt, "--ref_audio", prompt[0], "--ref_text", prompt[1], "--text", text, "--out",
                tmp_path / "o.wav", "--nfe", "2", "--best_of", "2", "--rewards", "duration", "--weights", "1",
                "--reward_config", 'duration={"chars_per_second": 5}')
    assert proc.returncode == 0, proc.stderr
    entry = json.loads(proc.stdout.strip().splitlines()[-1])
    for c in entry["candidates"]:  # -|log(seconds / expected)|, expected at 5 characters a second (default 14)
        assert c["reward"] == pytest.approx(-abs(math.log(c["reward/duration/duration"] * 5 / len(text))), abs=1e-4)
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(b"PK")  # loading it would fail with another message
    base = ["--ckpt", truncated, "--ref_audio", prompt[0], "--ref_text", "x", "--text", "hi", "--out",
            tmp_path / "e.wav", "--best_of", "2"]
    for flags, needle in ((["--rewards", "duration", "--weights", "1", "--reward_config", 'resemblyzer_sim={}'],
                           "--reward_config names resemblyzer_sim, which is not in --rewards duration"),
                          (["--rewards", "duration", "--weights", "1", "--reward_config", 'duration={"cps": 5}'],
                           "--reward_config: reward provider 'duration': bad config {'cps': 5}"),
                          (["--rewards", "duration,resemblyzer_sim", "--weights", "3"],
                           "--weights 3: give one weight per --rewards provider (2)")):
        proc = _cli(*base, *flags)
        err = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(err) == 1 and needle in err[0], (flags, proc.stderr[-500:])


def test_clip_reference_cuts_in_silence():
    sr = 24000
    tone = np.sin(2 * np.pi * 200 * np.arange(sr * 5) / sr).astype(np.float32) * 0.5
    audio = torch.from_numpy(np.concatenate([tone, np.zeros(sr // 2, np.float32), tone, tone, tone]))
    clipped = clip_reference(audio, sr, max_seconds=12)
    assert sr * 5 <= clipped.numel() <= sr * 5.5  # cut in the pause, not mid-tone at 12 s


@pytest.mark.slow
def test_evaluate_writes_reports_and_ground_truth_is_sane(ckpt, demo_corpus, tmp_path):
    from f5rl.eval.evaluate import evaluate, read_test_list

    rows = (demo_corpus / "test_eval.jsonl").read_text().splitlines()[:4]
    (demo_corpus / "test_eval4.jsonl").write_text("\n".join(rows) + "\n")
    summary = evaluate([str(ckpt)], str(demo_corpus / "test_eval4.jsonl"), str(tmp_path / "ev"), ground_truth=True,
                       nfe=4, mos=None, names=["tiny"])
    print("evaluation summary:", json.dumps(summary))
    gt, tiny = summary["ground_truth"], summary["tiny"]
    assert gt["cer"] < 0.3 and gt["sim"] > 0.75 and tiny["cer"] > gt["cer"]
    for f in ("summary.json", "report.md", "report.html", "tiny.csv", "ground_truth.csv", "metric_distributions.png",
              "cer_vs_duration.png"):
        assert (tmp_path / "ev" / f).is_file(), f
    assert len(list((tmp_path / "ev" / "tiny").glob("*.wav"))) == 4
    assert len(read_test_list(demo_corpus / "test.lst")) == len((demo_corpus / "test.jsonl").read_text().splitlines())


def test_released_format_checkpoint_with_a_shipped_config(ckpt, prompt, tmp_path):
    """A released-layout safetensors (no config.yaml beside it) + --model_cfg + --vocab."""
    from f5rl.model.checkpoint import dit_state_from, read_weights_file, save_released_format

    save_released_format(dit_state_from(read_weights_file(ckpt)), tmp_path / "model_1.safetensors")
    vocab = ckpt.parent / "config.yaml"
    import yaml

    data_path = yaml.safe_load(vocab.read_text())["datasets"]["path"]
    over = ["--model_cfg", "F5TTS_tiny_demo", "--vocab", f"{data_path}/vocab.txt"]
    proc = _cli("--ckpt", tmp_path / "model_1.safetensors", *over, "--ref_audio", prompt[0], "--ref_text", prompt[1],
                "--text", "Tom will fix the lamp.", "--out", tmp_path / "o.wav", "--nfe", "2")
    # the tiny test checkpoint has a smaller architecture than F5TTS_tiny_demo: a clear mismatch error
    assert proc.returncode == 2 and "model.arch" in proc.stderr


@pytest.mark.slow
def test_evaluate_reports_each_of_several_test_lists(ckpt, demo_corpus, tmp_path):
    """`evaluate --test_list A --test_list B` (the template and the free-text list) reports each list."""
    from f5rl.eval.evaluate import main

    rows = (demo_corpus / "test_eval.jsonl").read_text().splitlines()  # paths relative to the corpus folder
    (demo_corpus / "first.jsonl").write_text("\n".join(rows[:2]) + "\n")
    (demo_corpus / "second.jsonl").write_text("\n".join(rows[2:3]) + "\n")
    main(["--ckpt", str(ckpt), "--name", "tiny", "--test_list", str(demo_corpus / "first.jsonl"), "--test_list",
          str(demo_corpus / "second.jsonl"), "--out_dir", str(tmp_path / "ev"), "--nfe", "2", "--mos", ""])
    for name, n in (("first", 2), ("second", 1)):
        summary = json.loads((tmp_path / "ev" / name / "summary.json").read_text())
        assert summary["tiny"]["n"] == n
    assert (demo_corpus / "test_free_eval.jsonl").is_file()  # the corpus ships the free-text list too


def test_evaluate_scores_with_the_given_provider_configs_and_says_so(demo_corpus, tmp_path, monkeypatch):
    """``--asr_config``/``--sim_config`` reach the providers that score, and the report names them."""
    import f5rl.rewards.registry as registry
    from f5rl.eval.evaluate import main

    built, build = [], registry.build_provider

    def recording_build(name, config=None):
        built.append((name, config))
        return build(name, config)

    monkeypatch.setattr(registry, "build_provider", recording_build)
    rows = (demo_corpus / "test_eval.jsonl").read_text().splitlines()
    (demo_corpus / "two.jsonl").write_text("\n".join(rows[:2]) + "\n")
    main(["--ground_truth", "--test_list", str(demo_corpus / "two.jsonl"), "--out_dir", str(tmp_path / "ev"),
          "--mos", "", "--asr_config", "window_s=10", "beam_size=2", "--sim_config", "cache_size=8"])
    assert ("whisper_asr", {"window_s": 10, "beam_size": 2}) in built
    assert ("resemblyzer_sim", {"cache_size": 8}) in built
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "Scored by ASR `whisper_asr` {'window_s': 10, 'beam_size': 2}, SIM `resemblyzer_sim` {'cache_size': 8}." \
        in report, report
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["ground_truth"]["n"] == 2 and summary["ground_truth"]["cer"] < 0.5  # recordings, really scored


def test_evaluate_synthesises_each_checkpoint_at_its_cfg(tmp_path, monkeypatch):
    """`evaluate --cfg` once is every checkpoint's guidance, once per --ckpt is each one's; any other
    count is one clear line (exit 2) before a model loads."""
    import f5rl.eval.evaluate as ev

    seen, real_report = [], ev.write_report

    def fake_system(name, ckpt, items, out_dir, providers, nfe=16, cfg=2.0, seed=0):
        seen.append((name, cfg))
        return [{"utt": it.utt, **{m: 0.5 for m in ev.METRICS}} for it in items]

    monkeypatch.setattr(ev, "evaluate_system", fake_system)
    monkeypatch.setattr(ev, "plots", lambda results, out: [])
    monkeypatch.setattr(ev, "write_report", lambda summary, figs, out, *_: (out / "report.md").write_text("ok\n"))
    (tmp_path / "p.wav").write_bytes(b"")
    (tmp_path / "list.jsonl").write_text(json.dumps({"utt": "u", "prompt_text": "a", "prompt_wav": "p.wav",
                                                     "target_text": "b"}) + "\n")
    ckpts = []
    for name in ("base", "policy"):
        (tmp_path / name).mkdir()
        ckpts += ["--ckpt", str(tmp_path / name / "model.pt"), "--name", name]
        (tmp_path / name / "model.pt").write_bytes(b"")
    common = [*ckpts, "--test_list", str(tmp_path / "list.jsonl"), "--out_dir", str(tmp_path / "ev"), "--mos", ""]
    ev.main([*common, "--cfg", "2", "--cfg", "1"])
    assert seen == [("base", 2.0), ("policy", 1.0)]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert (summary["base"]["cfg"], summary["policy"]["cfg"]) == (2.0, 1.0)
    real_report(summary, [], tmp_path)
    table = (tmp_path / "report.md").read_text()
    assert "| system | CFG | n |" in table and "| base | 2 | 1 |" in table and "| policy | 1 | 1 |" in table
    seen.clear()
    ev.main([*common, "--cfg", "1.5"])
    assert seen == [("base", 1.5), ("policy", 1.5)]
    seen.clear()
    ev.main(common)
    assert seen == [("base", 2.0), ("policy", 2.0)]
    seen.clear()
    with pytest.raises(SystemExit) as e:
        ev.main([*common, "--cfg", "2", "--cfg", "1", "--cfg", "0"])
    assert e.value.code == 2 and not seen

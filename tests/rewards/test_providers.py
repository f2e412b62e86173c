"""Model-backed providers: real offline models (Whisper tiny.en, resemblyzer, DNSMOS) on demo
corpus audio, and tiny random models in the released layouts of FunASR and WeSpeaker."""

import json
import logging
import math
import os
from collections import defaultdict

import pytest
import torch

from f5rl.audio import GriffinLim, MelSpectrogram, load_audio
from f5rl.rewards import RewardBatch, build_provider
from f5rl.rewards.wespeaker_resnet import WeSpeakerResNet
from tests.conftest import reference_keys, speech_like
from tests.rewards.helpers import write_tiny_sensevoice, write_wespeaker_dir


@pytest.fixture(scope="module")
def corpus_clips(demo_corpus):
    """Up to 4 clips per speaker from the small demo corpus: (audio, text, speaker)."""
    from datasets import load_from_disk

    table = load_from_disk(str(demo_corpus / "raw"))
    rows = [{"audio_path": r["audio_path"], "text": r["text"], "speaker": r["speaker"]} for r in table]
    rows += [json.loads(ln) for ln in (demo_corpus / "test.jsonl").read_text().splitlines()]
    per = defaultdict(list)
    for r in rows:
        if len(per[r["speaker"]]) < 4:
            per[r["speaker"]].append((load_audio(demo_corpus / r["audio_path"]), r["text"], r["speaker"]))
    return [c for clips in per.values() for c in clips]


def test_whisper_asr_on_demo_speech(corpus_clips):
    asr = build_provider("whisper_asr", {"model": "embedded:tiny.en"})
    audio, texts, spk = zip(*corpus_clips)
    out = asr(RewardBatch(list(audio), list(texts)))
    cer = out.components["char_error_rate"]
    per = defaultdict(list)
    for s, c in zip(spk, cer.tolist()):
        per[s].append(c)
    print("whisper tiny.en CER per speaker:", {s: round(sum(v) / len(v), 3) for s, v in per.items()},
          f"mean {cer.mean():.3f}")
    assert cer.mean() < 0.25
    assert torch.allclose(out.scores, 1 - cer)
    wrong = [texts[(i + 1) % len(texts)] for i in range(len(texts))]
    wrong_cer = asr(RewardBatch(list(audio), wrong)).components["char_error_rate"].mean()
    print(f"CER against a wrong sentence: {wrong_cer:.3f}")
    assert wrong_cer > 0.6

    # Griffin-Lim of each clip's own mel keeps the CER close
    mel, gl = MelSpectrogram(), GriffinLim()
    vocoded = [gl(mel(a[None]))[0] for a in audio]
    gl_cer = asr(RewardBatch(vocoded, list(texts))).components["char_error_rate"].mean()
    print(f"CER after Griffin-Lim: {gl_cer:.3f} (original {cer.mean():.3f})")
    assert gl_cer < cer.mean() + 0.1

    # release() drops the model (and with it CTranslate2's threads); the next batch loads it again
    asr.release()
    assert asr.whisper is None
    again = asr(RewardBatch(list(audio[:4]), list(texts[:4])))
    assert asr.whisper is not None and torch.equal(again.scores, out.scores[:4])


def test_whisper_nll_prefers_the_right_text(corpus_clips):
    nll = build_provider("whisper_nll", {})
    audio, texts, _ = zip(*corpus_clips[:6])
    right = nll(RewardBatch(list(audio), list(texts))).components["nll"]
    wrong = nll(RewardBatch(list(audio), [texts[(i + 1) % 6] for i in range(6)])).components["nll"]
    print(f"whisper NLL right {right.mean():.3f} vs wrong {wrong.mean():.3f}")
    assert (right < wrong).all()


def test_resemblyzer_same_speaker_above_different(corpus_clips):
    sim = build_provider("resemblyzer_sim", {})
    audio, texts, spk = zip(*corpus_clips)
    n = len(audio)
    pairs = [(i, j) for i in range(n) for j in range(n) if i < j]
    out = sim(RewardBatch([audio[i] for i, _ in pairs], [texts[i] for i, _ in pairs],
                          ref_audio=[audio[j] for _, j in pairs]))
    same = [c for (i, j), c in zip(pairs, out.scores.tolist()) if spk[i] == spk[j]]
    diff = [c for (i, j), c in zip(pairs, out.scores.tolist()) if spk[i] != spk[j]]
    print(f"resemblyzer cosine: same speaker {sum(same) / len(same):.3f}, different {sum(diff) / len(diff):.3f}")
    assert sum(same) / len(same) > sum(diff) / len(diff) + 0.1
    # Griffin-Lim keeps the voice
    mel, gl = MelSpectrogram(), GriffinLim()
    vocoded = [gl(mel(a[None]))[0] for a in audio[:4]]
    keep = sim(RewardBatch(vocoded, list(texts[:4]), ref_audio=list(audio[:4]))).scores
    print(f"cosine of Griffin-Lim output to its original: {keep.mean():.3f}")
    assert keep.mean() > 0.8
    with pytest.raises(ValueError, match="ref_audio"):
        sim.compute(RewardBatch([audio[0]], [texts[0]]))


def test_dnsmos_scores_speech_above_noise(corpus_clips):
    mos = build_provider("dnsmos", {})
    noise = torch.randn(48000) * 0.3
    out = mos(RewardBatch([corpus_clips[0][0], noise, torch.zeros(1000)], ["a", "b", "c"]))
    print("DNSMOS ovrl speech / noise:", out.components["ovrl"][:2].tolist())
    assert out.scores[0] > out.scores[1] and math.isnan(out.scores[2].item())


def test_funasr_tiny_sensevoice_local_dir_scores_a_batch(tmp_path):
    pytest.importorskip("funasr", reason="funasr extra not installed")
    model_dir = write_tiny_sensevoice(tmp_path / "SenseVoiceTiny")
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    p = build_provider("funasr_wer", {"model_id": str(model_dir), "wer_mode": "word"})
    p.ensure_setup("cpu")
    assert torch.equal(torch.rand(3), before)  # model loading did not reseed training RNG
    audio = [torch.from_numpy(speech_like(1.0, seed=i)) for i in range(3)]
    out = p(RewardBatch(audio, ["hello world", "a cat", "the dog"]))
    again = p(RewardBatch(audio, ["hello world", "a cat", "the dog"]))
    assert out.scores.shape == (3,) and torch.isfinite(out.scores).all()
    assert set(out.components) == {"word_error_rate", "accuracy"}
    assert torch.equal(out.scores, again.scores)  # no dither: deterministic
    assert len(p.last_transcripts) == 3


def test_funasr_missing_model_fails_fast_naming_fetch_script(tmp_path, monkeypatch):
    pytest.importorskip("funasr", reason="funasr extra not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    p = build_provider("funasr_wer", {"model_id": "iic/SenseVoiceSmall"})
    with pytest.raises(RuntimeError, match="fetch_reward_asr_model"):
        p.ensure_setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="fetch_reward_asr_model"):
        build_provider("funasr_wer", {"model_id": str(tmp_path / "empty")}).ensure_setup()


def test_wespeaker_network_names_equal_release():
    ref = reference_keys("wespeaker_resnet34_keys.tsv")
    model = WeSpeakerResNet([3, 4, 6, 3], feat_dim=80, embed_dim=256)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == ref


def test_wespeaker_model_dir_loads_and_scores(tmp_path, caplog):
    pytest.importorskip("kaldi_native_fbank", reason="wespeaker extra not installed")
    write_wespeaker_dir(tmp_path / "cnceleb_resnet34", reference_keys("wespeaker_resnet34_keys.tsv"))
    p = build_provider("wespeaker_sim", {"model_dir": str(tmp_path / "cnceleb_resnet34")})
    with caplog.at_level(logging.INFO):
        p.ensure_setup()
    assert "projection.weight" in caplog.text
    a, b = torch.from_numpy(speech_like(1.2, seed=1)), torch.from_numpy(speech_like(0.9, seed=2))
    out = p(RewardBatch([a, b, a], ["x", "y", "z"], ref_audio=[a, a, b]))
    assert out.scores[0].item() == pytest.approx(1.0, abs=1e-5)  # identical clip
    assert torch.isfinite(out.scores).all() and out.scores[1] == pytest.approx(out.scores[2].item(), abs=1e-5)
    with pytest.raises(ValueError, match="model_dir"):
        build_provider("wespeaker_sim", {})


def test_whisper_window_s_shortens_the_encoder_window_but_never_cuts_audio(corpus_clips):
    """``window_s=10``: features of short clips span 10 s (1000 frames) instead of Whisper's 30 s, a
    clip longer than the window widens it, and the transcripts still score the demo speech."""
    import numpy as np

    asr = build_provider("whisper_asr", {"window_s": 10.0})
    audio, texts, _ = zip(*corpus_clips)
    out = asr(RewardBatch(list(audio), list(texts)))
    assert out.components["char_error_rate"].mean() < 0.25
    clips = [np.zeros(16000 * 3, np.float32), np.zeros(16000 * 2, np.float32)]
    assert asr.whisper.features(clips)[0].shape[-1] == 1000
    long = [np.zeros(16000 * 12, np.float32), *clips]  # 12 s > 10 s: the batch's window is the longest clip
    assert asr.whisper.features(long)[0].shape[-1] == 1202
    default = build_provider("whisper_nll", {})
    default.setup()
    assert default.whisper.features(clips)[0].shape[-1] == 3000  # Whisper's own 30 s window
    for bad in (0.5, 31.0, "ten"):
        with pytest.raises(ValueError, match="window_s"):
            build_provider("whisper_nll", {"window_s": bad})


def test_importing_funasr_leaves_hydra_full_error_as_it_was(monkeypatch):
    """funasr's ``__init__`` sets ``HYDRA_FULL_ERROR=1``; through the provider the environment is kept, so later
    commands still answer bad input with one line."""
    import sys

    pytest.importorskip("funasr", reason="funasr extra not installed")
    from f5rl.rewards.providers.funasr_asr import import_funasr

    monkeypatch.delitem(sys.modules, "funasr")  # its __init__ runs again
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    import_funasr()
    assert "HYDRA_FULL_ERROR" not in os.environ
    monkeypatch.delitem(sys.modules, "funasr")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # a user's own setting is kept too
    import_funasr()
    assert os.environ["HYDRA_FULL_ERROR"] == "0"

import numpy as np
import pytest
import soundfile as sf
import torch

from f5rl.audio import load_audio, resample, save_audio


def _dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


def test_load_stereo_44k_resamples_to_24k_mono(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a.flac", np.stack([tone, tone], axis=1), sr)
    audio = load_audio(tmp_path / "a.flac")
    assert audio.ndim == 1 and abs(audio.shape[0] - 24000) <= 1
    assert abs(_dominant_freq(audio.numpy(), 24000) - 440) < 2


def test_resample_batched_equals_single():
    x = np.random.default_rng(0).standard_normal((2, 16000)).astype(np.float32)
    both = resample(x, 16000)
    assert both.shape == (2, 24000)
    assert np.allclose(both[1], resample(x[1], 16000), atol=1e-6)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="cannot read"):
        load_audio(tmp_path / "bad.wav")


def test_save_audio_is_atomic_and_readable(tmp_path):
    out = save_audio(tmp_path / "sub" / "x.wav", torch.linspace(-0.5, 0.5, 2400))
    data, sr = sf.read(out)
    assert sr == 24000 and data.shape == (2400,)
    assert [p.name for p in out.parent.iterdir()] == ["x.wav"]  # no temp file left behind

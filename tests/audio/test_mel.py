import numpy as np
import pytest
import torch

from f5rl.audio import GriffinLim, MelConfig, MelSpectrogram, mel_filterbank, spectral_convergence
from tests.conftest import speech_like

librosa = pytest.importorskip("librosa", reason="librosa is the independent reference (dev extra)")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vocos_mel_matches_librosa_htk(dtype):
    y = speech_like(2.0).astype(dtype)
    ours = MelSpectrogram()(torch.from_numpy(y)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=y.astype(np.float64), sr=24000, n_fft=1024, hop_length=256, win_length=1024, center=True, pad_mode="reflect",
        power=1.0, n_mels=100, htk=True, norm=None, dtype=np.float64,
    )
    ref = np.log(np.clip(ref, 1e-5, None))
    assert ours.shape == ref.shape == (100, 1 + len(y) // 256)
    err = np.abs(ours - ref).max()
    print(f"vocos mel vs librosa ({np.dtype(dtype).name}): max |Δ log-mel| = {err:.2e}")
    if dtype == np.float64:  # exact to rounding
        assert err <= 1e-8
        return
    # float32 FFT rounding is absolute, relative to the frame's loudest bin (~1e-7 of it), so in the log
    # domain it is largest in bins far below their frame's peak (seen: 1.5e-4 at 85 dB below it)
    lin, ref_lin = np.exp(ours), np.exp(ref)
    peak = ref_lin.max(axis=0, keepdims=True)
    assert (np.abs(lin - ref_lin) / peak).max() <= 1e-6
    loud = ref_lin >= 1e-3 * peak  # within 60 dB of the frame's peak
    assert np.abs(ours - ref)[loud].max() <= 1e-4


def test_bigvgan_mel_matches_librosa_slaney():
    y = speech_like(1.0, seed=3).astype(np.float64)
    ours = MelSpectrogram(MelConfig(mel_type="bigvgan"))(torch.from_numpy(y)[None])[0].numpy()
    basis = librosa.filters.mel(sr=24000, n_fft=1024, n_mels=100, dtype=np.float64)  # slaney scale + norm
    pad = (1024 - 256) // 2
    yp = np.pad(y, (pad, pad), mode="reflect")
    spec = librosa.stft(yp, n_fft=1024, hop_length=256, win_length=1024, center=False)
    ref = np.log(np.clip(basis @ np.sqrt(np.abs(spec) ** 2 + 1e-9), 1e-5, None))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-8


def test_filterbank_shapes_and_unknown_norm():
    fb = mel_filterbank(24000, 1024, 100)
    assert fb.shape == (100, 513)
    assert (fb >= 0).all() and (fb.sum(dim=1) > 0).all()  # no empty filter at 100 bins
    with pytest.raises(ValueError, match="norm"):
        mel_filterbank(24000, 1024, 100, norm="l2")
    with pytest.raises(ValueError, match="mel_spec_type"):
        MelConfig(mel_type="hifigan")


def test_mel_is_batched_and_rejects_bad_shape():
    y = torch.from_numpy(np.stack([speech_like(1.0, seed=1), speech_like(1.0, seed=2)]))
    mel = MelSpectrogram()
    both = mel(y)
    assert torch.allclose(both[1], mel(y[1:])[0], atol=1e-5)
    with pytest.raises(ValueError, match="batch, samples"):
        mel(y[None])


def test_griffin_lim_round_trip_spectral_convergence():
    y = torch.from_numpy(speech_like(2.0, seed=4))[None]
    mel_fn = MelSpectrogram()
    log_mel = mel_fn(y)
    gl = GriffinLim()
    audio = gl(log_mel)
    assert audio.shape == (1, (log_mel.shape[-1] - 1) * 256)
    target = mel_fn.magnitude(y)[..., : log_mel.shape[-1]]
    est = mel_fn.magnitude(audio)
    sc = float(spectral_convergence(target, est)[0])
    mel_err = float((mel_fn(audio) - log_mel).abs().mean())
    print(f"Griffin-Lim: spectral convergence {sc:.3f}, mean |Δ log-mel| {mel_err:.3f}")
    assert sc < 0.3
    assert mel_err < 0.2
    # more iterations should not be worse
    from f5rl.audio import GriffinLimConfig
    few = GriffinLim(config=GriffinLimConfig(n_iter=2))(log_mel)
    sc_few = float(spectral_convergence(target, mel_fn.magnitude(few))[0])
    assert sc <= sc_few

import pytest
import torch
import yaml

from f5rl.audio.vocos import Vocos
from tests.conftest import reference_keys


def test_vocos_parameter_names_equal_release():
    ref = reference_keys("vocos_mel_24khz_keys.tsv")
    ours = {k: tuple(v.shape) for k, v in Vocos().state_dict().items()}
    assert ours == ref


def _write_release(folder, model):
    cfg = {
        "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures"},
        "backbone": {"class_path": "vocos.models.VocosBackbone",
                     "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8}},
        "head": {"class_path": "vocos.heads.ISTFTHead",
                 "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "center"}},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    state = dict(model.state_dict())
    state["feature_extractor.mel_spec.spectrogram.window"] = torch.hann_window(1024)  # ignored on load
    torch.save(state, folder / "pytorch_model.bin")


def test_vocos_loads_local_release_dir_and_decodes(tmp_path):
    torch.manual_seed(0)
    src = Vocos()
    _write_release(tmp_path, src)
    loaded = Vocos.from_pretrained(tmp_path)
    mel = torch.randn(2, 100, 40) - 4
    audio = loaded(mel)
    assert audio.shape == (2, 39 * 256)
    assert torch.allclose(audio, src(mel))
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1


def test_vocos_missing_files_and_offline_hub_fail_fast(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        Vocos.from_pretrained(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match="Offline"):
        Vocos.from_pretrained("hf://charactr/vocos-mel-24khz")

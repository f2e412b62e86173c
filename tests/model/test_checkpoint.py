import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from f5rl.model import DiT, DiTConfig, load_dit_checkpoint, save_released_format
from f5rl.model.checkpoint import atomic_save, dit_state_from
from tests.conftest import reference_keys, tiny_config


def _random_release(path, ref: dict[str, tuple[int, ...]]) -> dict:
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for key, shape in ref.items():
        if key == "initted":
            tensors[key] = torch.tensor([True])
        elif key == "step":
            tensors[key] = torch.tensor([1250000])
        else:
            tensors[key] = torch.randn(shape, generator=gen) * 0.02
    save_file(tensors, str(path))
    return tensors


@pytest.mark.slow
def test_released_v1_base_format_loads_strictly_and_round_trips(tmp_path):
    """A full-size file with every released key (random values) loads strictly into F5TTS_v1_Base."""
    ref = reference_keys("f5tts_v1_base_keys.tsv")
    tensors = _random_release(tmp_path / "model_1250000.safetensors", ref)
    model = DiT(DiTConfig(text_num_embeds=2545, use_rl_head=True))
    initialised = load_dit_checkpoint(model, tmp_path / "model_1250000.safetensors")
    assert initialised == ["proj_out_ln_sig.bias", "proj_out_ln_sig.weight"]  # only the RL head
    key = "transformer_blocks.21.ff.ff.2.weight"
    assert torch.equal(model.state_dict()[key], tensors[f"ema_model.transformer.{key}"])
    del tensors
    # round trip: save in the released layout and read back identical tensors and key set
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("proj_out_ln_sig")}
    save_released_format(state, tmp_path / "again.safetensors", step=1250000)
    again = load_file(str(tmp_path / "again.safetensors"))
    assert set(again) == set(ref)
    assert torch.equal(again[f"ema_model.transformer.{key}"], model.state_dict()[key])


def test_tiny_release_round_trip_and_pt_training_checkpoint(tmp_path, caplog):
    torch.manual_seed(0)
    src = DiT(tiny_config())
    save_released_format(src.state_dict(), tmp_path / "pretrained_tiny.safetensors", step=7)
    raw = load_file(str(tmp_path / "pretrained_tiny.safetensors"))
    assert raw["step"].item() == 7 and raw["initted"].item() is True
    dst = DiT(tiny_config(use_rl_head=True, ln_sig_init=0.3))
    with caplog.at_level(logging.WARNING):
        load_dit_checkpoint(dst, tmp_path / "pretrained_tiny.safetensors")
    assert "proj_out_ln_sig" in caplog.text
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)
    assert torch.allclose(dst.proj_out_ln_sig.bias, torch.tensor(0.3).log().expand(100))

    # .pt training checkpoint: EMA preferred, model weights on request
    model_sd = {f"transformer.{k}": v + 1 for k, v in src.state_dict().items()}
    ema_sd = {f"ema_model.transformer.{k}": v for k, v in src.state_dict().items()}
    ema_sd.update(initted=torch.tensor([True]), step=torch.tensor([3]))
    atomic_save({"model_state_dict": model_sd, "ema_model_state_dict": ema_sd, "update": 3}, tmp_path / "model_3.pt")
    m1, m2 = DiT(tiny_config()), DiT(tiny_config())
    load_dit_checkpoint(m1, tmp_path / "model_3.pt")
    load_dit_checkpoint(m2, tmp_path / "model_3.pt", use_ema=False)
    assert torch.equal(m1.proj_out.weight, src.proj_out.weight)
    assert torch.equal(m2.proj_out.weight, src.proj_out.weight + 1)


def test_vocab_mismatch_points_to_vocab_extension(tmp_path):
    save_released_format(DiT(tiny_config(text_num_embeds=40)).state_dict(), tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="extend_vocab"):
        load_dit_checkpoint(DiT(tiny_config(text_num_embeds=30)), tmp_path / "m.safetensors")


def test_architecture_mismatch_is_a_clear_strict_error(tmp_path):
    save_released_format(DiT(tiny_config(depth=3)).state_dict(), tmp_path / "m.safetensors")
    with pytest.raises(KeyError, match="unexpected.*transformer_blocks.2"):
        load_dit_checkpoint(DiT(tiny_config(depth=2)), tmp_path / "m.safetensors")
    with pytest.raises(FileNotFoundError):
        load_dit_checkpoint(DiT(tiny_config()), tmp_path / "nope.pt")


def test_dit_state_from_strips_prefixes_and_ema_buffers():
    raw = {"initted": torch.tensor([True]), "step": torch.tensor([1]),
           "ema_model.transformer.proj_out.bias": torch.zeros(2), "ema_model.mel_spec.dummy": torch.zeros(1)}
    assert list(dit_state_from(raw)) == ["proj_out.bias"]


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "model_last.pt"
    atomic_save({"update": 1}, target)

    def boom(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"update": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"update": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_last.pt"]

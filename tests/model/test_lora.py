import pytest
import torch

from f5rl.model import DiT
from f5rl.model.lora import BaseModelView, LoRALinear, adapters_disabled, apply_lora, merge_lora_state
from tests.conftest import tiny_config


def _inputs():
    torch.manual_seed(2)
    return torch.randn(2, 12, 100), torch.randn(2, 12, 100), torch.randint(0, 30, (2, 5)), torch.rand(2)


def test_lora_keeps_base_names_and_starts_at_the_base_model():
    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True))
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    x, c, t, time = _inputs()
    model.eval()
    ref = model(x, c, t, time).mu
    n = apply_lora(model, rank=4, alpha=8)
    assert n == 2 * 6 and all(isinstance(m, LoRALinear) for m in [model.transformer_blocks[0].attn.to_q])
    state = model.state_dict()
    assert set(base_state) <= set(state)  # base weights keep their F5 names
    assert all(torch.equal(state[k], v) for k, v in base_state.items())
    assert torch.allclose(model(x, c, t, time).mu, ref)  # B = 0 at start
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("proj_out_ln_sig") for n in trainable)


def test_disabled_adapters_equal_base_and_merge_equals_adapted():
    torch.manual_seed(0)
    plain = DiT(tiny_config(use_rl_head=True)).eval()
    model = DiT(tiny_config(use_rl_head=True)).eval()
    model.load_state_dict(plain.state_dict())
    apply_lora(model, rank=4, alpha=8)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    x, c, t, time = _inputs()
    adapted = model(x, c, t, time).mu
    with adapters_disabled(model):
        assert torch.allclose(model(x, c, t, time).mu, plain(x, c, t, time).mu, atol=1e-6)
    assert torch.allclose(BaseModelView(model)(x, c, t, time).mu, plain(x, c, t, time).mu, atol=1e-6)
    assert not torch.allclose(adapted, plain(x, c, t, time).mu)
    merged = DiT(tiny_config(use_rl_head=True)).eval()
    merged.load_state_dict(merge_lora_state(model.state_dict()), strict=True)
    assert torch.allclose(merged(x, c, t, time).mu, adapted, atol=1e-5)


def test_all_linear_wraps_every_linear_layer_but_the_output_projections():
    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig
    from f5rl.model.dit import DiT
    from f5rl.model.lora import LoRALinear, apply_lora
    from tests.conftest import tiny_config

    cfg = validate(compose("F5TTS_RL_tiny", ["model.lora.enabled=true", "model.lora.targets=all-linear"]),
                   RLTrainConfig)
    assert cfg.model.lora.targets == ["all-linear"]
    with pytest.raises(ValueError, match="list of layer names or all-linear"):
        validate(compose("F5TTS_RL_tiny", ["model.lora.targets=attn"]), RLTrainConfig)
    m = DiT(tiny_config(use_rl_head=True))
    linear = [n for n, x in m.named_modules() if isinstance(x, torch.nn.Linear)]
    assert apply_lora(m, targets=tuple(cfg.model.lora.targets)) == len(linear) - 2
    wrapped = {n for n, x in m.named_modules() if isinstance(x, LoRALinear)}
    assert "proj_out" not in wrapped and "proj_out_ln_sig" not in wrapped and any("time_embed" in n for n in wrapped)

import pytest
import torch

from f5rl.model import CFM, CFMConfig, DiT
from tests.conftest import randomise_grn, speech_like, tiny_config


def _prompt(b=2, n=20):
    torch.manual_seed(3)
    cond = torch.randn(b, n, 100)
    text = torch.randint(0, 30, (b, 12))
    text[1, 8:] = -1
    return cond, text


@pytest.mark.parametrize("from_dist", [False, True])
@pytest.mark.parametrize("cfg", [0.0, 2.0])
def test_batched_sampling_equals_single_with_same_seeds(tiny_cfm, from_dist, cfg):
    randomise_grn(tiny_cfm)
    cond, text = _prompt()
    kw = dict(steps=6, cfg_strength=cfg, sample_from_dist=from_dist)
    both = tiny_cfm.sample(cond, text, torch.tensor([40, 31]), seed=[11, 12], **kw)
    one = tiny_cfm.sample(cond[1:], text[1:, :8], torch.tensor([31]), seed=[12], **kw)
    zero = tiny_cfm.sample(cond[:1], text[:1], torch.tensor([40]), seed=[11], **kw)
    assert both.mel.shape == (2, 40, 100)
    assert torch.allclose(both.mel[1, :31], one.mel[0], atol=1e-5)
    assert torch.allclose(both.mel[0], zero.mel[0], atol=1e-5)
    assert torch.equal(both.mel[1, 31:], torch.zeros(9, 100))  # past the duration


def test_prompt_region_is_kept_bit_exactly(tiny_cfm):
    cond, text = _prompt()
    out = tiny_cfm.sample(cond, text, 50, lens=torch.tensor([20, 13]), steps=4, seed=0)
    assert torch.equal(out.mel[0, :20], cond[0])
    assert torch.equal(out.mel[1, :13], cond[1, :13])
    assert not torch.equal(out.mel[1, 13:20], cond[1, 13:20])  # beyond lens it is generated
    assert out.generated(1).shape == (50 - 13, 100)


def test_duration_at_least_prompt_and_text_plus_one(tiny_cfm):
    cond, text = _prompt()
    out = tiny_cfm.sample(cond, text, 5, steps=2, seed=0)
    assert out.durations.tolist() == [21, 21]


def test_seeds_change_and_reproduce(tiny_cfm):
    cond, text = _prompt()
    a = tiny_cfm.sample(cond, text, 30, steps=3, seed=1).mel
    b = tiny_cfm.sample(cond, text, 30, steps=3, seed=1).mel
    c = tiny_cfm.sample(cond, text, 30, steps=3, seed=2).mel
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bf16_sampling_close_to_fp32(tiny_cfm):
    cond, text = _prompt()
    a = tiny_cfm.sample(cond, text, 30, steps=4, seed=1).mel
    b = tiny_cfm.sample(cond, text, 30, steps=4, seed=1, precision="bf16").mel
    assert b.dtype == torch.float32 and torch.isfinite(b).all()
    assert (a - b).abs().mean() < 0.05


def test_trajectory_and_train_mode_restored(tiny_cfm):
    tiny_cfm.train()
    cond, text = _prompt()
    out = tiny_cfm.sample(cond, text, 30, steps=4, seed=1, return_trajectory=True)
    assert out.trajectory.shape == (5, 2, 30, 100)
    assert tiny_cfm.training


def test_training_losses_and_validation():
    torch.manual_seed(0)
    mel = torch.randn(2, 30, 100)
    text = torch.randint(0, 30, (2, 8))
    det = CFM(DiT(tiny_config()), CFMConfig(objective="mse"))
    out = det(mel, text, torch.tensor([30, 22]))
    assert out.loss.ndim == 0 and out.span.shape == (2, 30) and not out.span[1, 22:].any()
    assert out.loss.item() == pytest.approx(out.metrics["loss/mse"].item())
    with pytest.raises(ValueError, match="use_rl_head"):
        CFM(DiT(tiny_config()), CFMConfig(objective="gaussian_nll"))
    with pytest.raises(ValueError, match="use_rl_head"):
        det.sample(mel[:, :5], text, 20, sample_from_dist=True)
    with pytest.raises(ValueError, match="objective"):
        CFMConfig(objective="grpo")


def test_nonfinite_gaussian_nll_raises(tiny_cfm):
    with torch.no_grad():
        tiny_cfm.transformer.proj_out_ln_sig.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="learning rate"):
        tiny_cfm(torch.randn(1, 20, 100), torch.randint(0, 30, (1, 5)))


def test_gaussian_nll_objective_trains_sigma(tiny_cfm):
    torch.manual_seed(0)
    mel = torch.randn(2, 30, 100)
    text = torch.randint(0, 30, (2, 8))
    out = tiny_cfm(mel, text)
    out.loss.backward()
    assert tiny_cfm.transformer.proj_out_ln_sig.bias.grad.abs().sum() > 0
    assert {"loss/mse", "loss/nll", "stats/sigma_mean"} <= set(out.metrics)


@pytest.mark.slow
def test_tiny_dit_overfits_one_utterance():
    """CFM loss on one short utterance falls ≥5× within a few hundred CPU steps."""
    from f5rl.audio import MelSpectrogram

    torch.manual_seed(0)
    mel = MelSpectrogram()(torch.from_numpy(speech_like(1.0))[None]).transpose(1, 2)  # (1, n, 100)
    batch = mel.repeat(8, 1, 1)
    text = torch.randint(0, 30, (1, 12)).repeat(8, 1)
    model = CFM(DiT(tiny_config(dim=128, depth=2, heads=4, dim_head=32)))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss = model(batch, text).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    print(f"overfit: mean loss first 20 steps {first:.3f}, last 20 steps {last:.3f} ({first / last:.1f}x)")
    assert first / last >= 5


def test_average_upsampled_sampling_batched_equals_single():
    """The text is spread over each sample's whole duration (prompt + target), also under CFG."""
    torch.manual_seed(0)
    cfm = CFM(DiT(tiny_config(text_embedding_average_upsampling=True)), CFMConfig())
    randomise_grn(cfm)
    cond, text = _prompt()
    both = cfm.sample(cond, text, torch.tensor([40, 31]), seed=[11, 12], steps=4, cfg_strength=2.0)
    one = cfm.sample(cond[1:], text[1:, :8], torch.tensor([31]), seed=[12], steps=4, cfg_strength=2.0)
    assert torch.allclose(both.mel[1, :31], one.mel[0], atol=1e-5)

import pytest
import torch

from f5rl.model import DiT, DiTConfig
from f5rl.model.modules import RotaryEmbedding, apply_rotary, average_upsample
from tests.conftest import reference_keys, tiny_config


def _released_dit_keys() -> dict[str, tuple[int, ...]]:
    ref = reference_keys("f5tts_v1_base_keys.tsv")
    prefix = "ema_model.transformer."
    return {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}


def test_v1_base_state_dict_equals_release_exactly():
    model = DiT(DiTConfig(text_num_embeds=2545))  # F5TTS_v1_Base with the released 2545-token vocab
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == _released_dit_keys()
    assert ours["text_embed.text_embed.weight"] == (2546, 512)


def test_rl_head_adds_exactly_the_documented_keys():
    model = DiT(DiTConfig(text_num_embeds=2545, depth=1, use_rl_head=True, ln_sig_init=0.5))
    assert model.state_dict()["proj_out_ln_sig.weight"].shape == (100, 1024)
    assert torch.all(model.proj_out_ln_sig.weight == 0)
    assert torch.allclose(model.proj_out_ln_sig.bias, torch.full((100,), 0.5).log())


def test_rotary_pairs_by_hand():
    rope = RotaryEmbedding(4)  # inv_freq = [1, 1/100]
    freqs = rope(2)  # position 1: angles [1, 1, 0.01, 0.01] (pairs share a frequency)
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0]])
    out = apply_rotary(x, freqs)
    assert torch.allclose(out[0], x[0])  # position 0 is not rotated
    one, hundredth = torch.tensor(1.0), torch.tensor(0.01)
    expected = torch.stack([one.cos(), one.sin(), hundredth.cos(), hundredth.sin()])
    assert torch.allclose(out[1], expected)


def test_rotary_pair_form_is_bit_identical_to_the_repeated_table_form():
    """apply_rotary on cos/sin per channel pair computes exactly x·cos + rotate_half(x)·sin with the
    tables repeated over each pair (x-transformers' form, what it computed before): same bits."""
    torch.manual_seed(0)
    table = RotaryEmbedding(16)(33)
    angles = torch.outer(torch.arange(33).float(), RotaryEmbedding(16).inv_freq).repeat_interleave(2, dim=-1)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 3, 33, 16).to(dtype)
        xf = x.float()
        half = torch.stack((-xf[..., 1::2], xf[..., 0::2]), dim=-1).flatten(-2)  # (x0, x1) -> (-x1, x0)
        assert torch.equal(apply_rotary(x, table), (xf * angles.cos() + half * angles.sin()).to(dtype))
    flat = torch.randn(2, 33, 48)  # v0: only the first 16 channels rotate, the rest pass through untouched
    assert torch.equal(apply_rotary(flat, table)[..., 16:], flat[..., 16:])


def test_rotary_matches_x_transformers_convention():
    xt = pytest.importorskip("x_transformers.x_transformers", reason="x-transformers (dev extra) is the reference")
    q = torch.randn(2, 3, 9, 16)
    ref_rope = xt.RotaryEmbedding(16)
    freqs, scale = ref_rope.forward_from_seq_len(9)
    assert torch.allclose(xt.apply_rotary_pos_emb(q, freqs, scale), apply_rotary(q, RotaryEmbedding(16)(9)), atol=1e-6)
    # v0 applied RoPE on the flat projection, i.e. to the first head's channels only
    flat = torch.randn(2, 9, 48)
    ours = apply_rotary(flat, RotaryEmbedding(16)(9))
    assert torch.allclose(xt.apply_rotary_pos_emb(flat, freqs, scale), ours, atol=1e-6)


def test_v0_rope_on_first_head_only_equals_flat_rotation():
    torch.manual_seed(0)
    model = DiT(tiny_config(pe_attn_head=1, text_mask_padding=False))
    attn = model.transformer_blocks[0].attn
    x = torch.randn(1, 7, 64)
    rope = model.rotary_embed(7)
    out = attn(x, rope=rope)
    # reference: rotate the first dim_head channels of the flat q/k (the v0 code path)
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    q, k = apply_rotary(q, rope), apply_rotary(k, rope)
    split = lambda t: t.view(1, 7, 4, 16).transpose(1, 2)  # noqa: E731
    ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    ref = attn.to_out[0](ref.transpose(1, 2).reshape(1, 7, 64))
    assert torch.allclose(out, ref, atol=1e-5)


def _inputs(b=2, n=24, t=9):
    torch.manual_seed(1)
    x, cond = torch.randn(b, n, 100), torch.randn(b, n, 100)
    text = torch.randint(0, 30, (b, t))
    text[1, 6:] = -1
    return x, cond, text, torch.rand(b)


def test_cfg_packing_equals_two_forwards(tiny_dit):
    tiny_dit.eval()
    x, cond, text, time = _inputs()
    packed = tiny_dit(x, cond, text, time, cfg_infer=True)
    c = tiny_dit(x, cond, text, time)
    u = tiny_dit(x, cond, text, time, drop_audio_cond=True, drop_text=True)
    assert torch.allclose(packed.mu, torch.cat([c.mu, u.mu]), atol=1e-5)
    assert torch.allclose(packed.ln_sig, torch.cat([c.ln_sig, u.ln_sig]), atol=1e-5)


def test_text_cache_reuses_embedding_and_clears(tiny_dit):
    tiny_dit.eval()
    x, cond, text, time = _inputs()
    plain = tiny_dit(x, cond, text, time, cfg_infer=True).mu
    calls = []
    hook = tiny_dit.text_embed.register_forward_hook(lambda *a: calls.append(1))
    with tiny_dit.cached_text():
        first = tiny_dit(x, cond, text, time, cfg_infer=True).mu
        second = tiny_dit(x, cond, text, time * 0.5, cfg_infer=True).mu
    hook.remove()
    assert len(calls) == 2  # cond + uncond once, not per call
    assert torch.allclose(first, plain, atol=1e-6) and not torch.allclose(second, plain)
    assert tiny_dit._text_cache is None


def test_padding_does_not_change_valid_frames(tiny_dit):
    tiny_dit.eval()
    x, cond, text, time = _inputs(n=30)
    mask = torch.arange(30)[None] < torch.tensor([[30], [21]])
    batched = tiny_dit(x, cond, text, time, mask=mask).mu
    single = tiny_dit(x[1:, :21], cond[1:, :21], text[1:, :6], time[1:]).mu
    assert torch.allclose(batched[1, :21], single[0], atol=1e-5)


def test_activation_checkpointing_gives_same_loss_and_grads():
    torch.manual_seed(0)
    a = DiT(tiny_config())
    b = DiT(tiny_config(checkpoint_activations=True))
    b.load_state_dict(a.state_dict())
    x, cond, text, time = _inputs()
    for m in (a, b):
        m.train()
        m(x, cond, text, time).mu.square().mean().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6), name


def test_average_upsample_by_hand():
    text = torch.arange(1, 9, dtype=torch.float32).view(1, 8, 1)  # tokens valued 1..8
    valid = torch.tensor([[True, True, True] + [False] * 5])
    out = average_upsample(text, valid, torch.tensor([8]))
    assert out.view(-1).tolist() == [1, 1, 2, 2, 2, 3, 3, 3]  # T=3, L=8 -> 0,0,1,1,1,2,2,2


def test_average_upsample_padding_and_batch_equals_single():
    torch.manual_seed(0)
    text = torch.randn(3, 10, 4)
    valid = torch.arange(10)[None] < torch.tensor([[3], [10], [0]])
    lens = torch.tensor([7, 10, 5])
    out = average_upsample(text, valid, lens)
    assert torch.equal(out[0, 7:], torch.zeros(3, 4))  # frames past the audio are zero
    assert torch.equal(out[1], text[1])  # T == L: identity
    assert torch.equal(out[2], torch.zeros(10, 4))  # no text: zeros
    single = average_upsample(text[:1, :7], valid[:1, :7], lens[:1])
    assert torch.equal(out[0, :7], single[0])
    # L < T: text past the audio is dropped first (valid = text & audio), so tokens 0..L-1 once each
    short = average_upsample(text[1:2], valid[1:2], torch.tensor([4]))
    assert torch.equal(short[0, :4], text[1, :4])


def test_config_validation_messages():
    with pytest.raises(ValueError, match="text_mask_padding"):
        DiTConfig(text_mask_padding=False, text_embedding_average_upsampling=True)
    with pytest.raises(ValueError, match="ln_sig_init"):
        DiTConfig(ln_sig_init=0.0)


def test_average_upsampling_adds_no_parameters_and_reuses_v1_weights():
    torch.manual_seed(0)
    plain = DiT(tiny_config())
    up = DiT(tiny_config(text_embedding_average_upsampling=True))
    assert up.state_dict().keys() == plain.state_dict().keys()
    up.load_state_dict(plain.state_dict(), strict=True)  # a v1 checkpoint loads either way
    text = torch.tensor([[3, 4, 5, -1, -1, -1, -1, -1], [6, 7, 8, 9, 10, 11, -1, -1]])
    lens = torch.tensor([8, 5])
    before = plain.text_embed(text, 8)
    # option off: tokens stay at their positions, padding stays zero (as before the option existed)
    assert torch.equal(before[0, 3:], torch.zeros(5, 32)) and before[0, :3].abs().sum() > 0
    # option on: the same encoder output, spread over each sample's own frames
    after = up.text_embed(text, 8, audio_lens=lens)
    valid = text >= 0
    assert torch.allclose(after, average_upsample(before, valid, lens), atol=1e-6)
    assert torch.equal(after[0, :2], before[0, :1].expand(2, -1))  # T=3, L=8: token 0 on frames 0,1
    assert torch.equal(after[1, 5:], torch.zeros(3, 32))  # past the audio


def test_average_upsampling_padded_batch_equals_single():
    torch.manual_seed(0)
    dit = DiT(tiny_config(text_embedding_average_upsampling=True)).eval()
    x, cond, text, time = _inputs(n=30)
    mask = torch.arange(30)[None] < torch.tensor([[30], [21]])
    batched = dit(x, cond, text, time, mask=mask).mu
    single = dit(x[1:, :21], cond[1:, :21], text[1:, :6], time[1:]).mu
    assert torch.allclose(batched[1, :21], single[0], atol=1e-5)

"""model.compile: the DiT trunk through torch.compile computes what the eager trunk computes."""

import copy

import torch

from f5rl.model import DiT, DiTConfig


def tiny(**kw) -> DiTConfig:
    return DiTConfig(dim=32, depth=2, heads=2, dim_head=16, text_dim=16, conv_layers=1, mel_dim=8,
                     text_num_embeds=10, dropout=0.0, use_rl_head=True, **kw)


def inputs(n: int, b: int = 2):
    g = torch.Generator().manual_seed(n)
    x, cond = torch.randn(b, n, 8, generator=g), torch.randn(b, n, 8, generator=g)
    text = torch.randint(0, 10, (b, 5), generator=g)
    lens = torch.tensor([n, n - 3])[:b]
    return x, cond, text, torch.rand(b, generator=g), torch.arange(n)[None] < lens[:, None]


def test_compiled_trunk_matches_eager_forward_backward_and_per_instance_weights():
    from torch._dynamo.utils import counters

    counters.clear()
    torch.manual_seed(0)
    eager = DiT(tiny())
    compiled = DiT(tiny(compile=True))
    compiled.load_state_dict(eager.state_dict())
    other = copy.deepcopy(compiled)  # a second instance (a reference, an EMA copy) with its own weights
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01 * torch.randn_like(p))
    other_eager = DiT(tiny())
    other_eager.load_state_dict(other.state_dict())
    for n in (12, 17, 23):  # frame counts change from call to call, as in training and sampling
        x, cond, text, time, mask = inputs(n)
        a, b = eager(x, cond, text, time, mask=mask), compiled(x, cond, text, time, mask=mask)
        torch.testing.assert_close(b.mu, a.mu, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(b.ln_sig, a.ln_sig, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(other(x, cond, text, time, mask=mask).mu,
                                   other_eager(x, cond, text, time, mask=mask).mu, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(other(x, cond, text, time, mask=mask).mu, b.mu, atol=1e-3)
    # packed CFG and the gradients of training
    x, cond, text, time, mask = inputs(15, b=1)
    torch.testing.assert_close(compiled(x, cond, text, time, cfg_infer=True).mu,
                               eager(x, cond, text, time, cfg_infer=True).mu, atol=1e-5, rtol=1e-4)
    x, cond, text, time, mask = inputs(19)
    for net in (eager, compiled):
        net.zero_grad()
        out = net(x, cond, text, time, mask=mask)
        (out.mu.square().mean() + out.ln_sig.mean()).backward()
    for (name, pa), pb in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert counters["stats"]["unique_graphs"] >= 1  # it was compiled, not run eagerly after a failure
    assert not counters["graph_break"], dict(counters["graph_break"])  # one graph per call, no Python between

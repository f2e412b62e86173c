import math

import pytest
import torch

from f5rl.rl.sde import sde_step_gaussian


def _velocity(x, t, m, s):
    """Exact flow-matching velocity for data N(m, s²) and x_t = (1−t)ε + t·x₁."""
    v = (1 - t) ** 2 + t**2 * s**2
    e_x1 = m + t * s**2 / v * (x - t * m)
    e_eps = (1 - t) / v * (x - t * m)
    return e_x1 - e_eps


@pytest.mark.parametrize("a", [0.0, 0.7])
def test_sde_keeps_the_ode_marginals(a):
    """Euler–Maruyama with the Flow-GRPO drift lands on the data distribution N(m, s²)."""
    m, s, n_steps = 1.5, 0.5, 400
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g)
    times = torch.linspace(0, 1, n_steps + 1)
    for k in range(n_steps):
        t, dt = times[k], times[k + 1] - times[k]
        v = _velocity(x, t, m, s)
        mu, ln_sig = sde_step_gaussian(v, x, t, dt, a, t_floor=float(times[1]))
        x = x + dt * (mu + torch.exp(ln_sig) * torch.randn(x.shape, generator=g))
    print(f"a={a}: final mean {x.mean():.4f} (target {m}), std {x.std():.4f} (target {s})")
    assert x.mean().item() == pytest.approx(m, abs=0.02)
    assert x.std().item() == pytest.approx(s, abs=0.03)


def test_sde_noise_schedule():
    mu, ln_sig = sde_step_gaussian(torch.zeros(1), torch.zeros(1), torch.tensor(0.5), torch.tensor(0.01), 0.7, 0.1)
    # σ_t = 0.7·sqrt(0.5/0.5) = 0.7 ; velocity std = σ_t / sqrt(dt) = 7
    assert math.exp(ln_sig.item()) == pytest.approx(7.0, rel=1e-5) and mu.item() == 0.0

import math

import pytest
import torch

from f5rl.rl.dpo import implicit_gap, preference_loss, preference_times


def test_dpo_by_hand():
    # e_w improves by 0.4 against the reference, e_l worsens by 0.2: Δ = −½(−0.4 − 0.2) = 0.3
    e_w, e_l, r_w, r_l = torch.tensor([0.6]), torch.tensor([1.2]), torch.tensor([1.0]), torch.tensor([1.0])
    assert implicit_gap(e_w, e_l, r_w, r_l).item() == pytest.approx(0.3)
    out = preference_loss(e_w, e_l, r_w, r_l, beta=2.0)
    assert out.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.6))), rel=1e-6)
    smooth = preference_loss(e_w, e_l, r_w, r_l, beta=2.0, label_smoothing=0.1)
    expected = -0.9 * math.log(1 / (1 + math.exp(-0.6))) - 0.1 * math.log(1 / (1 + math.exp(0.6)))
    assert smooth.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.metrics["dpo/accuracy"].item() == 1.0
    assert out.metrics["dpo/margin"].item() == pytest.approx(-0.5 * 2 * (-0.4) - (-0.5 * 2 * 0.2))


def test_ipo_and_rpo_by_hand():
    e_w, e_l, r_w, r_l = torch.tensor([0.6]), torch.tensor([1.2]), torch.tensor([1.0]), torch.tensor([1.0])
    ipo = preference_loss(e_w, e_l, r_w, r_l, beta=2.0, loss_type="ipo")
    assert ipo.loss.item() == pytest.approx((0.3 - 0.25) ** 2)
    rpo = preference_loss(e_w, e_l, r_w, r_l, beta=2.0, loss_type="rpo", reward_gap=torch.tensor([0.5]), rpo_eta=2.0)
    p = 1 / (1 + math.exp(-1.0))
    expected = -(p * math.log(1 / (1 + math.exp(-0.6))) + (1 - p) * math.log(1 / (1 + math.exp(0.6))))
    assert rpo.loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="reward gap"):
        preference_loss(e_w, e_l, r_w, r_l, beta=2.0, loss_type="rpo")


def test_policy_equal_reference_gives_log2_and_antisymmetric_gradients():
    e_w = torch.tensor([0.7, 0.3], requires_grad=True)
    e_l = torch.tensor([0.9, 0.2], requires_grad=True)
    out = preference_loss(e_w, e_l, e_w.detach(), e_l.detach(), beta=5.0)
    assert out.loss.item() == pytest.approx(math.log(2))
    assert out.metrics["dpo/accuracy"].item() == 0.5  # every pair ties: a tie counts half (chance)
    out.loss.backward()
    assert torch.allclose(e_w.grad, -e_l.grad) and (e_w.grad > 0).all()  # lowering e_w lowers the loss


def test_accuracy_counts_wins_ties_and_losses_by_hand():
    # gaps Δ = -½[(e_w - e_w_ref) - (e_l - e_l_ref)]: +0.05 (win), 0 (tie), -0.05 (loss)
    e_w, e_l = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.2, 0.2, 0.2])
    ref = torch.tensor([0.2, 0.2, 0.2])
    out = preference_loss(e_w, e_l, ref, ref, beta=1.0)
    assert out.metrics["dpo/accuracy"].item() == pytest.approx((1 + 0.5 + 0) / 3)


def test_swapping_chosen_and_rejected_flips_the_margin():
    e_w, e_l, r_w, r_l = torch.tensor([0.6, 1.0]), torch.tensor([1.2, 0.5]), torch.tensor([1.0, 0.8]), torch.ones(2)
    a = preference_loss(e_w, e_l, r_w, r_l, beta=1.0).metrics["dpo/margin"]
    b = preference_loss(e_l, e_w, r_l, r_w, beta=1.0).metrics["dpo/margin"]
    assert a.item() == pytest.approx(-b.item())


def test_preference_times_by_hand():
    u = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.equal(preference_times(u), u)  # Diffusion-DPO: t = u
    torch.testing.assert_close(preference_times(u, (0.0, 0.1)), torch.tensor([0.0, 0.025, 0.05, 0.1]))
    # sway -1: t = 1 - cos(pi u / 2) = 0, 0.0761, 0.2929, 1 on [0, 1]; the window [0.2, 0.6] scales it
    swayed = torch.tensor([0.0, 1 - math.cos(math.pi / 8), 1 - math.cos(math.pi / 4), 1.0])
    torch.testing.assert_close(preference_times(u, (0.0, 1.0), -1.0), swayed)
    torch.testing.assert_close(preference_times(u, (0.2, 0.6), -1.0), 0.2 + 0.4 * swayed)


def test_online_dpo_pair_loss_by_hand():
    """Networks of constant velocity: policy 2, reference 0; x0 = 0, so the targets are the samples themselves.
    chosen x_w = 1, rejected x_l = 3: e_w = (2-1)² = 1, e_l = (2-3)² = 1, ref r_w = 1, r_l = 9;
    Δ = -½[(1-1) - (1-9)] = -4, β = 0.5 → loss -log σ(-2) = log(1 + e²); drift (2-0)² = 4;
    total = log(1 + e²) + 10·1 + 0.5·4."""
    from types import SimpleNamespace

    from f5rl.rollout.evaluate import online_dpo_pair_loss

    class Constant(torch.nn.Module):
        def __init__(self, v: float):
            super().__init__()
            self.v = v

        def forward(self, x, cond, text, t, mask=None):
            return SimpleNamespace(mu=torch.full_like(x, self.v))

    x_w, x_l = torch.ones(1, 2, 1), torch.full((1, 2, 1), 3.0)
    span = torch.ones(1, 2, dtype=torch.bool)
    out = online_dpo_pair_loss(Constant(2.0), Constant(0.0), x_w, x_l, torch.zeros(1, 2, 1), torch.tensor([0.05]),
                               torch.zeros(1, 3, dtype=torch.long), None, span, beta=0.5, loss_type="dpo",
                               reward_gap=torch.tensor([1.0]), sft_weight=10.0, drift_weight=0.5)
    assert float(out.metrics["loss/preference"]) == pytest.approx(math.log(1 + math.e ** 2), rel=1e-6)
    assert float(out.metrics["dpo/chosen_error"]) == pytest.approx(1.0)
    assert float(out.metrics["dpo/rejected_error"]) == pytest.approx(1.0)
    assert float(out.metrics["loss/drift"]) == pytest.approx(4.0)
    assert float(out.loss) == pytest.approx(math.log(1 + math.e ** 2) + 10.0 + 2.0, rel=1e-6)
    assert float(out.metrics["dpo/accuracy"]) == 0.0  # the policy ranks this pair the wrong way (Δ < 0)

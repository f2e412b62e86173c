import pytest
import torch

from f5rl.model import DiT
from f5rl.rollout.evaluate import grpo_step_loss, ode_velocity
from f5rl.rollout.gaussian import gaussian_rollout
from f5rl.rollout.prompts import prompt_lengths
from f5rl.rollout.record import time_points
from tests.conftest import tiny_config


def test_time_points_and_steps_plus_one():
    assert len(time_points(30, False, None)) == 30 and len(time_points(30, True, None)) == 31
    t = time_points(5, False, -1.0)
    assert t[0] == 0 and t[-1] == pytest.approx(1.0) and (t[1:] > t[:-1]).all()
    with pytest.raises(ValueError, match="rl.steps"):
        time_points(1, False, None)


def test_prompt_length_modes():
    lens = torch.tensor([100, 50, 80])
    g = torch.Generator().manual_seed(0)
    mins = prompt_lengths(lens, (0.2, 0.2), "min", g)
    assert mins.tolist() == [10, 10, 10]  # 0.2 of the shortest, the same for all
    rng = prompt_lengths(lens, (0.2, 0.2), "range", g)
    assert rng.tolist() == [20, 10, 16]
    per = prompt_lengths(lens, (0.1, 0.3), "per_sample", g)
    assert ((per >= 5) & (per <= 30)).all()
    assert prompt_lengths(torch.tensor([2]), (0.0, 0.0), "range", g).item() == 1  # at least one prompt frame


def test_rollout_records_and_on_policy_ratio_is_one():
    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True)).eval()
    cond = torch.randn(3, 20, 100)
    text = torch.randint(0, 30, (3, 6))
    lens, prompts = torch.tensor([20, 16, 20]), torch.tensor([4, 4, 4])
    ro = gaussian_rollout(model, cond, text, lens, prompts, steps=5, cfg_strength=2.0)
    assert ro.states.shape == ro.samples.shape == (4, 3, 20, 100) and ro.old_logp.shape == (4, 3)
    assert torch.equal(ro.mel[:, :4], cond[:, :4]) and torch.equal(ro.mel[1, 16:], torch.zeros(4, 100))
    assert ro.target.sum(1).tolist() == [16, 12, 16]
    out = grpo_step_loss(model, None, ro, 2, torch.tensor([1.0, -1.0, 0.5]), torch.ones(3, dtype=torch.bool), 0.2, 0.0)
    assert out.metrics["stats/ratio_mean"].item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="rl.rollout=sde"):
        gaussian_rollout(DiT(tiny_config()), cond, text, lens, prompts, steps=3)


@pytest.mark.parametrize("mode", ["gaussian", "sde"])
def test_a_group_can_share_its_start_noise_and_still_differ(mode):
    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True)).eval()
    cond = torch.randn(1, 20, 100).repeat(4, 1, 1)
    text = torch.randint(0, 30, (1, 6)).repeat(4, 1)
    lens, prompts = torch.full((4,), 20), torch.full((4,), 4)
    ro = gaussian_rollout(model, cond, text, lens, prompts, steps=4, mode=mode, shared_start=2)
    x0 = ro.states[0]
    assert torch.equal(x0[0], x0[1]) and torch.equal(x0[2], x0[3]) and not torch.equal(x0[0], x0[2])
    assert not torch.equal(ro.mel[0], ro.mel[1])  # the sampled velocities still differ
    independent = gaussian_rollout(model, cond, text, lens, prompts, steps=4, mode=mode)
    assert not torch.equal(independent.states[0][0], independent.states[0][1])
    with pytest.raises(ValueError, match="blocks of 3"):
        gaussian_rollout(model, cond, text, lens, prompts, steps=4, mode=mode, shared_start=3)


def test_awm_can_fit_the_guided_velocity_that_sampling_uses():
    """rl.awm_guided: the advantage-weighted error is that of the CFG-combined velocity
    v_c + w·(v_c − v_u) at the rollout's own w, computed here by hand from two plain forwards."""
    from f5rl.rollout.evaluate import awm_step_loss

    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True)).eval()
    with torch.no_grad():  # away from the zero-initialised output layers, so v_c and v_u differ clearly
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    cond = torch.randn(2, 16, 100)
    text = torch.randint(0, 30, (2, 5))
    lens, prompts = torch.tensor([16, 12]), torch.tensor([4, 4])
    ro = gaussian_rollout(model, cond, text, lens, prompts, steps=3, cfg_strength=2.0)
    adv, valid = torch.tensor([1.0, 0.5]), torch.ones(2, dtype=torch.bool)
    t, x0 = torch.tensor([0.05, 0.3]), torch.randn(ro.mel.shape)
    x1, span = ro.mel.float(), ro.target
    xt = (1 - t.view(-1, 1, 1)) * x0 + t.view(-1, 1, 1) * x1
    masked = torch.where(span.unsqueeze(-1), torch.zeros_like(x1), x1)
    with torch.no_grad():
        v_c = model(xt, masked, ro.text, t, mask=ro.mask).mu
        v_u = model(xt, masked, ro.text, t, mask=ro.mask, drop_audio_cond=True, drop_text=True).mu

    def by_hand(v):
        err = ((v - (x1 - x0)).square() * span.unsqueeze(-1)).sum((1, 2)) / (span.sum(1) * 100)
        return (adv * err).mean().item()

    plain = awm_step_loss(model, None, ro, adv, valid, t, x0, 0.0)
    guided = awm_step_loss(model, None, ro, adv, valid, t, x0, 0.0, guidance=2.0)
    assert plain.loss.item() == pytest.approx(by_hand(v_c), rel=1e-4)
    assert guided.loss.item() == pytest.approx(by_hand(v_c + 2.0 * (v_c - v_u)), rel=1e-4)
    assert (v_c - v_u).abs().mean() > 0.1 * v_c.abs().mean()  # the two branches differ at these inputs
    assert guided.loss.item() != pytest.approx(plain.loss.item(), rel=1e-4)
    # the regulariser compares guided velocities too: a policy that is its own reference has no drift
    same = awm_step_loss(model, model, ro, adv, valid, t, x0, 1.0, guidance=2.0)
    assert same.metrics["loss/kl"].item() == pytest.approx(0.0, abs=1e-10)


def test_awm_regulariser_can_also_be_taken_at_its_own_flow_times():
    """rl.awm_drift_time_range: the advantage-weighted error stays at the fit's points (t, x0), and the
    drift to the reference is the squared velocity distance at those points plus that at (drift_time,
    drift_x0), by hand here (the fit's points keep their regulariser: without it the fit is unheld there)."""
    from f5rl.rollout.evaluate import awm_step_loss, flow_velocity, span_mse

    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True)).eval()
    ref = DiT(tiny_config(use_rl_head=True)).eval()
    with torch.no_grad():  # two different fields
        for p, q in zip(model.parameters(), ref.parameters()):
            p.add_(0.1 * torch.randn_like(p))
            q.copy_(p + 0.05 * torch.randn_like(p))
    cond, text = torch.randn(2, 16, 100), torch.randint(0, 30, (2, 5))
    ro = gaussian_rollout(model, cond, text, torch.tensor([16, 12]), torch.tensor([4, 4]), steps=3)
    adv, valid = torch.tensor([1.0, -0.5]), torch.ones(2, dtype=torch.bool)
    t, x0 = torch.tensor([0.05, 0.08]), torch.randn(ro.mel.shape)
    td, x0d = torch.tensor([0.6, 0.9]), torch.randn(ro.mel.shape)
    x1 = ro.mel.float()

    def drift_by_hand(time, noise):
        with torch.no_grad():
            a = flow_velocity(model, x1, noise, time, ro.text, ro.mask, ro.target)
            b = flow_velocity(ref, x1, noise, time, ro.text, ro.mask, ro.target)
        return span_mse(a, b, ro.target).mean().item()

    fit_only = awm_step_loss(model, None, ro, adv, valid, t, x0, 0.0)
    at_fit = awm_step_loss(model, ref, ro, adv, valid, t, x0, 2.0)
    own = awm_step_loss(model, ref, ro, adv, valid, t, x0, 2.0, drift_time=td, drift_x0=x0d)
    assert at_fit.metrics["loss/kl"].item() == pytest.approx(drift_by_hand(t, x0), rel=1e-4)
    assert own.metrics["loss/kl_own"].item() == pytest.approx(drift_by_hand(td, x0d), rel=1e-4)
    assert own.metrics["loss/kl"].item() == pytest.approx(drift_by_hand(t, x0) + drift_by_hand(td, x0d), rel=1e-4)
    assert drift_by_hand(td, x0d) > 0.1 * drift_by_hand(t, x0)  # the second term is not negligible here
    assert "loss/kl_own" not in at_fit.metrics
    # the advantage-weighted term itself is where it was
    assert (own.loss - 2.0 * own.metrics["loss/kl"]).item() == pytest.approx(fit_only.loss.item(), rel=1e-4)
    with pytest.raises(ValueError, match="drift_time and drift_x0 together"):
        awm_step_loss(model, ref, ro, adv, valid, t, x0, 2.0, drift_time=td)


@pytest.mark.parametrize("mode", ["gaussian", "sde"])
def test_noise_on_chosen_steps_only_leaves_the_others_deterministic(mode):
    """MixGRPO / Flow-GRPO-Fast: only the steps that will be trained sample noise; every other step
    is the deterministic Euler step of inference (the mean velocity; for SDE rollouts the ODE velocity,
    not the SDE drift, whose correction term only makes sense with the noise added)."""
    torch.manual_seed(0)
    model = DiT(tiny_config(use_rl_head=True)).eval()
    cond = torch.randn(1, 20, 100).repeat(4, 1, 1)
    text = torch.randint(0, 30, (1, 6)).repeat(4, 1)
    lens, prompts = torch.full((4,), 20), torch.full((4,), 4)
    ro = gaussian_rollout(model, cond, text, lens, prompts, steps=5, cfg_strength=2.0, mode=mode, shared_start=4,
                          noisy_steps=[2])
    assert ro.noisy == (2,)
    # one start noise and two deterministic steps: every row is still on the same path
    for k in (0, 1, 2):
        assert all(torch.equal(ro.states[k][0], ro.states[k][i]) for i in range(1, 4)), k
    assert not torch.equal(ro.states[3][0], ro.states[3][1])  # the noisy step split them
    for k in (0, 1, 3):  # the deterministic steps took the mean (ODE) velocity
        t = ro.times[k].expand(4)
        v = ode_velocity(model, ro.states[k], ro.cond, ro.text, t, ro.mask, 2.0, ro.kind)
        assert torch.allclose(ro.samples[k], v, atol=1e-5), k
    out = grpo_step_loss(model, None, ro, 2, torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.ones(4, dtype=torch.bool),
                         0.2, 0.0)
    assert out.metrics["stats/ratio_mean"].item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="step 1 sampled no noise"):  # nothing to credit there
        grpo_step_loss(model, None, ro, 1, torch.ones(4), torch.ones(4, dtype=torch.bool), 0.2, 0.0)
    assert gaussian_rollout(model, cond, text, lens, prompts, steps=5, mode=mode).noisy is None  # every step
    with pytest.raises(ValueError, match="steps 0 to 3"):
        gaussian_rollout(model, cond, text, lens, prompts, steps=5, mode=mode, noisy_steps=[4])

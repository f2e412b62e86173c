import json
import math
from pathlib import Path

import pytest
import torch

from f5rl.config import ConfigError, compose, validate
from f5rl.config.schema import RLTrainConfig
from f5rl.train.rl_trainer import RLTrainer
from tests.conftest import accelerate_launch, tiny_rl_config


def _trainer(cfg) -> RLTrainer:
    t = RLTrainer(cfg)
    t.setup()
    return t


def test_group_of_one_is_refused_with_the_key_to_change(tmp_path, demo_corpus):
    with pytest.raises(ConfigError, match="rl.group_size"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.group_size=1")
    with pytest.raises(ConfigError, match="use_rl_head"):
        tiny_rl_config(tmp_path, demo_corpus, "model.use_rl_head=false", "model.output_dist=deterministic")


def test_rl_recipe_overrides_parse():
    over = ["datasets.name=mini_rl", "datasets.batch_size_per_gpu=1", "datasets.batch_size_type=sample",
            "datasets.num_workers=2", "model.tokenizer=custom", "model.tokenizer_path=/x/vocab.txt",
            "model.output_dist=gaussian", "model.objective=grpo", "model.use_rl_head=true",
            "model.arch.checkpoint_activations=false", "optim.epochs=1", "optim.learning_rate=1e-6",
            "optim.num_warmup_updates=0", "optim.grad_accumulation_steps=1", "optim.bnb_optimizer=true",
            "ckpts.save_dir=ckpts/mini_rl_grpo", "ckpts.save_per_updates=1000", "ckpts.keep_last_n_checkpoints=0",
            "ckpts.log_samples=false", "ckpts.logger=wandb", "rl.steps=30", "rl.repeat_count=1",
            "rl.mini_repeat_count=1", "rl.prompt_frac_range=[0.1,0.3]", "rl.prompt_length_mode=min",
            "rl.cfg_strength=2.0", "rl.sway_sampling_coef=-1.0", "rl.kl_weight=1.0",
            "rl.ref_model_ckpt=/x/ckpts/mini_rl_warmup/model_last.pt",
            "rl.rewards.providers.0.config.model_dir=/x/checkpoints/wespeaker/cnceleb_resnet34/cnceleb_resnet34",
            "rl.rewards.providers.0.config.device=cpu",
            "rl.rewards.providers.1.config.model_id=/x/checkpoints/funasr/SenseVoiceSmall",
            "rl.rewards.providers.1.config.device=cpu"]
    cfg = validate(compose("F5TTS_RL", over), RLTrainConfig)
    assert [p.name for p in cfg.rl.rewards.providers] == ["wespeaker_sim", "funasr_wer"]
    assert cfg.rl.rewards.providers[1].config["model_id"].endswith("SenseVoiceSmall")
    assert cfg.rl.group_size >= 2 and cfg.rl.loss == "grpo"


@pytest.mark.parametrize("loss", ["grpo", "f5r"])
def test_one_update_records_metrics_and_changes_weights(tmp_path, demo_corpus, loss):
    t = _trainer(tiny_rl_config(tmp_path / loss, demo_corpus, "optim.max_updates=1", f"rl.loss={loss}",
                                "rl.skip_grad_prob=0.5", "optim.learning_rate=1e-3"))
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    t.train()
    row = json.loads((tmp_path / loss / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("loss", "loss/kl", "reward/mean", "reward/std", "reward/min", "reward/max", "stats/kept_steps",
                "stats/zero_std_ratio", "reward/mel_energy/energy", "time/rollout_s", "lr"):
        assert key in row, key
    assert ("loss/policy" in row) if loss == "grpo" else ("loss/pro_adv" in row)
    changed = [n for n, p in t.model.named_parameters() if not torch.equal(p, before[n])]
    assert "transformer.proj_out_ln_sig.weight" in changed and len(changed) > 10
    written = json.loads((tmp_path / loss / "summary.json").read_text())
    assert written["updates"] == 1 and written["stop_reason"] == "optim.max_updates"


def test_advantage_norm_and_minimum_spread_reach_the_trainer(tmp_path, demo_corpus):
    """rl.adv_norm and rl.min_reward_spread shape the trainer's advantages (group_size 2 here: the
    groups are rollouts (0, 1) and (2, 3))."""
    rewards = torch.tensor([1.0, 1.5, 2.0, 2.005])
    t = _trainer(tiny_rl_config(tmp_path / "a", demo_corpus, "rl.group_size=2", "rl.adv_norm=none",
                                "rl.min_reward_spread=0.01"))
    assert t.copies == 2
    out = t.advantages(rewards)
    assert out.adv.tolist() == pytest.approx([-0.25, 0.25, 0.0, 0.0])  # r − mean; the 0.005 group skipped
    assert out.low_spread_ratio.item() == 0.5
    default = _trainer(tiny_rl_config(tmp_path / "b", demo_corpus, "rl.group_size=2")).advantages(rewards)
    assert default.adv.tolist() == pytest.approx([-1, 1, -1, 1], rel=0.05)  # GRPO: each group scaled to ±1


def test_group_normalized_rewards_are_standardised_per_group_and_validation_stays_absolute(tmp_path, demo_corpus):
    """rl.rewards.mode=group_normalized_sum: the trainer passes its groups (2 prompts x 4 rollouts), so each
    group's rewards have mean 0 and population std 1; held-out validation reports the plain weighted sum
    (a mean-zero z-score would make val/mean_reward and model_best.pt meaningless)."""
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "rl.rewards.mode=group_normalized_sum",
                                "rl.rewards.providers=[{name: mel_energy, weight: 2.0, config: {target: -2.0}}]",
                                f"rl.val_manifest={demo_corpus / 'test.jsonl'}", "rl.val_size=2", "rl.val_every=100"))
    batch = t.val_batch  # two held-out utterances, infilled as training batches are
    prompts, use_cfg = t.draw_split(batch, t.split_generator())
    batch, prompts = t._expand(batch), prompts.repeat_interleave(t.copies)
    _, scored, _ = t.rollout_and_score(batch, prompts, use_cfg)
    groups = scored.reward.view(2, 4)
    assert groups.mean(dim=1).tolist() == pytest.approx([0.0, 0.0], abs=1e-4)
    assert groups.std(dim=1, unbiased=False).tolist() == pytest.approx([2.0, 2.0], abs=1e-3)  # weight 2 x z
    val = t.validate()
    assert val["val/mean_reward"] == pytest.approx(2.0 * val["val/mel_energy"], rel=1e-5)
    assert val["val/mean_reward"] != pytest.approx(0.0, abs=1e-3)


def test_rl_resume_equals_uninterrupted(tmp_path, demo_corpus):
    args = ("ckpts.last_per_updates=100", "rl.train_steps=2", "optim.learning_rate=1e-3")
    straight = _trainer(tiny_rl_config(tmp_path / "a", demo_corpus, *args, "optim.max_updates=4"))
    straight.train()
    part = _trainer(tiny_rl_config(tmp_path / "b", demo_corpus, *args, "optim.max_updates=2"))
    part.train()
    # the reference of a resumed run is the initial policy: give it explicitly
    ref = tmp_path / "b" / "ref.safetensors"
    from f5rl.model.checkpoint import save_released_format

    save_released_format(straight.ref.state_dict(), ref)
    resumed = _trainer(tiny_rl_config(tmp_path / "b", demo_corpus, *args, "optim.max_updates=4",
                                      f"rl.ref_model_ckpt={ref}"))
    assert resumed.start_update == 2
    resumed.train()
    la = [json.loads(x)["loss"] for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert la == lb
    wa = straight.accelerator.unwrap_model(straight.model).state_dict()
    wb = resumed.accelerator.unwrap_model(resumed.model).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_grpo_raises_held_out_reward_on_tiny_model(tmp_path, demo_corpus):
    """GRPO with the deterministic mel-energy reward: held-out mean reward before vs after
    (same seeds), validation every 10 updates, best checkpoint kept."""
    t = _trainer(tiny_rl_config(
        tmp_path / "up", demo_corpus, "optim.max_updates=30", "optim.learning_rate=3e-3", "rl.kl_weight=0.0",
        "rl.train_steps=3", f"rl.val_manifest={demo_corpus / 'test.jsonl'}", "rl.val_every=10", "rl.val_size=4",
        "ckpts.keep_best_by=val/mean_reward"))
    before = t.validate()["val/mean_reward"]
    t.train()
    after = t.validate()["val/mean_reward"]
    rows = [json.loads(x) for x in (tmp_path / "up" / "metrics.jsonl").read_text().splitlines()]
    curve = [round(r["val/mean_reward"], 3) for r in rows if "val/mean_reward" in r]
    print(f"GRPO mel-energy reward on held-out prompts: before {before:.3f}, after {after:.3f}; val curve {curve}")
    assert after > before + 0.3
    assert (tmp_path / "up" / "model_best.pt").is_file()


@pytest.mark.slow
def test_two_processes_share_groups_like_one(tmp_path, demo_corpus):
    """`accelerate launch --num_processes 2` (gloo, CPU) with rl.repeat_count=2 gives the
    advantages of the single-process computation over the same groups."""
    out = tmp_path / "adv.json"
    proc = accelerate_launch(Path(__file__).with_name("dist_advantages.py"), demo_corpus, tmp_path / "run", out,
                             timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["rewards"] == [1.0, 2.0, 5.0, 9.0, 11.0, 12.0, 15.0, 19.0]  # process 0 then process 1
    # group = prompt: local rollouts (0,1) and (2,3) of each process, same prompts on both processes:
    # group 0 = {1, 2, 11, 12} (mean 6.5, population std 5.0249...), group 1 = {5, 9, 15, 19} (mean 12,
    # population std sqrt(29) = 5.3852...); A = (r - mean) / (std + 1e-4)
    s0, s1 = math.sqrt(101 / 4), math.sqrt(29)
    expected = [(r - m) / (s + 1e-4) for r, m, s in zip(res["rewards"], [6.5, 6.5, 12, 12] * 2, [s0, s0, s1, s1] * 2)]
    assert res["adv"] == pytest.approx(expected, abs=1e-6)
    b0, b1 = res["batches"][:2], res["batches"][2:]
    assert b0 == b1  # both processes rolled out the same prompts
    assert res["updates"] == 1


def test_lora_grpo_uses_base_as_reference_and_merges_to_f5_format(tmp_path, demo_corpus):
    from f5rl.model import DiT, load_dit_checkpoint
    from f5rl.model.lora import BaseModelView
    from f5rl.scripts.merge_lora import main as merge

    t = _trainer(tiny_rl_config(tmp_path / "lora", demo_corpus, "optim.max_updates=2", "model.lora.enabled=true",
                                "model.lora.rank=4", "optim.learning_rate=1e-2", "ckpts.save_per_updates=2"))
    assert isinstance(t.ref, BaseModelView)
    frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if not p.requires_grad}
    t.train()
    assert all(torch.equal(p, frozen[n]) for n, p in t.model.named_parameters() if n in frozen)
    state = torch.load(tmp_path / "lora" / "model_last.pt", weights_only=True)["model_state_dict"]
    assert any(k.endswith("lora_B") for k in state) and "transformer.proj_out.weight" in state
    merge(["--ckpt", str(tmp_path / "lora" / "model_last.pt"), "--out", str(tmp_path / "merged.safetensors"),
           "--no_ema"])
    plain = DiT(t.accelerator.unwrap_model(t.model).transformer.config)
    load_dit_checkpoint(plain, tmp_path / "merged.safetensors")  # strict, plain F5 names
    x = torch.randn(1, 10, 100)
    text = torch.randint(0, 20, (1, 4))
    policy = t.accelerator.unwrap_model(t.model).transformer.eval()
    assert torch.allclose(plain.eval()(x, x, text, torch.tensor([0.3])).mu, policy(x, x, text, torch.tensor([0.3])).mu,
                          atol=1e-4)


def test_sde_rollouts_train_a_deterministic_model(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path / "sde", demo_corpus, "optim.max_updates=1", "rl.rollout=sde",
                                "model.use_rl_head=false", "model.output_dist=deterministic",
                                "optim.learning_rate=1e-3"))
    assert not t.accelerator.unwrap_model(t.model).transformer.has_sigma_head
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    t.train()
    row = json.loads((tmp_path / "sde" / "metrics.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(row["loss"]) and "loss/kl" in row
    assert sum(not torch.equal(p, before[n]) for n, p in t.model.named_parameters()) > 10
    with pytest.raises(ConfigError, match="f5r"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.rollout=sde", "rl.loss=f5r")


def test_inner_epochs_move_off_policy_and_samples_are_written(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path / "ie", demo_corpus, "optim.max_updates=1", "rl.inner_epochs=3",
                                "optim.learning_rate=5e-3", "ckpts.log_samples=true", "ckpts.save_per_updates=1",
                                "rl.train_steps_mode=all"))
    epochs = []
    accumulate = t.accumulate_step_gradients
    t.accumulate_step_gradients = lambda *a: epochs.append(accumulate(*a)) or epochs[-1]
    t.train()
    row = json.loads((tmp_path / "ie" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["stats/kept_steps"] == 5  # rl.steps=6 points -> 5 Euler steps, all trained
    assert len(epochs) == 3
    assert epochs[0]["stats/ratio_mean"] == pytest.approx(1.0, abs=1e-6)  # on-policy: the rollout's own network
    assert abs(epochs[2]["stats/ratio_mean"] - 1.0) > 1e-5 and epochs[2]["stats/approx_kl"] > 1e-9  # off-policy
    assert (tmp_path / "ie" / "samples" / "update_1_gen.wav").is_file()


def test_online_dpo_pairs_best_and_worst_of_each_group(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path / "odpo", demo_corpus, "optim.max_updates=1", "rl.loss=online_dpo",
                                "optim.learning_rate=1e-3"))
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    t.train()
    row = json.loads((tmp_path / "odpo" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["stats/dpo_pairs"] == 2  # two prompts, one pair each
    assert row["loss/preference"] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the first step
    assert sum(not torch.equal(p, before[n]) for n, p in t.model.named_parameters()) > 10


def test_online_dpo_takes_the_offline_recipes_time_window_and_chosen_sample_term(tmp_path, demo_corpus, monkeypatch):
    """rl.dpo_time_range draws the pairs' flow times in a window (the offline DPO recipe's [0, 0.1]),
    rl.dpo_sft_weight adds the flow-matching error of the chosen rollouts (dpo.sft_loss_weight offline) and
    rl.kl_weight the drift of the policy's velocity on them from the reference's."""
    import f5rl.rollout.evaluate as evaluate

    times = []
    velocity = evaluate.flow_velocity
    monkeypatch.setattr(evaluate, "flow_velocity",
                        lambda net, x, x0, t, *a: times.append(t) or velocity(net, x, x0, t, *a))
    t = _trainer(tiny_rl_config(tmp_path / "odpo", demo_corpus, "optim.max_updates=1", "rl.loss=online_dpo",
                                "rl.inner_epochs=2", "rl.dpo_time_range=[0.0,0.1]", "rl.dpo_sft_weight=100.0",
                                "rl.kl_weight=3.0", "optim.learning_rate=1e-3"))
    t.train()
    seen = torch.cat(times)
    assert len(times) == 8 and seen.numel() == 16  # policy and reference, chosen and rejected, 2 pairs, 2 epochs
    assert float(seen.min()) >= 0.0 and float(seen.max()) <= 0.1
    row = json.loads((tmp_path / "odpo" / "metrics.jsonl").read_text().splitlines()[-1])  # the second epoch
    assert row["dpo/chosen_error"] > 0 and row["loss/drift"] > 0  # the first step moved the policy
    assert row["loss"] == pytest.approx(row["loss/preference"] + 100.0 * row["dpo/chosen_error"]
                                        + 3.0 * row["loss/drift"], rel=1e-4)
    for bad in ("rl.dpo_time_range=[0.2,0.1]", "rl.dpo_time_range=[0.0]", "rl.dpo_sft_weight=-1.0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            tiny_rl_config(tmp_path, demo_corpus, "rl.loss=online_dpo", bad)


def test_noise_on_the_trained_steps_only(tmp_path, demo_corpus):
    """rl.noise_steps=train: the update's trained steps are drawn before the rollout, only they sample
    noise, and every inner epoch trains exactly them (MixGRPO's SDE window)."""
    t = _trainer(tiny_rl_config(tmp_path / "mix", demo_corpus, "optim.max_updates=2", "rl.inner_epochs=2",
                                "rl.noise_steps=train", "rl.train_steps=2", "rl.shared_start_noise=true"))
    seen = []
    accumulate = t.accumulate_step_gradients
    t.accumulate_step_gradients = lambda ro, ref_ro, adv, steps: seen.append((ro.noisy, list(steps))) or accumulate(
        ro, ref_ro, adv, steps)
    t.train()
    assert len(seen) == 4  # 2 updates x 2 inner epochs
    for noisy, steps in seen:
        assert noisy is not None and len(noisy) == 2 and steps == list(noisy)
    assert seen[0] == seen[1] and seen[2] == seen[3]  # one draw per update, kept for its inner epochs
    row = json.loads((tmp_path / "mix" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["stats/kept_steps"] == 2 and math.isfinite(row["loss"])
    with pytest.raises(ConfigError, match="rl.noise_steps=train"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.noise_steps=train", "rl.loss=awm")
    with pytest.raises(ConfigError, match="rl.noise_steps"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.noise_steps=some")


def test_deterministic_rollouts_for_the_losses_that_need_no_log_probs(tmp_path, demo_corpus):
    """rl.noise_steps=none: AWM fits the rollouts' outputs, so they can be inference's own ODE samples
    (a group differs by its start noise alone); the log-prob losses refuse it."""
    t = _trainer(tiny_rl_config(tmp_path / "ode", demo_corpus, "optim.max_updates=1", "rl.loss=awm",
                                "rl.noise_steps=none", "optim.learning_rate=1e-3"))
    seen = []
    rollout = t.rollout
    t.rollout = lambda *a, **kw: seen.append(rollout(*a, **kw)) or seen[-1]
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    t.train()
    ro = seen[0]
    assert ro.noisy == ()
    for k in range(ro.steps):  # every step took the deterministic velocity: nothing sampled, log-prob 0
        assert torch.equal(ro.old_logp[k], torch.zeros_like(ro.old_logp[k]))
    assert sum(not torch.equal(p, before[n]) for n, p in t.model.named_parameters()) > 10
    for loss in ("grpo", "f5r"):
        with pytest.raises(ConfigError, match="rl.noise_steps=none"):
            tiny_rl_config(tmp_path, demo_corpus, "rl.noise_steps=none", f"rl.loss={loss}")

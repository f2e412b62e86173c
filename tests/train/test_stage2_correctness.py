"""Stage 2 and DPO on the paths users run: dropout, poisoned rewards, shared prompt splits, LoRA
references, batched vocoding, and config keys that must do what they say."""

import json
import math

import pytest
import torch

from f5rl.config import ConfigError
from f5rl.rewards.base import RewardBatch, RewardOutput, RewardProvider
from f5rl.rewards.registry import register
from f5rl.train.rl_trainer import RLTrainer
from tests.conftest import tiny_rl_config


@register("test_inf_then_ok")
class InfReward(RewardProvider):
    """Scores like mel_energy, except that its first sample is always +inf (an underflowed NLL)."""

    components = ("energy",)

    def compute(self, batch: RewardBatch) -> RewardOutput:
        energy = torch.stack([m.float().mean() for m in batch.mel])
        scores = -(energy + 2).abs()
        scores[0] = math.inf
        return RewardOutput(scores, {"energy": energy})


@register("test_always_raises")
class BrokenReward(RewardProvider):
    def compute(self, batch: RewardBatch) -> RewardOutput:
        raise ConnectionError("reward server at 127.0.0.1:1 refused the connection")


def _trainer(cfg) -> RLTrainer:
    t = RLTrainer(cfg)
    t.setup()
    return t


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _weights(t):
    return {n: p.detach().clone() for n, p in t.model.named_parameters()}


# ---------------------------------------------------------------------------- 2. dropout


@pytest.mark.parametrize("rollout", ["gaussian", "sde"])
def test_first_ratio_is_one_and_kl_zero_with_dropout_and_bf16(tmp_path, demo_corpus, rollout):
    """The shipped RL configs have dropout 0.1: rollouts and the loss pass must see the same
    network, so on the first inner epoch of update 0 the PPO ratio is 1 and the KL to the
    reference (the initial policy) is 0."""
    kind = [] if rollout == "gaussian" else ["model.use_rl_head=false", "model.output_dist=deterministic"]
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "model.arch.dropout=0.1", "optim.mixed_precision=bf16",
                                "optim.max_updates=1", f"rl.rollout={rollout}", "rl.train_steps_mode=all", *kind))
    assert t.precision == "bf16"
    t.train()
    row = _rows(tmp_path / "metrics.jsonl")[-1]
    print({k: row[k] for k in ("loss/kl", "stats/ratio_mean", "stats/approx_kl")})
    assert row["stats/ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert abs(row["stats/approx_kl"]) < 1e-7
    assert abs(row["loss/kl"]) < 1e-7


def test_dpo_loss_starts_at_log2_with_dropout(tmp_path, demo_corpus, tiny_ckpt):
    from f5rl.train.dpo_trainer import DPOTrainer
    from tests.prefs.test_pipeline import _wav_pairs_config

    cfg = _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "model.arch.dropout=0.1", "optim.max_updates=1",
                            "dpo.sft_loss_weight=0", "datasets.batch_size_per_gpu=3",
                            "datasets.batch_size_type=sample")
    t = DPOTrainer(cfg)
    t.setup()
    t.train()
    row = _rows(tmp_path / "run" / "metrics.jsonl")[-1]
    assert row["loss/preference"] == pytest.approx(math.log(2), abs=1e-6)
    assert row["dpo/accuracy"] == 0.5  # ties count half


# ---------------------------------------------------------------------------- 4. poisoned rewards


def test_infinite_scores_are_unscorable_with_a_reason():
    p = InfReward()
    out = p(RewardBatch([torch.zeros(10)] * 3, ["a", "b", "c"], mel=[torch.zeros(4, 100), torch.ones(4, 100),
                                                                      torch.full((4, 100), -2.0)]))
    assert math.isnan(out.scores[0]) and "non-finite" in out.reasons[0]
    assert out.scores[1:].tolist() == [-3.0, 0.0]


def test_infinite_rewards_never_reach_the_weights(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=2",
                                "rl.rewards.providers=[{name: test_inf_then_ok, weight: 1.0}]"))
    t.train()
    rows = _rows(tmp_path / "metrics.jsonl")
    for row in rows:
        assert math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"]), row
        assert row["reward/nan_ratio"] == pytest.approx(0.125)  # 1 of 8 rollouts (the first of each batch)
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_a_non_finite_gradient_skips_the_step_and_is_counted(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=2"))
    accumulate = t.accumulate_step_gradients
    calls = []

    def poisoned(*args):
        out = accumulate(*args)
        calls.append(1)
        if len(calls) == 1:  # the first update's gradient carries a NaN
            next(p for p in t.model.parameters() if p.grad is not None).grad.view(-1)[0] = math.nan
        return out

    t.accumulate_step_gradients = poisoned
    before = _weights(t)
    losses = []
    step = t.optimizer_step

    def spy():
        res = step()
        losses.append(res)
        if len(losses) == 1:  # nothing moved after the skipped step
            assert all(torch.equal(p, before[n]) for n, p in t.model.named_parameters())
        return res

    t.optimizer_step = spy
    summary = t.train()
    rows = _rows(tmp_path / "metrics.jsonl")
    assert [r["stats/skipped_step"] for r in rows] == [1.0, 0.0]
    assert math.isnan(rows[0]["grad_norm"]) and math.isfinite(rows[1]["grad_norm"])
    assert summary.skipped_updates == 1 and "skipped updates (non-finite gradient): 1" in summary.render()
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert any(not torch.equal(p, before[n]) for n, p in t.model.named_parameters())  # the second step trained


def test_a_provider_that_always_fails_stops_the_run_without_training(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=10", "rl.max_unscorable_updates=2",
                                "rl.rewards.providers=[{name: test_always_raises, weight: 1.0}]"))
    before = _weights(t)
    with pytest.raises(RuntimeError, match=r"last 2 updates was unscorable.*refused the connection"):
        t.train()
    assert all(torch.equal(p, before[n]) for n, p in t.model.named_parameters())  # no KL-only training
    with pytest.raises(ConfigError, match="max_unscorable_updates"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.max_unscorable_updates=0")


# ---------------------------------------------------------------------------- 5. one split per prompt


def _record_rollouts(t):
    seen = []
    rollout = t.rollout

    def spy(batch, policy, prompts, use_cfg, generator=None, **kw):
        ro = rollout(batch, policy, prompts, use_cfg, generator, **kw)
        seen.append((policy is t.ref, ro.prompt_lens.clone(), ro.durations.clone()))
        return ro

    t.rollout = spy
    return seen


def test_every_group_member_infills_the_same_split(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=3", "rl.prompt_length_mode=per_sample",
                                "rl.prompt_frac_range=[0.1,0.6]"))
    seen = _record_rollouts(t)
    t.train()
    distinct = set()
    for _, lens, _ in seen:
        groups = lens.view(-1, 4)  # 2 prompts x group_size 4, consecutive copies
        assert (groups == groups[:, :1]).all(), groups
        distinct.update(groups[:, 0].tolist())
    assert len(distinct) > 2  # the split still varies between prompts and updates


def test_f5r_reference_rollout_reuses_the_policy_split(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=2", "rl.loss=f5r",
                                "rl.prompt_length_mode=per_sample", "rl.prompt_frac_range=[0.1,0.6]"))
    seen = _record_rollouts(t)
    t.train()
    assert [is_ref for is_ref, _, _ in seen] == [False, True, False, True]
    for (_, a, da), (_, b, db) in zip(seen[::2], seen[1::2]):
        assert torch.equal(a, b) and torch.equal(da, db)


# ---------------------------------------------------------------------------- 6. LoRA references


def test_lora_reference_stays_the_initial_model_while_train_also_layers_move(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=3", "model.lora.enabled=true",
                                "model.lora.rank=4", "optim.learning_rate=1e-2"))
    torch.manual_seed(3)
    x, text, time = torch.randn(2, 12, 100), torch.randint(0, 20, (2, 5)), torch.tensor([0.2, 0.7])
    before = t.ref(x, x, text, time)
    sigma_head = t.policy.proj_out_ln_sig.weight.detach().clone()
    t.train()
    after = t.ref(x, x, text, time)
    assert not torch.equal(t.policy.proj_out_ln_sig.weight, sigma_head)  # train_also moved
    assert torch.equal(before.mu, after.mu) and torch.equal(before.ln_sig, after.ln_sig)


def test_lora_online_dpo_runs_against_the_base_view(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=1", "model.lora.enabled=true",
                                "model.lora.rank=4", "rl.loss=online_dpo"))
    t.train()
    row = _rows(tmp_path / "metrics.jsonl")[-1]
    assert row["stats/dpo_pairs"] == 2 and row["loss/preference"] == pytest.approx(math.log(2), abs=1e-5)
    assert row["loss/drift"] == pytest.approx(0.0, abs=1e-10)  # the adapter-free view is the policy at step 0


def test_lora_dpo_runs_against_the_base_view(tmp_path, demo_corpus, tiny_ckpt):
    from f5rl.model.lora import BaseModelView
    from f5rl.train.dpo_trainer import DPOTrainer
    from tests.prefs.test_pipeline import _wav_pairs_config

    cfg = _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "optim.max_updates=2", "model.lora.enabled=true",
                            "model.lora.rank=4", "model.lora.train_also=[]", "dpo.ref_model_ckpt=null",
                            "optim.learning_rate=1e-2", "optim.num_warmup_updates=0")
    t = DPOTrainer(cfg)
    t.setup()
    assert isinstance(t.ref, BaseModelView)
    assert t.validate()["val/loss"] == pytest.approx(math.log(2), abs=1e-6)
    adapters = {n: p.detach().clone() for n, p in t.policy.named_parameters() if "lora_B" in n}
    t.train()
    assert (tmp_path / "run" / "model_last.pt").is_file()
    assert all(not torch.equal(p, adapters[n]) for n, p in t.policy.named_parameters() if n in adapters)


# ---------------------------------------------------------------------------- 7. keys that do what they say


def test_rollouts_are_vocoded_in_batches_and_the_ground_truth_once_per_prompt(tmp_path, demo_corpus):
    t = _trainer(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=1", "rl.rewards.vocoder_batch=3"))
    calls = []
    vocoder = t.scorer.vocoder

    def spy(mel):
        calls.append(mel.shape[0])
        return vocoder(mel)

    t.scorer.vocoder = spy
    t.train()
    # 2 prompts x 4 rollouts (each group shares its length): batches of <= 3 per length, then the
    # 2 ground truths (the 8 copies' speaker references come from 2 vocoder rows, not 8)
    assert sum(calls) == 8 + 2 and max(calls) <= 3
    mel = torch.randn(40, 100) - 4
    batched = vocoder(torch.stack([mel, mel + 0.5]).transpose(1, 2))
    alone = vocoder(mel.T.unsqueeze(0))
    assert torch.allclose(batched[0], alone[0], atol=1e-5)


def test_attn_mask_enabled_chooses_masked_or_f5_attention():
    from f5rl.model import DiT
    from tests.conftest import randomise_grn, tiny_config

    for enabled in (True, False):
        torch.manual_seed(0)
        net = DiT(tiny_config(attn_mask_enabled=enabled)).eval()
        randomise_grn(net)
        x, text = torch.randn(2, 16, 100), torch.randint(0, 20, (2, 6))
        mask = torch.arange(16)[None] < torch.tensor([16, 10])[:, None]
        padded = net(x, x, text, torch.tensor([0.3, 0.3]), mask=mask).mu[1, :10]
        alone = net(x[1:, :10], x[1:, :10], text[1:], torch.tensor([0.3])).mu[0]
        assert torch.allclose(padded, alone, atol=1e-5) == enabled


def test_stage0_validation_keys_are_refused_in_stage2(tmp_path, demo_corpus):
    with pytest.raises(ConfigError, match="rl.val_manifest"):
        tiny_rl_config(tmp_path, demo_corpus, "ckpts.val_list=test.jsonl", "ckpts.val_every=5")


def test_dpo_val_every_validates_between_steps(tmp_path, demo_corpus, tiny_ckpt):
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer
    from tests.prefs.test_pipeline import _wav_pairs_config

    cfg = _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "optim.max_updates=4", "dpo.val_every=2",
                            "dpo.val_draws=2")
    t = DPOTrainer(cfg)
    t.setup()
    t.train()
    rows = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [("val/loss" in r) for r in rows] == [False, True, False, True]
    assert all(0 <= r["val/dpo/accuracy"] <= 1 for r in rows if "val/loss" in r)
    with pytest.raises(ConfigError, match="dpo.val_manifest"):
        validate(compose("F5TTS_DPO_tiny", [f"dpo.train_manifest={cfg.dpo.train_manifest}", "dpo.val_every=2"]),
                 DPOTrainConfig)


def test_a_resumed_lora_run_keeps_the_initial_reference(tmp_path, demo_corpus):
    """The σ head (model.lora.train_also) moves during training; a resumed run's reference must still be
    the initial model, read from the start file, not the moved head."""
    from f5rl.model.checkpoint import save_released_format

    start = _trainer(tiny_rl_config(tmp_path / "init", demo_corpus, "optim.max_updates=1"))
    run = tmp_path / "lora"
    run.mkdir()
    save_released_format(start.policy.state_dict(), run / "pretrained_start.safetensors")
    lora = ("model.lora.enabled=true", "model.lora.rank=4", "optim.learning_rate=1e-2", "ckpts.last_per_updates=1")
    first = _trainer(tiny_rl_config(run, demo_corpus, "optim.max_updates=2", *lora))
    torch.manual_seed(3)
    x, text, time = torch.randn(2, 12, 100), torch.randint(0, 20, (2, 5)), torch.tensor([0.2, 0.7])
    before = first.ref(x, x, text, time)
    first.train()
    resumed = _trainer(tiny_rl_config(run, demo_corpus, "optim.max_updates=4", *lora))
    assert resumed.start_update == 2
    assert not torch.equal(resumed.policy.proj_out_ln_sig.weight, first.ref.frozen["proj_out_ln_sig.weight"])
    after = resumed.ref(x, x, text, time)
    assert torch.equal(before.mu, after.mu) and torch.equal(before.ln_sig, after.ln_sig)

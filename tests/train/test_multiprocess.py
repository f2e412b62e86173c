"""Two gloo processes (`accelerate launch --multi_gpu --num_processes 2`) train stage 2, DPO and a stage-1
σ-head warmup: every process must hold the same weights afterwards, and a two-process GRPO update must be
the one-process update of the concatenated batch."""

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import accelerate_launch, tiny_rl_config

MODES = ["grpo", "f5r", "online_dpo", "lora", "repeat", "awm", "prompts", "mixed", "ode", "server", "dpo", "dpo_anchor",
         "sigma_only"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, demo_corpus, tiny_ckpt):
    out = tmp_path_factory.mktemp("dist")
    proc = accelerate_launch(Path(__file__).with_name("dist_train.py"), demo_corpus, out, tiny_ckpt, *MODES,
                             timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_process_holds_the_same_weights(two_process_run, mode):
    res = json.loads((two_process_run / f"{mode}.json").read_text())
    print(f"{mode}: {res['updates']} updates at lr {res['lr']:g}, {res['parameters']} trainable parameters, "
          f"max |w(rank 0) - w(rank 1)| = {res['max_weight_diff']:.3g}, max |w(end) - w(start)| = {res['moved']:.3g}")
    assert res["updates"] >= 2
    assert res["max_weight_diff"] <= 1e-6
    # equal because both trained, not because neither did: Adam's first step alone moves a weight by about lr
    assert res["moved"] > 0.5 * res["lr"]
    if mode in ("lora", "sigma_only"):  # what they freeze stays exactly as it was
        assert res["frozen_moved"] == 0.0
    # the main process alone writes the run's summary, whole, for the run of both processes
    run = two_process_run / f"run_{mode}"
    written = json.loads((run / "summary.json").read_text())
    assert written["num_processes"] == 2 and written["updates"] == res["updates"]
    assert written["stop_reason"] == "optim.max_updates"
    assert written["checkpoints"][-1] == str(run / "model_last.pt")  # each file on disk once, last save last
    assert len(set(written["checkpoints"])) == len(written["checkpoints"])
    assert all(Path(c).is_file() for c in written["checkpoints"])
    assert not list(run.glob(".summary.json.*"))


@pytest.mark.slow
def test_a_sigma_only_warmup_trains_the_gaussian_head_alone_on_both_processes(two_process_run):
    res = json.loads((two_process_run / "sigma_only.json").read_text())
    assert res["parameters"] == 100 * 64 + 100  # proj_out_ln_sig of the dim-64 DiT: mel_dim x dim + bias
    assert res["moved"] > 0.5 * res["lr"] and res["frozen_moved"] == 0.0  # the velocity's weights exactly kept


@pytest.mark.slow
def test_a_group_spanning_processes_shares_its_prompt_split(two_process_run):
    """rl.repeat_count=2, per_sample splits: both processes hold copies of the same prompts and each
    copy infills the same split (drawn once per prompt, from a stream both processes share)."""
    res = json.loads((two_process_run / "repeat.json").read_text())
    rank0, rank1 = (s[0] for s in res["splits"])
    assert rank0["durations"] == rank1["durations"]  # the same prompts
    assert rank0["prompt_lens"] == rank1["prompt_lens"]
    lens = rank0["prompt_lens"]  # 2 prompts x group_size 2, consecutive copies
    assert lens[0] == lens[1] and lens[2] == lens[3]


@pytest.mark.slow
def test_two_process_grpo_update_equals_one_process_update_on_the_concatenated_batch(two_process_run, tmp_path,
                                                                                    demo_corpus):
    """DDP averages the processes' gradients; the GRPO loss is a mean of per-rollout terms (the PPO
    term over rollouts, the KL per rollout then over rollouts), so with equal local batches the
    averaged gradient is the gradient of the concatenated batch computed in one process."""
    from f5rl.rl.grpo import Advantages
    from f5rl.rollout.record import cat_rollouts
    from f5rl.train.rl_trainer import RLTrainer

    parts = [torch.load(two_process_run / f"grpo_rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert parts[0]["steps"] == parts[1]["steps"]
    # the same initial weights on both processes
    assert all(torch.equal(parts[0]["initial"][k], parts[1]["initial"][k]) for k in parts[0]["initial"])
    cfg = tiny_rl_config(tmp_path / "one", demo_corpus, "rl.steps=4", "rl.group_size=2", "rl.train_steps=2",
                         "rl.kl_weight=0.5", "optim.learning_rate=1e-2")
    t = RLTrainer(cfg)
    t.setup()
    t.policy.load_state_dict(parts[0]["initial"])
    t.ref.load_state_dict(parts[0]["initial"])
    ro = cat_rollouts([p["ro"] for p in parts])
    adv = Advantages(*(torch.cat([getattr(p["adv"], f) for p in parts]) for f in ("adv", "valid")),
                     parts[0]["adv"].zero_std_ratio,
                     *(torch.cat([getattr(p["adv"], f) for p in parts]) for f in ("group_mean", "group_std")))
    t.model.train(False)
    t.optimizer.zero_grad(set_to_none=True)
    t.accumulate_step_gradients(ro, None, adv, parts[0]["steps"])
    two = parts[0]["grads"]
    worst = 0.0
    for name, p in t.policy.named_parameters():
        if name in two:
            scale = float(two[name].abs().max()) + 1e-8
            worst = max(worst, float((p.grad - two[name]).abs().max()) / scale)
    print(f"largest gradient difference (relative to each tensor's max): {worst:.3g}")
    assert worst < 1e-4
    assert all(torch.equal(parts[0]["grads"][k], parts[1]["grads"][k]) for k in two)  # averaged on both

"""Run under `accelerate launch --multi_gpu --num_processes 2` (gloo, CPU): trains each named mode for
a few updates in one process group and writes, per mode, what the test checks:

* ``<mode>.json`` (main process): the largest |weight(rank 0) − weight(rank 1)| over trainable
  parameters after training, and the per-rank prompt splits of the first update;
* ``<mode>_rank<r>.pt`` (grpo only): the initial weights, the first update's rollout, advantages,
  chosen steps and the averaged gradient, so the test can redo that update in one process on the
  concatenated batch.

    dist_train.py DATA_DIR OUT_DIR TINY_CKPT MODE [MODE ...]
    (modes: grpo f5r online_dpo lora repeat awm prompts mixed ode server dpo dpo_anchor sigma_only)
"""

import json
import sys
from pathlib import Path

import torch
from plain_grpo import PLAIN_GRPO  # beside this script (accelerate puts its folder on sys.path)

from f5rl.config import compose, validate
from f5rl.config.schema import DPOTrainConfig, RLTrainConfig

TINY = ["ckpts.logger=null", "ckpts.log_samples=false", "model.arch.dim=64", "model.arch.depth=2",
        "model.arch.heads=2", "model.arch.dim_head=32", "model.arch.text_dim=32", "model.arch.conv_layers=1",
        "optim.mixed_precision=no", "optim.learning_rate=1e-2", "optim.num_warmup_updates=0",
        "model.vocoder.griffin_lim_iters=2"]
RL = [*PLAIN_GRPO, "rl.steps=4", "rl.group_size=2", "datasets.batch_size_per_gpu=2", "rl.train_steps=2",
      "rl.rewards.providers=[{name: mel_energy, weight: 1.0, config: {target: -2.0}}]"]
MODES = {
    "grpo": ("F5TTS_RL_tiny", ["optim.max_updates=3", "rl.kl_weight=0.5"]),
    "f5r": ("F5TTS_RL_tiny", ["optim.max_updates=3", "rl.loss=f5r", "rl.skip_grad_prob=0.5"]),
    "online_dpo": ("F5TTS_RL_tiny", ["optim.max_updates=3", "rl.loss=online_dpo", "rl.group_size=3"]),
    "lora": ("F5TTS_RL_tiny", ["optim.max_updates=3", "model.lora.enabled=true", "model.lora.rank=4"]),
    # one group spans both processes; every member draws the split of its prompt; Dr. GRPO advantages with a
    # minimum reward range computed on the gathered group
    "repeat": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.repeat_count=2", "rl.prompt_length_mode=per_sample",
                                 "rl.adv_norm=none", "rl.min_reward_spread=1e-6"]),
    # advantage-weighted matching, positive weights only, several optimiser steps per rollout batch, one
    # start noise per group, the guided velocity fitted (a packed CFG forward through the wrapped model)
    "awm": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.loss=awm", "rl.inner_epochs=2", "rl.awm_negative_weight=0",
                              "rl.shared_start_noise=true", "rl.awm_time_range=[0.0,0.5]", "rl.awm_guided=true"]),
    # synthesis prompts from a manifest instead of the corpus's utterances
    "prompts": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.prompts_manifest={prompts}"]),
    # SDE noise on one trained step per update, drawn before the rollout (the same step on both processes),
    # the other steps deterministic; two inner epochs on that step
    "mixed": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.noise_steps=train", "rl.train_steps=1",
                                "rl.inner_epochs=2", "rl.rollout=sde", "rl.shared_start_noise=true"]),
    # AWM on inference's own ODE samples (a group differs by its start noise alone), the drift also at its own times
    "ode": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.loss=awm", "rl.noise_steps=none",
                              "rl.awm_drift_time_range=[0.5,1.0]"]),
    # rewards scored in a server process per training process, in two chunks overlapping the rollouts
    "server": ("F5TTS_RL_tiny", ["optim.max_updates=2", "rl.rewards.process=server", "rl.rewards.score_chunks=2"]),
}


RANK = int(__import__("os").environ.get("RANK", 0))


def flat_params(model, trainable: bool = True) -> torch.Tensor:
    """The trainable (or, with ``trainable=False``, the frozen) parameters as one flat vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad == trainable]
                     or [torch.zeros(0)])


def build(mode: str, data_dir: str, out: Path, tiny_ckpt: str):
    save = out / f"run_{mode}"
    if mode == "sigma_only":  # a stage-1 σ warmup that trains the Gaussian head alone (model.train_only)
        from f5rl.config.schema import TrainConfig
        from f5rl.train.trainer import Trainer

        over = [f"datasets.path={data_dir}", f"ckpts.save_dir={save}", f"ckpts.init_from={tiny_ckpt}",
                "datasets.batch_size_per_gpu=2", "datasets.batch_size_type=sample", "optim.max_updates=2",
                "model.objective=gaussian_nll", "model.output_dist=gaussian", "model.use_rl_head=true",
                "model.train_only=[proj_out_ln_sig]", *TINY]
        return Trainer(validate(compose("F5TTS_tiny_demo", over), TrainConfig))
    if mode.startswith("dpo"):
        from f5rl.train.dpo_trainer import DPOTrainer

        wavs = sorted((Path(data_dir) / "wavs").glob("*.wav"))
        rows = [{"context_audio": str(wavs[i]), "chosen_audio": str(wavs[i + 1]), "rejected_audio": str(wavs[i + 2]),
                 "context_text": "a b", "text": "c d e", "chosen_cer": 0.0, "rejected_cer": 0.5,
                 "chosen_sim": 0.9, "rejected_sim": 0.8} for i in range(8)]
        manifest = out / "pairs.jsonl"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        over = [f"dpo.train_manifest={manifest}", f"datasets.path={data_dir}", f"ckpts.save_dir={save}",
                f"ckpts.init_from={tiny_ckpt}", "datasets.batch_size_per_gpu=2", "datasets.batch_size_type=sample",
                "optim.max_updates=3", *TINY]
        if mode == "dpo_anchor":  # plus the CFM term on real utterances and the drift at later flow times
            over += ["dpo.anchor_loss_weight=1.0", "dpo.anchor_batch_size=2", "dpo.drift_time_range=[0.1,1.0]",
                     "dpo.drift_weight=10"]
        return DPOTrainer(validate(compose("F5TTS_DPO_tiny", over), DPOTrainConfig))
    from f5rl.train.rl_trainer import RLTrainer

    name, extra = MODES[mode]
    if mode == "prompts":
        from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl

        # the same rows on every process (a fixed seed), each in its own file: no race on one path
        prompts = write_jsonl(demo_rows(data_dir, groups=6, nsamples=1, split="train"), out / f"prompts_{RANK}.jsonl")
        extra = [e.replace("{prompts}", str(prompts)) for e in extra]
    over = [f"ckpts.save_dir={save}", f"datasets.path={data_dir}", *TINY, *RL, *extra]
    return RLTrainer(validate(compose(name, over), RLTrainConfig))


def record_first_update(trainer, mode: str, out: Path, splits: list) -> None:
    """Wrap the trainer so the first update's prompt splits, inputs and averaged gradient are kept."""
    import f5rl.train.distributed as dist

    acc = trainer.accelerator
    if not hasattr(trainer, "accumulate_step_gradients"):
        return
    rollout, accumulate, reduce = trainer.rollout, trainer.accumulate_step_gradients, dist.all_reduce_gradients
    state = {"initial": {k: v.clone() for k, v in trainer.policy.state_dict().items()}}

    def rollout_spy(batch, policy, prompts, use_cfg, generator=None, **kw):
        ro = rollout(batch, policy, prompts, use_cfg, generator, **kw)
        if len(splits) < 2:
            splits.append({"prompt_lens": ro.prompt_lens.tolist(), "durations": ro.durations.tolist(),
                           "reference": policy is trainer.ref})
        return ro

    def accumulate_spy(ro, ref_ro, adv, steps):
        if "ro" not in state:
            state.update(ro=ro, adv=adv, steps=steps)
        return accumulate(ro, ref_ro, adv, steps)

    def reduce_spy(params, num_processes):
        reduce(params, num_processes)
        if "grads" not in state and "ro" in state:  # the first update's gradient, as the optimiser sees it
            state["grads"] = {n: p.grad.clone() for n, p in trainer.policy.named_parameters() if p.requires_grad}
            if mode == "grpo":
                torch.save(state, out / f"{mode}_rank{acc.process_index}.pt")

    trainer.rollout, trainer.accumulate_step_gradients = rollout_spy, accumulate_spy
    dist.all_reduce_gradients = reduce_spy


def main(data_dir: str, out_dir: str, tiny_ckpt: str, *modes: str) -> None:
    import f5rl.train.distributed as dist

    out = Path(out_dir)
    reduce = getattr(dist, "all_reduce_gradients", None)
    for mode in modes:
        dist.all_reduce_gradients = reduce
        trainer = build(mode, data_dir, out, tiny_ckpt)
        trainer.setup()
        splits: list = []
        record_first_update(trainer, mode, out, splits)
        start, frozen = flat_params(trainer.model).clone(), flat_params(trainer.model, trainable=False).clone()
        summary = trainer.train()
        acc = trainer.accelerator
        flat = flat_params(trainer.model)
        both = acc.gather(flat.unsqueeze(0).to(trainer.device)).cpu()  # (2, P)
        all_splits = [None] * acc.num_processes
        torch.distributed.all_gather_object(all_splits, splits)
        if acc.is_main_process:
            (out / f"{mode}.json").write_text(json.dumps({
                "max_weight_diff": float((both[0] - both[1]).abs().max()), "updates": summary.updates,
                "moved": float((flat - start).abs().max()), "lr": trainer.cfg.optim.learning_rate,
                "frozen_moved": float(torch.cat([(flat_params(trainer.model, trainable=False) - frozen).abs(),
                                                 torch.zeros(1)]).max()),
                "parameters": int(flat.numel()), "splits": all_splits}))
        acc.wait_for_everyone()


if __name__ == "__main__":
    main(*sys.argv[1:])

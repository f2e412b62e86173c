import json
import logging

import pytest
import torch

from f5rl.model.cfm import CFM, FlowDraws
from f5rl.model.checkpoint import save_released_format
from f5rl.train.trainer import Trainer
from tests.conftest import tiny_train_config


def _trainer(cfg) -> Trainer:
    t = Trainer(cfg)
    t.setup()
    return t


def _weights(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}


def test_two_steps_change_all_trainable_parameters(tmp_path, demo_corpus):
    t = _trainer(tiny_train_config(tmp_path / "run", demo_corpus, "optim.max_updates=2", "model.use_rl_head=true",
                                   "model.objective=gaussian_nll"))
    before = {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}
    summary = t.train()
    assert summary.updates == 2
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["stop_reason"] == "optim.max_updates" and written["updates"] == 2
    assert written["total_updates"] > 2 and not written["stopped_by_time"]
    unchanged = [n for n, p in t.model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def _deterministic_draws(self, mel, lens):
    """Per-sample draws that do not depend on batch composition: noise and time seeded by the
    sample's own content, a fixed 20-frame span, no CFG dropout."""
    b, n, m = mel.shape
    x0, time = torch.zeros_like(mel), torch.zeros(b)
    for i in range(b):
        g = torch.Generator().manual_seed(int(mel[i, 0].abs().sum() * 1e4) % (2**31))
        x0[i] = torch.randn(n, m, generator=g)
        time[i] = torch.rand((), generator=g)
    span = torch.zeros(b, n, dtype=torch.bool)
    span[:, :20] = True
    return FlowDraws(x0, time, span, False, False)


def test_grad_accumulation_equals_larger_batch(tmp_path, demo_corpus, monkeypatch):
    monkeypatch.setattr(CFM, "draw", _deterministic_draws)
    common = ("optim.max_updates=1", "datasets.batch_size_type=sample", "optim.max_grad_norm=0.5",
              "optim.num_warmup_updates=0")
    big = _trainer(tiny_train_config(tmp_path / "big", demo_corpus, *common, "datasets.batch_size_per_gpu=4",
                                     "optim.grad_accumulation_steps=1"))
    small = _trainer(tiny_train_config(tmp_path / "small", demo_corpus, *common, "datasets.batch_size_per_gpu=2",
                                       "optim.grad_accumulation_steps=2"))
    assert torch.equal(torch.tensor(big.sampler.epoch_batches(0)[0]),
                       torch.tensor(small.sampler.epoch_batches(0)[0] + small.sampler.epoch_batches(0)[1]))
    big_sum, small_sum = big.train(), small.train()
    assert big_sum.final_loss == pytest.approx(small_sum.final_loss, rel=1e-5)
    wb, ws = _weights(big), _weights(small)
    moved = max((wb[k] - ws[k]).abs().max().item() for k in wb)
    gb, gs = (json.loads((tmp_path / r / "metrics.jsonl").read_text())["grad_norm"] for r in ("big", "small"))
    print(f"grad accumulation: grad norm {gb:.6f} (1x4) vs {gs:.6f} (2x2); max |Δw| = {moved:.2e} (lr 1e-3)")
    # the pre-clip gradient norm catches scaling errors (AdamW's first step is scale-free)
    assert gb == pytest.approx(gs, rel=1e-5)
    assert all(torch.allclose(wb[k], ws[k], atol=1e-5) for k in wb)


def _losses(save_dir) -> list[float]:
    return [json.loads(ln)["loss"] for ln in (save_dir / "metrics.jsonl").read_text().splitlines()]


def test_kill_and_resume_equals_uninterrupted(tmp_path, demo_corpus):
    args = ("datasets.batch_size_per_gpu=3", "ckpts.log_every=1", "ckpts.last_per_updates=100",
            "optim.grad_accumulation_steps=2")
    straight = _trainer(tiny_train_config(tmp_path / "straight", demo_corpus, *args, "optim.max_updates=6"))
    straight.train()
    first = _trainer(tiny_train_config(tmp_path / "resumed", demo_corpus, *args, "optim.max_updates=3"))
    first.train()
    assert (tmp_path / "resumed" / "model_last.pt").is_file()
    second = _trainer(tiny_train_config(tmp_path / "resumed", demo_corpus, *args, "optim.max_updates=6"))
    assert second.start_update == 3
    second.train()
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "resumed")  # exactly, on CPU
    ws, wr = _weights(straight), _weights(second)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    es, er = straight.ema.state_dict(), second.ema.state_dict()
    assert all(torch.equal(es[k], er[k]) for k in es)


def test_rotation_keeps_newest_and_never_deletes_last_or_pretrained(tmp_path, demo_corpus):
    run = tmp_path / "rot"
    t = _trainer(tiny_train_config(run, demo_corpus, "optim.max_updates=5", "ckpts.save_per_updates=1",
                                   "ckpts.keep_last_n_checkpoints=2", "ckpts.last_per_updates=2"))
    save_released_format({"x": torch.zeros(1)}, run / "pretrained_other.safetensors")  # must survive
    t.train()
    names = sorted(p.name for p in run.glob("*.pt")) + sorted(p.name for p in run.glob("*.safetensors"))
    assert names == ["model_4.pt", "model_5.pt", "model_last.pt", "pretrained_other.safetensors"]
    assert torch.load(run / "model_last.pt", weights_only=True)["update"] == 5


def test_keep_zero_writes_only_last(tmp_path, demo_corpus):
    t = _trainer(tiny_train_config(tmp_path / "k0", demo_corpus, "optim.max_updates=3", "ckpts.save_per_updates=1",
                                   "ckpts.keep_last_n_checkpoints=0"))
    t.train()
    assert sorted(p.name for p in (tmp_path / "k0").glob("*.pt")) == ["model_last.pt"]


def test_crash_during_save_leaves_previous_checkpoint(tmp_path, demo_corpus, monkeypatch):
    run = tmp_path / "crash"
    t = _trainer(tiny_train_config(run, demo_corpus, "optim.max_updates=4", "ckpts.last_per_updates=2"))
    real_save = torch.save
    calls = {"n": 0}

    def flaky(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # the second model_last.pt write dies half way
            with open(f, "wb") as fh:
                fh.write(b"partial")
            raise OSError("killed during save")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", flaky)
    with pytest.raises(OSError, match="killed"):
        t.train()
    monkeypatch.undo()
    assert torch.load(run / "model_last.pt", weights_only=True)["update"] == 2
    assert not list(run.glob(".*tmp"))
    resumed = _trainer(tiny_train_config(run, demo_corpus, "optim.max_updates=4", "ckpts.last_per_updates=2"))
    assert resumed.start_update == 2


def test_pretrained_in_save_dir_is_picked_up(tmp_path, demo_corpus, caplog):
    run = tmp_path / "pre"
    donor = _trainer(tiny_train_config(tmp_path / "donor", demo_corpus, "optim.max_updates=1"))
    dit_state = donor.accelerator.unwrap_model(donor.model).transformer.state_dict()
    save_released_format(dit_state, run / "pretrained_model_1.safetensors")
    with caplog.at_level(logging.INFO):
        t = _trainer(tiny_train_config(run, demo_corpus, "optim.max_updates=1", "model.use_rl_head=true",
                                       "model.objective=gaussian_nll"))
    assert t.start_update == 0 and "pretrained_model_1.safetensors" in caplog.text
    loaded = t.accelerator.unwrap_model(t.model).transformer
    assert torch.equal(loaded.proj_out.weight, dit_state["proj_out.weight"])
    assert torch.all(loaded.proj_out_ln_sig.weight == 0)  # head initialised, not loaded


def test_requested_logger_that_cannot_start_is_an_error(tmp_path, demo_corpus, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *a, **k):
        if name == "wandb":
            raise ImportError("no wandb here")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    t = _trainer(tiny_train_config(tmp_path / "lg", demo_corpus, "optim.max_updates=1", "ckpts.logger=wandb"))
    with pytest.raises(ImportError, match=r"f5rl\[wandb\]"):
        t.train()


def test_trackio_logger_and_samples_written(tmp_path, demo_corpus, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    t = _trainer(tiny_train_config(tmp_path / "tk", demo_corpus, "optim.max_updates=2", "ckpts.logger=trackio",
                                   "ckpts.log_samples=true", "ckpts.sample_steps=2",
                                   "model.vocoder.griffin_lim_iters=2", "ckpts.save_per_updates=2"))
    summary = t.train()
    assert (tmp_path / "tk" / "samples" / "update_2_gen.wav").is_file()
    assert (tmp_path / "tk" / "samples" / "update_2_ref.wav").is_file()
    assert len(summary.samples) == 2
    assert (tmp_path / "tk" / "config.yaml").is_file()
    assert any((tmp_path / "trackio").rglob("*")), "trackio wrote nothing locally"


def test_bnb_on_cpu_falls_back_with_warning(tmp_path, demo_corpus, caplog):
    with caplog.at_level(logging.WARNING):
        t = _trainer(tiny_train_config(tmp_path / "bnb", demo_corpus, "optim.max_updates=1",
                                       "optim.bnb_optimizer=true"))
    assert "bnb_optimizer" in caplog.text and isinstance(t.optimizer.optimizer, torch.optim.AdamW)


def test_unloadable_vocoder_fails_at_setup_not_at_first_save(tmp_path, demo_corpus):
    cfg = tiny_train_config(tmp_path / "voc", demo_corpus, "ckpts.log_samples=true", "model.vocoder.name=vocos",
                            "model.vocoder.is_local=true", f"model.vocoder.local_path={tmp_path / 'nothing'}")
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        Trainer(cfg).setup()


def test_periodic_validation_logs_val_metrics_and_keeps_best(tmp_path, demo_corpus):
    t = _trainer(tiny_train_config(tmp_path / "val", demo_corpus, "optim.max_updates=2",
                                   f"ckpts.val_list={demo_corpus / 'test_eval.jsonl'}", "ckpts.val_every=2",
                                   "ckpts.val_size=2", "ckpts.val_nfe=4", "ckpts.keep_best_by=val/cer",
                                   "ckpts.keep_best_mode=min", "model.vocoder.griffin_lim_iters=4"))
    t.train()
    row = json.loads((tmp_path / "val" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"val/cer", "val/wer", "val/sim", "val/rtf"} <= set(row)
    assert 0 <= row["val/cer"] <= 2 and -1 <= row["val/sim"] <= 1
    assert (tmp_path / "val" / "model_best.pt").is_file()
    # a resumed run (another sitting) remembers the best value: model_best.pt changes only if beaten
    t2 = _trainer(tiny_train_config(tmp_path / "val", demo_corpus, "optim.max_updates=4",
                                    f"ckpts.val_list={demo_corpus / 'test_eval.jsonl'}", "ckpts.val_every=2",
                                    "ckpts.val_size=2", "ckpts.val_nfe=4", "ckpts.keep_best_by=val/cer",
                                    "ckpts.keep_best_mode=min", "model.vocoder.griffin_lim_iters=4",
                                    "optim.learning_rate=1e-2"))
    assert t2.start_update == 2 and t2.best == pytest.approx(row["val/cer"])
    t2.train()
    cer4 = json.loads((tmp_path / "val" / "metrics.jsonl").read_text().splitlines()[-1])["val/cer"]
    best = torch.load(tmp_path / "val" / "model_best.pt", weights_only=True)
    assert best["update"] == (4 if cer4 < row["val/cer"] else 2)
    assert best["best_metric"] == pytest.approx(min(cer4, row["val/cer"]))
    # validating on other items makes the saved value incomparable: the next run measures it afresh
    t3 = _trainer(tiny_train_config(tmp_path / "val", demo_corpus, "optim.max_updates=6",
                                    f"ckpts.val_list={demo_corpus / 'test_eval.jsonl'}", "ckpts.val_every=2",
                                    "ckpts.val_size=3", "ckpts.val_nfe=4", "ckpts.keep_best_by=val/cer",
                                    "ckpts.keep_best_mode=min", "model.vocoder.griffin_lim_iters=4"))
    assert t3.start_update == 4 and t3.best is None
    t3.train()
    best = torch.load(tmp_path / "val" / "model_best.pt", weights_only=True)
    assert best["update"] == 6 and best["best_metric_on"]["val_size"] == 3


def test_validation_on_more_lists_logs_each_and_their_mean(tmp_path, demo_corpus):
    """ckpts.val_lists: a second list (as the free-text list beside the template list) under its own name,
    and val/all/* (the mean over both lists' items) can keep the best model."""
    rows = [json.loads(ln) for ln in (demo_corpus / "test_eval.jsonl").read_text().splitlines()][2:4]
    for r in rows:  # the tiny char model knows the grammar's letters only: other held-out items, absolute paths
        r.update({k: str(demo_corpus / r[k]) for k in ("prompt_wav", "target_wav") if r.get(k)})
    (tmp_path / "other_eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = _trainer(tiny_train_config(tmp_path / "val2", demo_corpus, "optim.max_updates=1",
                                   f"ckpts.val_list={demo_corpus / 'test_eval.jsonl'}", "ckpts.val_every=1",
                                   f"ckpts.val_lists=[{tmp_path / 'other_eval.jsonl'}]",
                                   "ckpts.val_size=2", "ckpts.val_nfe=4", "ckpts.keep_best_by=val/all/cer",
                                   "ckpts.keep_best_mode=min", "model.vocoder.griffin_lim_iters=4"))
    t.train()
    row = json.loads((tmp_path / "val2" / "metrics.jsonl").read_text().splitlines()[-1])
    for m in ("cer", "sim"):
        both = (row[f"val/{m}"] + row[f"val/other_eval/{m}"]) / 2  # two items each
        assert row[f"val/all/{m}"] == pytest.approx(both)
    assert row["val/sim"] != row["val/other_eval/sim"]
    best = torch.load(tmp_path / "val2" / "model_best.pt", weights_only=True)
    assert best["best_metric"] == pytest.approx(row["val/all/cer"])


def test_max_minutes_stops_after_the_update_that_spends_it_and_saves(tmp_path, demo_corpus, monkeypatch):
    import f5rl.train.trainer as trainer_module

    clock = iter(range(0, 10_000, 25))  # each reading of the clock: 25 s later
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(clock)))
    t = _trainer(tiny_train_config(tmp_path, demo_corpus, "optim.total_updates=50", "optim.max_minutes=1"))
    summary = t.train()
    assert summary.stopped_by_time and 1 < summary.updates < 50
    assert torch.load(tmp_path / "model_last.pt", weights_only=False)["update"] == summary.updates
    assert "stopped by optim.max_minutes" in summary.render()
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["stop_reason"] == "optim.max_minutes" and written["updates"] == summary.updates
    assert written["total_updates"] == 50 and written["num_processes"] == 1
    with pytest.raises(ValueError, match="optim.max_minutes"):
        tiny_train_config(tmp_path, demo_corpus, "optim.max_minutes=0")


def test_a_checkpoint_of_another_stage_in_the_save_dir_starts_a_new_run(tmp_path, demo_corpus, caplog):
    """The F5-TTS RL README copies stage 1's model_last.pt into the stage-2 save dir: stage 2 must start
    from its weights at update 0 with its own optimiser and schedule, not resume stage 1's run."""
    import shutil

    from f5rl.train.rl_trainer import RLTrainer
    from tests.conftest import tiny_rl_config

    stage1 = _trainer(tiny_train_config(tmp_path / "s1", demo_corpus, "optim.max_updates=3",
                                        "model.objective=gaussian_nll", "model.output_dist=gaussian",
                                        "model.use_rl_head=true", "optim.num_warmup_updates=100"))
    stage1.train()
    (tmp_path / "s2").mkdir()
    shutil.copy(tmp_path / "s1" / "model_last.pt", tmp_path / "s2" / "model_last.pt")
    caplog.set_level(logging.INFO)
    t = RLTrainer(tiny_rl_config(tmp_path / "s2", demo_corpus, "optim.max_updates=1", "optim.learning_rate=1e-6",
                                 "optim.num_warmup_updates=0"))
    t.setup()
    assert t.start_update == 0 and t.scheduler.get_last_lr()[0] == pytest.approx(1e-6)
    assert "not by this rl run" in caplog.text and "fresh optimiser at update 0" in caplog.text
    w1 = torch.load(tmp_path / "s1" / "model_last.pt", weights_only=True)["ema_model_state_dict"]
    name = next(k for k in w1 if k.startswith("ema_model.transformer.") and "proj_out" in k)
    assert torch.equal(t.policy.state_dict()[name.removeprefix("ema_model.transformer.")], w1[name])
    t.train()
    saved = torch.load(tmp_path / "s2" / "model_last.pt", weights_only=True)
    assert saved["run_kind"] == {"trainer": "rl", "objective": "grpo"} and saved["update"] == 1
    again = RLTrainer(tiny_rl_config(tmp_path / "s2", demo_corpus, "optim.max_updates=2"))
    again.setup()
    assert again.start_update == 1  # a run of the same stage resumes
    # the copied stage-1 file was kept (model_last.pt now holds stage 2) and is the resumed run's reference
    kept = torch.load(tmp_path / "s2" / "model_start.pt", weights_only=True)
    assert torch.equal(kept["ema_model_state_dict"][name], w1[name])
    assert torch.equal(again.ref.state_dict()[name.removeprefix("ema_model.transformer.")], w1[name])


def test_warmup_ratio_sets_the_warmup_from_the_run_length(tmp_path, demo_corpus):
    t = _trainer(tiny_train_config(tmp_path, demo_corpus, "optim.total_updates=40", "optim.warmup_ratio=0.25",
                                   "optim.num_warmup_updates=3", "optim.learning_rate=1e-3"))
    lrs = []
    for _ in range(12):
        lrs.append(t.scheduler.get_last_lr()[0])
        t.scheduler.step()
    # 10 warm-up updates (0.25 x 40), not num_warmup_updates=3: half the peak at update 5, the peak at 10
    assert lrs[5] == pytest.approx(0.5e-3, rel=1e-3) and lrs[10] == pytest.approx(1e-3) and lrs[11] < 1e-3
    with pytest.raises(ValueError, match="optim.warmup_ratio"):
        tiny_train_config(tmp_path, demo_corpus, "optim.warmup_ratio=1.5")


def test_train_only_warms_the_sigma_head_and_leaves_the_velocity_exactly(tmp_path, demo_corpus):
    """model.train_only=[proj_out_ln_sig]: a σ warmup of an aligned model that cannot undo its alignment."""
    t = _trainer(tiny_train_config(tmp_path / "run", demo_corpus, "optim.max_updates=2", "model.use_rl_head=true",
                                   "model.objective=gaussian_nll", "model.output_dist=gaussian",
                                   "model.train_only=[proj_out_ln_sig.weight,proj_out_ln_sig]",
                                   "optim.learning_rate=1e-2"))
    net = t.policy
    assert {n for n, p in net.named_parameters() if p.requires_grad} == {"proj_out_ln_sig.weight",
                                                                         "proj_out_ln_sig.bias"}
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    t.train()
    changed = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"proj_out_ln_sig.weight", "proj_out_ln_sig.bias"}


@pytest.mark.parametrize("over, match", [
    (["model.train_only=[no_such_module]", "model.use_rl_head=true"], r"model.train_only.*no_such_module.*matches no"),
    # whole names, not prefixes of one: proj_out_ln is not proj_out_ln_sig
    (["model.train_only=[proj_out_ln]", "model.use_rl_head=true"], r"model.train_only.*proj_out_ln.*matches no"),
    (["model.train_only=[proj_out_ln_sig]", "model.use_rl_head=true", "model.lora.enabled=true"],
     r"model.train_only.*model.lora.train_also"),
])
def test_train_only_that_cannot_do_what_it_says_is_refused(tmp_path, demo_corpus, over, match):
    with pytest.raises(ValueError, match=match):
        _trainer(tiny_train_config(tmp_path / "run", demo_corpus, "optim.max_updates=1", *over))

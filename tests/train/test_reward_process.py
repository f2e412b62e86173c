"""Reward models in their own process (rl.rewards.process=server) and scoring overlapped with rollouts."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch

from f5rl.rewards import RewardBatch, build_provider
from f5rl.rewards.wire import batch_from_json, batch_to_json
from f5rl.train.reward_process import RewardServerProcess
from f5rl.train.rl_trainer import RLTrainer
from tests.conftest import tiny_rl_config

PROVIDERS = [{"name": "mel_energy", "weight": 1.0, "config": {"target": -2.0}, "label": "near"},
             {"name": "mel_energy", "weight": 0.5, "config": {"target": -6.0}, "label": "far"}]


def _batch(n=3):
    g = torch.Generator().manual_seed(0)
    mel = [torch.randn(10 + i, 100, generator=g) - 4 for i in range(n)]
    return RewardBatch([torch.randn(2400, generator=g) for _ in range(n)], ["abc"] * n, mel=mel,
                       metadata=[{"gt_audio": torch.randn(480, generator=g), "k": [1, "x"]} for _ in range(n)])


def test_metadata_tensors_cross_the_wire_and_bad_bodies_are_named():
    b = _batch()
    back = batch_from_json(json.loads(json.dumps(batch_to_json(b))))
    for x, y in zip(b.metadata, back.metadata):
        assert torch.equal(x["gt_audio"], y["gt_audio"]) and y["k"] == [1, "x"]
    with pytest.raises(ValueError, match="JSON object"):
        batch_from_json([1, 2])
    with pytest.raises(ValueError, match="sample_rate"):
        batch_from_json({**batch_to_json(b), "sample_rate": 0})
    with pytest.raises(ValueError, match="metadata"):
        batch_from_json({**batch_to_json(b), "metadata": [1, 2, 3]})


def test_server_process_scores_like_the_providers_in_process_and_stops():
    server = RewardServerProcess(PROVIDERS, threads=1)
    url = server.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        specs = server.remote_specs()
        assert [s["label"] for s in specs] == ["near", "far"] and all(s["name"] == "remote" for s in specs)
        from f5rl.rewards.combine import RewardSet

        remote, local = RewardSet.from_config(specs)(_batch()), RewardSet.from_config(PROVIDERS)(_batch())
        assert torch.allclose(remote.reward, local.reward) and not torch.isnan(remote.reward).any()
        assert sorted(remote.metrics) == sorted(local.metrics)
        proc = server.proc
    finally:
        server.stop()
    assert proc.poll() is not None  # the server process is gone
    after = build_provider("remote", {"url": url, "provider": "near", "retries": 0, "timeout": 2})(_batch(1))
    assert math.isnan(float(after.scores[0]))


def test_a_server_that_cannot_start_says_what_it_printed():
    server = RewardServerProcess([{"name": "no_such_provider", "weight": 1.0}], start_timeout=120)
    with pytest.raises(RuntimeError, match=r"(?s)did not start.*unknown reward provider 'no_such_provider'"):
        server.start()


def test_chunked_scoring_needs_the_server_process(tmp_path, demo_corpus):
    with pytest.raises(ValueError, match="rl.rewards.process=server"):
        tiny_rl_config(tmp_path, demo_corpus, "rl.rewards.score_chunks=2")


def _run(cfg):
    t = RLTrainer(cfg)
    try:
        t.setup()
        t.train()
    finally:
        t.close()
    lines = (Path(cfg.ckpts.save_dir) / "metrics.jsonl").read_text().splitlines()
    return t, [json.loads(line) for line in lines]


def test_served_rewards_train_exactly_as_in_process_ones(tmp_path, demo_corpus):
    runs = {}
    for mode in ("inline", "server"):
        cfg = tiny_rl_config(tmp_path / mode, demo_corpus, "optim.max_updates=2", f"rl.rewards.process={mode}")
        t, rows = _run(cfg)
        runs[mode] = (rows, {k: v.clone() for k, v in t.model.state_dict().items()})
        if mode == "server":
            assert t.reward_server.proc is None  # stopped by close()
    (rows_i, w_i), (rows_s, w_s) = runs["inline"], runs["server"]
    assert [r["reward/mean"] for r in rows_i] == pytest.approx([r["reward/mean"] for r in rows_s], abs=1e-6)
    assert max(float((w_i[k].float() - w_s[k].float()).abs().max()) for k in w_i) < 1e-6


def test_score_chunks_roll_out_whole_groups_and_combine_over_the_batch(tmp_path, demo_corpus):
    cfg = tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=2", "rl.rewards.process=server",
                         "rl.rewards.score_chunks=2", "rl.rewards.mode=rank_shaping")
    t = RLTrainer(cfg)
    sizes, orig = [], t.rollout

    def spy(batch, policy, prompts, use_cfg, generator=None, **kw):
        sizes.append(len(batch))
        assert len(set(batch.texts[i] for i in range(0, len(batch), 4))) == len(batch) // 4
        return orig(batch, policy, prompts, use_cfg, generator, **kw)

    t.rollout = spy
    try:
        t.setup()
        t.train()
    finally:
        t.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sizes == [4, 4, 4, 4]  # 2 prompts × group 4, one group per chunk, 2 updates
    for r in rows:
        # rank shaping over the whole batch: ranks 0, 1/7, ..., 1 (std 0.3273); had each chunk of 4
        # been ranked alone, the ranks would be 0, 1/3, 2/3, 1 twice (std 0.3727)
        assert r["reward/std"] == pytest.approx(math.sqrt(63 / 12) / 7, abs=1e-4)
        assert r["time/reward_wait_s"] >= 0


def test_shared_start_noise_reaches_training_rollouts_not_validation(tmp_path, demo_corpus):
    cfg = tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=1", "rl.shared_start_noise=true",
                         f"rl.val_manifest={demo_corpus / 'test.jsonl'}", "rl.val_every=1", "rl.val_size=4")
    t = RLTrainer(cfg)
    starts, orig = [], t.rollout

    def spy(*args, **kw):
        ro = orig(*args, **kw)
        starts.append(ro.states[0])
        return ro

    t.rollout = spy
    t.setup()
    t.train()
    train_x0, val_x0 = starts[1], starts[-1]  # update 0's validation comes first
    assert all(torch.equal(train_x0[0], train_x0[i]) for i in range(1, 4))  # one group of 4
    assert not torch.equal(train_x0[0], train_x0[4])  # the next group
    assert not torch.equal(val_x0[0], val_x0[1])  # validation prompts are independent


def test_awm_trains_toward_the_better_rollouts(tmp_path, demo_corpus):
    """One AWM step lowers the flow-matching error of the above-average rollouts of the group relative
    to the below-average ones (the same rollouts, noise and times before and after the step)."""
    from f5rl.rollout.evaluate import flow_errors

    cfg = tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=1", "rl.loss=awm", "rl.kl_weight=0",
                         "optim.learning_rate=1e-3", "rl.awm_time_range=[0.0,0.1]")
    t = RLTrainer(cfg)
    t.setup()
    seen = {}
    orig = RLTrainer.awm_update

    def spy(self, ro, ref_ro, batch, adv, rewards):
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn(ro.mel.shape, generator=g)
        time = 0.05 * torch.ones(ro.mel.shape[0])
        before = flow_errors(self.policy, ro.mel.float(), x0, time, ro.text, ro.mask, ro.target).detach()
        out = orig(self, ro, ref_ro, batch, adv, rewards)
        after = flow_errors(self.policy, ro.mel.float(), x0, time, ro.text, ro.mask, ro.target).detach()
        seen.update(adv=adv.adv, change=after - before)
        return out

    import f5rl.train.rl_trainer as rl_module

    rl_module.LOSSES["awm"] = spy
    try:
        t.train()
    finally:
        rl_module.LOSSES["awm"] = orig
    good, bad = seen["adv"] > 0, seen["adv"] < 0
    assert good.any() and bad.any()
    assert seen["change"][good].mean() < seen["change"][bad].mean()


@pytest.mark.parametrize("guided, cfg_prob, expected", [("true", 1.0, 2.0), ("false", 1.0, 0.0), ("true", 0.0, 0.0)])
def test_awm_guided_fits_the_velocity_at_the_rollouts_own_guidance(tmp_path, demo_corpus, monkeypatch, guided,
                                                                    cfg_prob, expected):
    """rl.awm_guided=true evaluates the loss at the CFG strength the rollout was sampled with (2 with
    CFG, 0 for a rollout without it); false always fits the conditional velocity."""
    import f5rl.rollout.evaluate as evaluate

    cfg = tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=1", "rl.loss=awm", "rl.inner_epochs=2",
                         "rl.cfg_strength=2.0", f"rl.cfg_prob={cfg_prob}", f"rl.awm_guided={guided}")
    seen = []
    orig = evaluate.awm_step_loss

    def spy(*args, **kwargs):
        seen.append(args[9] if len(args) > 9 else kwargs.get("guidance", 0.0))
        return orig(*args, **kwargs)

    monkeypatch.setattr(evaluate, "awm_step_loss", spy)
    t = RLTrainer(cfg)
    t.setup()
    t.train()
    assert seen == [expected, expected]


def test_awm_drift_time_range_reaches_the_regulariser(tmp_path, demo_corpus, monkeypatch):
    """rl.awm_drift_time_range=[lo, hi]: every AWM step also takes the drift at its own flow times in that
    window (the fit's own stay in rl.awm_time_range, with their term); null: the fit's points only."""
    import f5rl.rollout.evaluate as evaluate

    seen = []
    orig = evaluate.awm_step_loss

    def spy(*args, **kwargs):
        seen.append((args[5].clone(), kwargs.get("drift_time")))
        return orig(*args, **kwargs)

    monkeypatch.setattr(evaluate, "awm_step_loss", spy)
    for k, window in enumerate(("null", "[0.5,0.9]")):
        cfg = tiny_rl_config(tmp_path / str(k), demo_corpus, "optim.max_updates=1", "rl.loss=awm", "rl.inner_epochs=2",
                             "rl.awm_time_range=[0.0,0.1]", f"rl.awm_drift_time_range={window}")
        t = RLTrainer(cfg)
        t.setup()
        t.train()
    assert len(seen) == 4
    for fit_t, _ in seen:
        assert ((fit_t >= 0.0) & (fit_t <= 0.1)).all()
    assert seen[0][1] is None and seen[1][1] is None
    for _, drift_t in seen[2:]:
        assert drift_t is not None and ((drift_t >= 0.5) & (drift_t <= 0.9)).all()


def test_train_rl_through_a_served_reward_survives_the_server_dying_and_coming_back(tmp_path, demo_corpus, caplog):
    """LLaSA's shape: rewards from a server on loopback. Killed after update 2, the scores are NaN with
    a reason and those updates train nothing (counted in the summary); restarted on the same port
    after update 4, scoring and training resume, and the run ends normally."""
    import threading

    from f5rl.rewards.serve import make_server
    from f5rl.train.rl_trainer import RLTrainer
    from tests.conftest import tiny_rl_config

    def serve(port=0):
        srv = make_server(["mel_energy"], {"mel_energy": {"target": -2.0}}, port=port)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv

    srv = serve()
    port = srv.server_address[1]
    events = {}

    class Watched(RLTrainer):
        def update_step(self, batches):
            nonlocal srv
            if self.update_index == 2:  # the server dies
                srv.shutdown()
                srv.server_close()
            if self.update_index == 4:  # and is restarted on the same port
                srv = serve(port)
            out = super().update_step(batches)
            events[self.update_index] = out.get("stats/unscorable_update", 0.0)
            return out

    remote = (f"rl.rewards.providers=[{{name: remote, weight: 1.0, config: {{url: 'http://127.0.0.1:{port}', "
              "provider: mel_energy, retries: 0, timeout: 5}}]")
    t = Watched(tiny_rl_config(tmp_path, demo_corpus, "optim.max_updates=6", "rl.max_unscorable_updates=3", remote))
    t.setup()
    with caplog.at_level(logging.WARNING):
        summary = t.train()
    srv.shutdown()
    srv.server_close()
    print(summary.render())
    assert events == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0, 4: 0.0, 5: 0.0}
    assert summary.updates == 6 and summary.unscorable_updates == 2
    assert "updates with no scorable reward (trained nothing): 2" in summary.render()
    assert "no reward could be scored" in caplog.text and "unreachable" in caplog.text
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m.get("stats/unscorable_update", 0.0) for m in metrics] == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert math.isfinite(metrics[-1]["reward/mean"])
    # the reward curve beside metrics.jsonl (a real PNG)
    assert summary.curves == tmp_path / "curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

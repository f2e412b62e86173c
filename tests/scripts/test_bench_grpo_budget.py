"""benchmarks/bench_grpo.py: a setting that its update cap, not its wall-time budget, ended is flagged; a
setting's prompt placeholders name the bench's files."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_grpo.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_grpo", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budget_note_names_a_setting_stopped_by_its_update_cap():
    note = load_bench().budget_note
    # 400 updates after 50 of 60 minutes: the cap ended it, with its LR schedule at zero
    line = note("fast", 400, 3000.0, 400, 60.0)
    assert line is not None and "fast reached --max_updates 400 after 3000 s" in line and "--max_minutes 60" in line
    # the wall-time budget ended it (3590 s of 3600, as the README's 60-minute runs): no note
    assert note("defaults", 382, 3590.2, 400, 60.0) is None
    # the cap reached just as the time ran out is the time budget's doing
    assert note("tie", 400, 3595.0, 400, 60.0) is None
    assert note("short", 120, 1000.0, 400, 60.0) is None


def test_budget_note_takes_the_trainers_recorded_stop_reason(tmp_path):
    bench = load_bench()
    assert bench.read_summary(tmp_path) is None  # a run trained before summary.json existed
    (tmp_path / "summary.json").write_text(json.dumps(
        {"updates": 400, "wall_seconds": 3598.0, "stop_reason": "optim.total_updates"}))
    summary = bench.read_summary(tmp_path)
    # the schedule's end stopped it 2 s short of 60 minutes: the estimate would call it the clock's doing
    assert bench.budget_note("fast", 400, 3590.0, 400, 60.0) is None
    line = bench.budget_note("fast", 400, 3590.0, 400, 60.0, summary)
    assert line is not None and "after 3598 s" in line
    clock = {"updates": 400, "wall_seconds": 3000.0, "stop_reason": "optim.max_minutes"}
    assert bench.budget_note("timed", 400, 2900.0, 400, 60.0, clock) is None


def test_budget_note_says_which_update_limit_ended_the_run():
    bench = load_bench()
    schedule = {"updates": 400, "wall_seconds": 3000.0, "stop_reason": "optim.total_updates"}
    line = bench.budget_note("fast", 400, 3000.0, 400, 60.0, schedule)
    assert "optim.total_updates" in line and "LR had decayed to zero" in line
    # a setting that overrides optim.max_updates stops before its LR schedule's end: its LR was not zero
    cap = {"updates": 150, "wall_seconds": 1200.0, "stop_reason": "optim.max_updates"}
    line = bench.budget_note("capped", 400, 1200.0, 400, 60.0, cap)
    assert line is not None and "capped stopped at optim.max_updates (150 updates) after 1200 s" in line
    assert "decayed to zero" not in line


def test_setting_placeholders_name_the_bench_prompt_files():
    over = load_bench().setting_overrides(["rl.prompts_manifest={prompts_broad}", "rl.steps=8"],
                                          Path("/w/prompts.jsonl"), Path("/w/prompts_broad.jsonl"))
    assert over == ["rl.prompts_manifest=/w/prompts.jsonl", "rl.prompts_manifest=/w/prompts_broad.jsonl", "rl.steps=8"]
    plain = load_bench().setting_overrides([], Path("/w/p.jsonl"), Path("/w/b.jsonl"))
    assert plain == ["rl.prompts_manifest=/w/p.jsonl"]


def test_agreement_rows_rank_each_list_and_all_items():
    bench = load_bench()
    judges = ["embedded:base", "embedded:tiny.en"]

    def rows(utt, base, tiny):
        return {"utt": utt, "cer1@embedded:base": base, "cer1@embedded:tiny.en": tiny}

    # template item t: tiny.en orders its two samples as base does; free item f: the other way round
    per_seed = [{"template": [rows("t", 0.2, 0.1)], "free": [rows("f", 0.6, 0.5)]},
                {"template": [rows("t", 0.4, 0.3)], "free": [rows("f", 0.2, 0.9)]}]
    out = {a["list"]: a for a in bench.agreement_rows(per_seed, judges)}
    assert list(out) == ["template", "free", "all"]
    assert out["template"]["spearman"] == 1.0 and out["free"]["spearman"] == -1.0
    assert out["all"]["items"] == 2 and out["all"]["spearman"] == 0.0
    # best of 2 by tiny.en: 0.2 (t) and 0.6 (f); by base itself 0.2 and 0.2; a random sample 0.3 and 0.4
    assert abs(out["all"]["best_by_proxy"] - 0.4) < 1e-9 and abs(out["all"]["best_by_judge"] - 0.2) < 1e-9
    assert abs(out["all"]["random"] - 0.35) < 1e-9 and out["free"]["proxy"] == "embedded:tiny.en"


def test_agreement_needs_a_second_judge_before_any_work(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="two judges"):
        load_bench().main(["--agreement", "4", "--judges", "embedded:base", "--data", str(tmp_path / "none"),
                           "--work", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()


def test_agreement_rows_add_the_judge_against_itself_when_retested():
    """With ``retest_ms`` the agreement adds a row for the held-out judge on the same clips a few ms later:
    how far the judge agrees with itself, the ceiling for any other judge's agreement."""
    bench = load_bench()
    judges = ["embedded:base", "embedded:tiny.en"]
    later = "cer1@embedded:base +5 ms"

    def rows(base, tiny, retest):
        return {"utt": "t", "cer1@embedded:base": base, "cer1@embedded:tiny.en": tiny, later: retest}

    # the delayed copies reverse base's order of the two samples; tiny.en keeps it
    per_seed = [{"template": [rows(0.2, 0.1, 0.5)]}, {"template": [rows(0.4, 0.3, 0.1)]}]
    out = bench.agreement_rows(per_seed, judges, retest_ms=5)
    assert [(a["list"], a["proxy"]) for a in out] == [
        ("template", "embedded:tiny.en"), ("template", "embedded:base +5 ms"),
        ("all", "embedded:tiny.en"), ("all", "embedded:base +5 ms")]
    assert out[1]["spearman"] == -1.0 and out[0]["spearman"] == 1.0
    # picked on the delayed copies (sample 2), scored by the judge on the clips themselves: 0.4
    assert abs(out[1]["best_by_proxy"] - 0.4) < 1e-9 and abs(out[1]["best_by_judge"] - 0.2) < 1e-9
    assert [a["proxy"] for a in bench.agreement_rows(per_seed, judges)] == ["embedded:tiny.en"] * 2


def test_only_agreement_and_retest_refuse_what_they_cannot_do_before_any_work(tmp_path):
    import pytest

    bench = load_bench()
    common = ["--judges", "embedded:base,embedded:tiny.en", "--data", str(tmp_path / "none"),
              "--work", str(tmp_path / "w")]
    for extra in (["--only_agreement"], ["--only_agreement", "--agreement", "4", "--setting", "x"],
                  ["--only_agreement", "--agreement", "4", "--dpo"],
                  ["--only_agreement", "--agreement", "4", "--checkpoint", "c", str(tmp_path)]):
        with pytest.raises(SystemExit, match="--only_agreement measures"):
            bench.main([*extra, *common])
    with pytest.raises(SystemExit, match="--retest_ms -1"):
        bench.main(["--agreement", "4", "--retest_ms", "-1", *common])
    assert not (tmp_path / "w").exists()


def test_paired_against_compares_every_system_with_the_named_one_item_by_item():
    bench = load_bench()

    def rows(cers, sims):
        return {"template": [{"utt": f"t{i}", "cer1@base": c, "cer@base": c, "sim": s}
                             for i, (c, s) in enumerate(zip(cers, sims))]}

    measured = {"shipped base": rows([0.5, 0.5, 0.5], [0.8, 0.8, 0.8]),
                "grpo": rows([0.4, 0.3, 0.5], [0.80, 0.79, 0.78]),
                "dpo": rows([0.3, 0.3, 0.3], [0.78, 0.78, 0.78])}
    out = bench.paired_rows(measured, "dpo", ["base"])
    assert [r["system"] for r in out] == ["grpo"]  # neither the reference itself nor the shipped base
    cer = out[0]["lists"]["all"]["cer1@base"]
    # by hand: grpo − dpo per item = +0.1, 0.0, +0.2 → mean +0.1, sd 0.1, SE 0.1/√3
    assert cer["before"] == 0.3 and abs(cer["change"] - 0.1) < 1e-12 and abs(cer["se"] - 0.1 / 3 ** 0.5) < 1e-12
    sim = out[0]["lists"]["template"]["sim"]
    assert abs(sim["change"] - 0.01) < 1e-12  # +0.02, +0.01, 0.00
    assert out[0]["against"] == "dpo"
    lines = bench.paired_lines(out, "base")
    assert "against dpo" in lines[0]
    assert lines[-1] == "| grpo | +0.1000 ± 0.0577 | +0.1000 ± 0.0577 | n/a | n/a | +0.0100 ± 0.0058 |"
    assert bench.paired_lines([], "base") == []


def test_paired_against_refuses_a_system_the_run_does_not_measure_before_any_work(tmp_path):
    import pytest

    bench = load_bench()
    common = ["--data", str(tmp_path / "none"), "--work", str(tmp_path / "w")]
    with pytest.raises(SystemExit, match="--paired_against dpo: name a system this run measures"):
        bench.main(["--paired_against", "dpo", "--setting", "a", *common])
    with pytest.raises(SystemExit, match="--paired_against best-of-8"):
        bench.main(["--paired_against", "best-of-8", "--best_of", "4", *common])
    with pytest.raises(SystemExit, match="--paired_against recipe"):  # --only_agreement trains no setting
        bench.main(["--paired_against", "recipe", "--only_agreement", "--agreement", "4", *common])
    assert not (tmp_path / "w").exists()


def test_after_dpo_needs_the_dpo_round_and_says_so_before_any_work(tmp_path):
    import pytest

    bench = load_bench()
    with pytest.raises(SystemExit, match="--after_dpo trains the settings from the DPO round's weights: add --dpo"):
        bench.main(["--after_dpo", "--setting", "a", "--data", str(tmp_path / "none"), "--work", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()


def test_a_dpo_round_of_another_size_is_cached_and_named_apart():
    bench = load_bench()
    folder, label = bench.dpo_round_name(bench.DPO_GROUPS)
    assert folder.startswith("dpo_") and label == ""
    folder96, label96 = bench.dpo_round_name(96)
    assert folder96 == folder.replace("dpo_", "dpo_g96_") and label96 == ", 96 sentences"


def test_dpo_overrides_are_checked_before_any_work(tmp_path):
    import pytest

    bench = load_bench()
    common = ["--setting", "a", "--data", str(tmp_path / "none"), "--work", str(tmp_path / "w")]
    with pytest.raises(SystemExit, match="--dpo_override trains the DPO round with these keys: add --dpo"):
        bench.main(["--dpo_override", "dpo.drift_weight=100", *common])
    with pytest.raises(SystemExit, match="the drift term needs both"):
        bench.main(["--dpo", "--dpo_override", "dpo.drift_time_range=null", *common])  # a weight, no window
    with pytest.raises(SystemExit, match="dpo.no_such_key"):
        bench.main(["--dpo", "--dpo_override", "dpo.no_such_key=1", *common])
    assert not (tmp_path / "w").exists()


def test_a_dpo_round_with_overrides_is_cached_and_named_apart():
    """--dpo_override: a round trained with other DPO keys has a WORK folder of its own (so --reuse never takes one
    for another) and its row names the overrides. The folder hashes the round's typed config: one config
    (overrides that restate the defaults, 100 or 100.0) gives the same folder; a change of the defaults, a new one."""
    bench = load_bench()
    default, _ = bench.dpo_round_name(bench.DPO_GROUPS)
    off = ["dpo.drift_time_range=null", "dpo.drift_weight=0"]
    folder, label = bench.dpo_round_name(bench.DPO_GROUPS, off)
    assert folder.startswith("dpo_") and folder != default
    assert label == ", dpo.drift_time_range=null dpo.drift_weight=0"
    assert bench.dpo_round_name(bench.DPO_GROUPS, list(off)) == (folder, label)
    assert bench.dpo_round_name(bench.DPO_GROUPS, ["dpo.drift_time_range=null", "dpo.drift_weight=0.0"])[0] == folder
    assert bench.dpo_round_name(bench.DPO_GROUPS, ["dpo.drift_weight=100"])[0] == default  # the default's value
    assert bench.dpo_round_name(bench.DPO_GROUPS, ["optim.seed=667"])[0] not in (default, folder)
    folder96, label96 = bench.dpo_round_name(96, off)
    assert folder96.startswith("dpo_g96_") and folder96 != folder and label96.startswith(", 96 sentences, ")


def test_a_reused_setting_must_have_started_where_this_run_starts(tmp_path):
    """--reuse: a setting's finished run is taken only if it started from this invocation's start (a run trained
    after another DPO round is refused in one line before any work, instead of measured under the wrong name)."""
    import pytest

    bench = load_bench()
    work = tmp_path / "w"
    run = work / "a"
    run.mkdir(parents=True)
    (run / "model_last.pt").write_bytes(b"")
    (run / "config.yaml").write_text(f"ckpts:\n  init_from: {work / 'dpo_00000000_stage1' / 'model_last.pt'}\n")
    with pytest.raises(SystemExit, match=r"--reuse: WORK/a was trained from .*dpo_00000000_stage1.*, but this run's "
                                         r"settings start from .*stage1/model_last.pt: give the setting another name"):
        bench.main(["--setting", "a", "--reuse", "--data", str(tmp_path / "none"), "--work", str(work)])
    assert [p.name for p in work.iterdir()] == ["a"]  # nothing written, trained or measured
    bench.check_reused_start(run, work / "dpo_00000000_stage1" / "model_last.pt")  # its own start: taken


def test_a_reused_dpo_round_cut_short_by_another_time_budget_is_refused(tmp_path):
    """--reuse --dpo: a cached round that its --max_minutes stopped early is taken only at that budget (the folder
    name hashes the round's config, not the bench's --max_minutes); one line says so before any work."""
    import json

    import pytest

    bench = load_bench()
    work = tmp_path / "w"
    train = work / bench.dpo_round_name(bench.DPO_GROUPS)[0] / "iter_0" / "train"
    train.mkdir(parents=True)
    (train / "model_last.pt").write_bytes(b"")
    (train / "config.yaml").write_text("optim:\n  max_minutes: 10.0\n")
    (train / "summary.json").write_text(json.dumps({"updates": 300, "stop_reason": "optim.max_minutes"}))
    with pytest.raises(SystemExit, match=r"--reuse: the DPO round in .* was stopped early by --max_minutes 10.0, "
                                         r"but this run gives 30.0: give --max_minutes 10.0, or drop --reuse"):
        bench.main(["--dpo", "--reuse", "--max_minutes", "30", "--setting", "a", "--data", str(tmp_path / "none"),
                    "--work", str(work)])
    assert [p.name for p in work.iterdir()] == [train.parent.parent.name]  # nothing written, trained or measured
    bench.check_reused_round(train, 10.0)  # the same budget: taken
    (train / "summary.json").write_text(json.dumps({"updates": 1000, "stop_reason": "optim.total_updates"}))
    bench.check_reused_round(train, 30.0)  # a round that ran its whole schedule: taken at any budget


def test_a_setting_is_named_by_where_its_run_started(tmp_path):
    run_label = load_bench().run_label
    for start, label in (("/w/dpo_stage1_sigma/model_last.pt", "DPO + GRPO"),
                         ("/w/dpo_g96_stage1/model_last.pt", "DPO + GRPO"), ("/w/stage1/model_last.pt", "GRPO")):
        (tmp_path / "config.yaml").write_text(f"ckpts:\n  init_from: {start}\n")
        assert run_label(tmp_path) == label


def test_the_dpo_round_trains_before_anything_is_judged(tmp_path, monkeypatch):
    """--dpo: the round trains before the bench judges anything, since Whisper's CTranslate2 threads throttle torch
    in the process that loaded them (measured: 1.9 s per DPO update instead of 1.2), and its seconds are the
    compute that the other systems are compared at."""
    import pytest

    import f5rl.eval.evaluate as evaluate
    import f5rl.eval.held_out as held_out
    import f5rl.prefs.create_text_context_pairs as pairs
    import f5rl.prefs.iterate as iterate

    events, trained_with = [], []

    class Stop(Exception):
        pass

    class Judge:
        def __init__(self, *args, **kwargs):
            self.cfg_strength, self.use_ema, self.retest_ms, self.seed = 2.0, True, 0.0, 0

        def measure(self, *args, **kwargs):
            events.append("judged")
            raise Stop

    def round_(*args, **kwargs):
        events.append("dpo round")
        trained_with.append(args[6])
        raise Stop

    monkeypatch.setattr(held_out, "HeldOutJudge", Judge)
    monkeypatch.setattr(iterate, "run_round", round_)
    monkeypatch.setattr(evaluate, "read_test_list", lambda path: [])
    monkeypatch.setattr(pairs, "demo_rows", lambda *args, **kwargs: [])
    bench = load_bench()
    with pytest.raises(Stop):
        bench.main(["--dpo", "--setting", "a", "--data", str(tmp_path / "data"), "--work", str(tmp_path / "w"),
                    "--dpo_override", "dpo.drift_time_range=[0.1,1.0]", "dpo.drift_weight=100"])
    assert events == ["dpo round"]
    # the round's overrides reach train_dpo after the bench's own
    assert trained_with[0][-2:] == ["dpo.drift_time_range=[0.1,1.0]", "dpo.drift_weight=100"]


def test_a_checkpoint_trained_elsewhere_is_measured_and_paired_without_training(tmp_path, monkeypatch):
    """--checkpoint NAME PATH: a system another invocation trained (say a DPO-then-GRPO chain) is judged beside this
    run's on the same items and seeds, and --paired_against pairs them; with no --setting nothing trains."""
    from types import SimpleNamespace

    import f5rl.eval.evaluate as evaluate
    import f5rl.eval.held_out as held_out
    import f5rl.prefs.create_text_context_pairs as pairs
    import f5rl.scripts.grpo_recipe as recipe

    chain = tmp_path / "chain" / "model_last.pt"
    chain.parent.mkdir()
    chain.write_bytes(b"weights")
    measured = []

    class Judge:
        def __init__(self, judges, **kwargs):
            self.judges, self.cfg_strength, self.use_ema, self.retest_ms, self.seed = judges, 2.0, True, 0.0, 0

        def measure(self, ckpt, items, candidates=1):
            measured.append((Path(ckpt).parent.name, self.cfg_strength))
            cer = 0.3 if Path(ckpt) == chain else 0.5
            return [{"utt": it.utt, "text": "t", **{f"{m}@{j}": cer + 0.01 * i for j in self.judges
                                                    for m in ("cer1", "cer")}, "sim": 0.8}
                    for i, it in enumerate(items)]

    def no_training(*args, **kwargs):
        raise AssertionError("nothing trains with --checkpoint and no --setting")

    monkeypatch.setattr(held_out, "HeldOutJudge", Judge)
    monkeypatch.setattr(recipe, "run_cli", no_training)
    monkeypatch.setattr(evaluate, "read_test_list", lambda path: [SimpleNamespace(utt=f"u{i}") for i in range(3)])
    monkeypatch.setattr(pairs, "demo_rows", lambda *args, **kwargs: [])
    old = tmp_path / "old.pt"
    old.write_bytes(b"other weights")
    out = tmp_path / "out.json"
    results = load_bench().main(["--checkpoint", "chain", str(chain), "--checkpoint", "old", str(old),
                                 "--paired_against", "chain", "--cfg", "1", "--json", str(out),
                                 "--data", str(tmp_path / "data"), "--work", str(tmp_path / "w")])
    assert [r["system"] for r in results] == ["shipped base", "shipped base at CFG 1", "chain at CFG 1",
                                              "old at CFG 1"]
    cer = results[2]["lists"]["all"]["cer1@embedded:base"]
    assert abs(cer["change"] + 0.2) < 1e-12 and abs(cer["before"] - 0.51) < 1e-12  # every item 0.2 below the base
    assert results[2]["checkpoint"] == str(chain)
    paired = json.loads(out.read_text())["paired"]
    assert [p["system"] for p in paired] == ["old"]  # old − chain, item by item: +0.2 each
    assert abs(paired[0]["lists"]["all"]["cer1@embedded:base"]["change"] - 0.2) < 1e-12
    # judged at --cfg like the trained systems; the base at 2 and at --cfg
    assert ("chain", 1.0) in measured and all(c in (1.0, 2.0) for _, c in measured)


def test_a_checkpoint_flag_is_checked_before_any_work(tmp_path):
    import pytest

    bench = load_bench()
    common = ["--data", str(tmp_path / "none"), "--work", str(tmp_path / "w")]
    with pytest.raises(SystemExit, match="--checkpoint chain .*missing.pt: no such file"):
        bench.main(["--checkpoint", "chain", str(tmp_path / "missing.pt"), *common])
    (tmp_path / "m.pt").write_bytes(b"w")
    with pytest.raises(SystemExit, match="--checkpoint dpo: the name of another system"):
        bench.main(["--checkpoint", "dpo", str(tmp_path / "m.pt"), "--dpo", *common])
    with pytest.raises(SystemExit, match="--checkpoint a: the name of another system"):
        bench.main(["--checkpoint", "a", str(tmp_path / "m.pt"), "--setting", "a", *common])
    assert not (tmp_path / "w").exists()

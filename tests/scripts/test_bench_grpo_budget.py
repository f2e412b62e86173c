"""benchmarks/bench_grpo.py flags a setting that its update cap, not its wall-time budget, ended."""

import importlib.util
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

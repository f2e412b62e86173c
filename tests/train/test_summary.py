"""TrainSummary names the config key that ended a run and writes it to the run's folder whole."""

import json

import pytest

from f5rl.train.summary import TrainSummary


@pytest.mark.parametrize(("updates", "by_time", "reason"), [
    (37, True, "optim.max_minutes"),       # the clock ended it, schedule unfinished
    (400, True, "optim.max_minutes"),      # the clock ran out on the last update: still the clock's doing
    (400, False, "optim.total_updates"),   # the LR schedule's end
    (120, False, "optim.max_updates"),     # a cap before the schedule's end
])
def test_stop_reason(updates, by_time, reason):
    s = TrainSummary(updates, 0, 0.5, 10.0, "run", stopped_by_time=by_time, total_updates=400)
    assert s.stop_reason == reason
    assert f"stopped by {reason}" in s.render()


def test_write_is_whole_json_with_the_reason(tmp_path):
    s = TrainSummary(12, 4, None, 61.5, str(tmp_path), curves=tmp_path / "curves.png", total_updates=40,
                     num_processes=2)
    path = s.write(tmp_path)
    d = json.loads(path.read_text())
    assert path.name == "summary.json"
    assert d["stop_reason"] == "optim.max_updates" and d["start_update"] == 4 and d["updates"] == 12
    assert d["curves"] == str(tmp_path / "curves.png") and d["num_processes"] == 2 and d["final_loss"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temp file left behind

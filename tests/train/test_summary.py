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


def test_checkpoints_lists_each_file_on_disk_once(tmp_path):
    """A run saves model_last.pt many times and rotates numbered checkpoints away: the summary names
    each file that is still there, once, in the order of its last save."""
    s = TrainSummary(0, 0, None, 0.0, str(tmp_path))
    last, n20, n40, n60 = (tmp_path / n for n in ("model_last.pt", "model_20.pt", "model_40.pt", "model_60.pt"))
    for path in (n20, last, n40, last, n60, last):
        path.write_bytes(b"x")
        if path == n60:
            n20.unlink()  # CheckpointManager.save rotates (keep_last_n_checkpoints=2) before the summary hears of it
        s.add_checkpoint(path)
    assert s.checkpoints == [str(n40), str(n60), str(last)]
    assert s.render().count("checkpoint ") == 3

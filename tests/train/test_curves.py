"""curves.png beside metrics.jsonl: which curves each kind of run gets."""

import json

import pytest

from f5rl.train.curves import _panel, write_curves


def test_each_kind_of_run_gets_its_panel(tmp_path):
    assert _panel({"loss", "reward/mean", "reward/std", "val/mean_reward"}) == (
        "reward/mean", "reward/std", "val/mean_reward")
    assert _panel({"loss", "val/dpo/accuracy", "val/loss"}) == ("loss", None, "val/dpo/accuracy")
    assert _panel({"loss", "loss/mse"}) == ("loss", None, "val/cer")
    pytest.importorskip("matplotlib")
    m = tmp_path / "metrics.jsonl"
    m.write_text("".join(json.dumps({"update": u, "reward/mean": 1 + 0.1 * u, "reward/std": 0.2,
                                     **({"val/mean_reward": 1.5} if u % 2 == 0 else {})}) + "\n" for u in range(6)))
    out = write_curves(m)
    assert out == tmp_path / "curves.png" and out.read_bytes()[:4] == b"\x89PNG"
    m.write_text(json.dumps({"update": 1, "lr": 1e-3}) + "\n")  # nothing to draw
    assert write_curves(m, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()

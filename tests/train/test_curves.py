"""curves.png beside metrics.jsonl: which curves each kind of run gets."""

import json

import pytest

from f5rl.train.curves import _panel, write_curves


def test_each_kind_of_run_gets_its_panel(tmp_path):
    assert _panel({"loss", "reward/mean", "reward/std", "val/mean_reward"}) == (
        "reward/mean", "reward/std", "val/mean_reward")
    assert _panel({"loss", "val/dpo/accuracy", "val/loss"}) == ("loss", None, "val/dpo/accuracy")
    assert _panel({"loss", "loss/mse"}) == ("loss", None, "val/cer")
    pytest.importorskip("matplotlib", reason="matplotlib (the demo or app extra) draws the curves")
    m = tmp_path / "metrics.jsonl"
    m.write_text("".join(json.dumps({"update": u, "reward/mean": 1 + 0.1 * u, "reward/std": 0.2,
                                     **({"val/mean_reward": 1.5} if u % 2 == 0 else {})}) + "\n" for u in range(6)))
    out = write_curves(m)
    assert out == tmp_path / "curves.png" and out.read_bytes()[:4] == b"\x89PNG"
    m.write_text(json.dumps({"update": 1, "lr": 1e-3}) + "\n")  # nothing to draw
    assert write_curves(m, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def _png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")


def test_a_run_that_validated_twice_gets_its_before_and_after_beside_the_curve(tmp_path):
    from f5rl.train.curves import _first_last, write_before_after

    rows = [{"update": u, "reward/mean": 1.0, **({"val/cer": 0.4 - 0.05 * u, "val/sim": 0.8} if u % 2 == 0 else {})}
            for u in range(5)]
    assert _first_last(rows) == ((0, 4), {"val/cer": (0.4, 0.2), "val/sim": (0.8, 0.8)})
    assert _first_last(rows[:2]) is None  # one validation: nothing to compare
    pytest.importorskip("matplotlib", reason="matplotlib (the demo or app extra) draws the curves")
    m = tmp_path / "metrics.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    narrow = _png_width(write_curves(m))
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _png_width(write_curves(m)) > 1.5 * narrow  # the before/after panel beside the curve
    out = write_before_after({"cer": (0.4, 0.3), "sim": (0.8, 0.79)}, tmp_path / "held_out.png", "held-out",
                             errors={"cer": (0.02, 0.02), "sim": (0.01, 0.01)})
    assert out.read_bytes()[:4] == b"\x89PNG"

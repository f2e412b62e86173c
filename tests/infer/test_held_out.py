"""Paired before/after comparison of held-out measurements (hand-computed)."""

import math

import pytest

from f5rl.eval.held_out import compare, paired_change


def test_paired_change_by_hand():
    before, after = [0.5, 0.2, 0.4, 0.1], [0.3, 0.2, 0.1, 0.2]
    c = paired_change(before, after)
    # diffs −0.2, 0, −0.3, +0.1: mean −0.1; sample sd sqrt(((−.1)²+.1²+(−.2)²+.2²)/3) = sqrt(0.1/3)
    assert c.n == 4 and c.before == pytest.approx(0.3) and c.after == pytest.approx(0.2)
    assert c.change == pytest.approx(-0.1)
    assert c.se == pytest.approx(math.sqrt(0.1 / 3) / 2)
    assert c.relative == pytest.approx(-1 / 3) and c.z == pytest.approx(-0.1 / c.se)


def test_nan_pairs_are_left_out_and_mismatches_refused():
    c = paired_change([0.5, math.nan, 0.1], [0.4, 0.3, 0.3])
    assert c.n == 2 and c.change == pytest.approx(0.05)
    with pytest.raises(ValueError, match="length"):
        paired_change([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_change([1.0, math.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="different items"):
        compare([{"utt": "a", "sim": 1.0}], [{"utt": "b", "sim": 1.0}], "sim")

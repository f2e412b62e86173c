import math

from f5rl.prefs.pairs import Candidate, build_pairs, pareto_order


def C(i, g, cer, sim, dur=2.0):  # noqa: N802
    return Candidate(f"{g}_{i}", g, cer, sim, dur, {"id": f"{g}_{i}"})


def test_pareto_order_fronts_then_cer_then_sim():
    cands = [C(0, "g", 0.2, 0.7), C(1, "g", 0.1, 0.6), C(2, "g", 0.3, 0.5), C(3, "g", 0.1, 0.8), C(4, "g", 0.2, 0.7)]
    # front 0: #3 (dominates all); front 1: #1 (0.1,0.6), #0 and #4 (0.2,0.7) tie; front 2: #2
    assert [c.id for c in pareto_order(cands)] == ["g_3", "g_1", "g_0", "g_4", "g_2"]


def test_every_drop_rule_and_split():
    cands = [
        # ok: best (0.0, 0.9), worst (0.5, 0.4)
        C(0, "ok", 0.0, 0.9), C(1, "ok", 0.5, 0.4), C(2, "ok", 0.2, 0.6),
        # rejected beats chosen on SIM: best by CER has low SIM, worst has higher SIM
        C(0, "tradeoff", 0.0, 0.3), C(1, "tradeoff", 0.4, 0.8), C(2, "tradeoff", 0.2, 0.5),
        # chosen CER above threshold
        C(0, "bad", 0.6, 0.9), C(1, "bad", 0.9, 0.1), C(2, "bad", 0.7, 0.5),
        # duration out of bounds
        C(0, "long", 0.0, 0.9, 40.0), C(1, "long", 0.5, 0.1), C(2, "long", 0.3, 0.3),
        # failed scoring
        C(0, "nan", math.nan, 0.9), C(1, "nan", 0.5, 0.1), C(2, "nan", 0.3, 0.3),
        # incomplete
        C(0, "short", 0.0, 0.9), C(1, "short", 0.5, 0.1),
        # another ok group for the split
        C(0, "ok2", 0.1, 0.8), C(1, "ok2", 0.3, 0.2), C(2, "ok2", 0.2, 0.5),
    ]
    rep = build_pairs(cands, group_size=3, cer_threshold=0.5, max_duration=30.0, val_size=1, seed=0)
    assert rep.groups == 7
    assert rep.dropped == {"rejected_beats_chosen": 1, "chosen_cer_above_threshold": 1, "duration": 1,
                           "failed_scoring": 1, "incomplete_group": 1}
    pairs = rep.train + rep.val
    assert sorted(p["group"] for p in pairs) == ["ok", "ok2"] and len(rep.val) == 1
    ok = next(p for p in pairs if p["group"] == "ok")
    assert ok["chosen"]["id"] == "ok_0" and ok["rejected"]["id"] == "ok_1"
    assert "dropped (duration): 1" in rep.render()


def test_two_per_group():
    cands = [C(i, "g", cer, sim) for i, (cer, sim) in enumerate([(0.0, 0.9), (0.1, 0.8), (0.4, 0.3), (0.5, 0.2)])]
    rep = build_pairs(cands, group_size=4, two_per_group=True)
    assert [(p["chosen"]["id"], p["rejected"]["id"]) for p in rep.train] == [("g_0", "g_3"), ("g_1", "g_2")]

"""The shipped demo base model (issue 8) and DPO from it (issue 6): measured, not assumed."""

import pytest


@pytest.fixture(scope="module")
def base_report(standard_demo_corpus):
    from f5rl.scripts.demo_base import SHIPPED, measure

    report = measure(SHIPPED / "model.safetensors", standard_demo_corpus / "test_eval.jsonl", n_items=24, nfe=32)
    print({k: v for k, v in report.__dict__.items() if k != "per_item"})
    return report


@pytest.mark.slow
def test_shipped_base_model_speaks_and_sounds_like_the_prompt(base_report):
    """Measured when shipped (update 26500): CER 0.380 (median 0.379), 23/24 transcripts closest to
    their own sentence, SIM 0.840 against 0.559 for a different speaker; on the corpus rebuilt inside
    pytest: CER 0.332 (median 0.308), 20/24, SIM 0.835. An unintelligible model scores CER ≈ 0.85 with
    transcripts matching their own sentence no better than chance. Issue 8's CER < 0.30 is not met."""
    r = base_report
    assert r.items == 24
    assert r.cer < 0.5 and r.median_cer < 0.45, r.cer
    assert r.closer_to_own_text >= 18  # it says its own sentence, not just English-sounding noise
    assert r.sim > r.different_speaker_sim + 0.15  # the prompt's voice, not another one


# The DPO round's settings: pairs from 96 train sentences x 4 samples (voices from held-out utterances),
# 16 groups' pairs held out, 120 updates at lr 5e-5 with the CFM loss on the chosen sample weighted 100
# (the DPO gradient carries beta/2 = 250; a weight of 1 leaves the SFT term without effect).
DPO_SETTINGS = ["optim.max_updates=120", "dpo.sft_loss_weight=100"]


def _paired_reward_change(before_dir, after_dir) -> tuple[float, float]:
    """Mean and standard error of the per-sample change of (1 - CER) + SIM between two generations of
    the same rows (same seeds)."""
    import json
    import math

    diffs = []
    for b in sorted(before_dir.glob("*.json")):
        x, y = json.loads(b.read_text()), json.loads((after_dir / b.name).read_text())
        diffs.append((y["sim"] - y["cer"]) - (x["sim"] - x["cer"]))
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return mean, sd / math.sqrt(len(diffs))


@pytest.fixture(scope="module")
def dpo_round(tmp_path_factory, standard_demo_corpus):
    """One offline DPO round from the shipped base: pairs from Whisper CER / resemblyzer SIM of 4 samples
    per train sentence; held-out pairs' implicit accuracy, and fresh samples on held-out sentences
    (same seeds) before and after."""
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
    from f5rl.prefs.generate import generate
    from f5rl.prefs.iterate import iterate
    from f5rl.scripts.demo import base_overrides
    from f5rl.scripts.demo_base import SHIPPED

    tmp = tmp_path_factory.mktemp("dpo")
    data, base = standard_demo_corpus, SHIPPED / "model.safetensors"
    manifest = write_jsonl(demo_rows(data, groups=96, nsamples=4, split="train"), tmp / "pairs.jsonl")
    fresh = write_jsonl(demo_rows(data, groups=32, nsamples=2, seed=99), tmp / "fresh.jsonl")
    before = generate(str(fresh), str(base), str(tmp / "fresh_before"), nfe=16, progress=False)
    r = iterate(str(manifest), str(base), str(tmp / "work"), rounds=1, group_size=4, nfe=16, val_size=16,
                overrides=[*base_overrides(SHIPPED), f"datasets.path={data}", "ckpts.logger=null",
                           "optim.mixed_precision=no", *DPO_SETTINGS])[0]  # one precision per process
    after = generate(str(fresh), r.ckpt, str(tmp / "fresh_after"), nfe=16, progress=False)
    reward = lambda g: (1 - g["mean_cer"]) + g["mean_sim"]  # noqa: E731 - the demo's ASR + SIM reward
    _, se = _paired_reward_change(tmp / "fresh_before", tmp / "fresh_after")
    out = {"pairs": r.pairs, "acc_before": r.val_before["val/dpo/accuracy"],
           "acc_after": r.val_after["val/dpo/accuracy"], "margin_after": r.val_after.get("val/dpo/margin"),
           "reward_before": reward(before), "reward_after": reward(after), "reward_change_se": se,
           "cer": (before["mean_cer"], after["mean_cer"]), "sim": (before["mean_sim"], after["mean_sim"])}
    print(out)
    return out


@pytest.mark.slow
def test_dpo_from_the_shipped_base_forms_pairs_and_trains(dpo_round):
    """Issue 6's acceptance (held-out implicit accuracy > 0.5 and fresh reward not falling) is measured
    here and not met: both move by noise-level amounts, in either direction. With the update-26500 base,
    corpus built by this file alone: 60 train / 16 held-out pairs, accuracy 0 -> 0.5 (mean margin 0.340),
    fresh reward (32 held-out sentences x 2, same seeds) 1.477 -> 1.433 (paired standard error 0.024).
    Same settings in the full CI session (its corpus audio differs slightly: espeak-ng keeps state):
    56 / 16 pairs, accuracy 0 -> 0.4375 (margin -0.116), reward 1.481 -> 1.483 (SE 0.023). Asserted: the
    pairs form from real rewards, training moves the held-out margins, the model is not broken."""
    d = dpo_round
    assert d["pairs"]["val"] >= 12 and d["pairs"]["train"] >= 40
    assert d["acc_after"] > d["acc_before"]  # before, policy == reference: every margin is exactly 0
    assert d["reward_after"] > d["reward_before"] - 0.15  # a broken model loses far more than this

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
    """Measured when shipped (update 19500): CER 0.367 (median 0.323), 21/24 transcripts closest to
    their own sentence, SIM 0.835 against 0.559 for a different speaker. An unintelligible model scores
    CER ≈ 0.85 with transcripts matching their own sentence no better than chance."""
    r = base_report
    assert r.items == 24
    assert r.cer < 0.5 and r.median_cer < 0.45, r.cer
    assert r.closer_to_own_text >= 18  # it says its own sentence, not just English-sounding noise
    assert r.sim > r.different_speaker_sim + 0.15  # the prompt's voice, not another one


@pytest.fixture(scope="module")
def dpo_round(tmp_path_factory, standard_demo_corpus):
    """One offline DPO round from the shipped base: pairs from Whisper CER / resemblyzer SIM of 4 samples
    per held-out text; held-out pairs' implicit accuracy and fresh samples on other held-out prompts
    (same seeds) before and after."""
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
    from f5rl.prefs.generate import generate
    from f5rl.prefs.iterate import iterate
    from f5rl.scripts.demo import base_overrides
    from f5rl.scripts.demo_base import SHIPPED

    tmp = tmp_path_factory.mktemp("dpo")
    data, base = standard_demo_corpus, SHIPPED / "model.safetensors"
    rows = demo_rows(data, groups=48, nsamples=4)
    manifest = write_jsonl(rows, tmp / "pairs.jsonl")
    fresh = write_jsonl(demo_rows(data, groups=32, nsamples=2, seed=99, exclude={r["text"] for r in rows}),
                        tmp / "fresh.jsonl")
    before = generate(str(fresh), str(base), str(tmp / "fresh_before"), nfe=16, progress=False)
    r = iterate(str(manifest), str(base), str(tmp / "work"), rounds=1, group_size=4, nfe=16, val_size=12,
                overrides=[*base_overrides(SHIPPED), f"datasets.path={data}", "ckpts.logger=null",
                           "optim.max_updates=60", "optim.mixed_precision=no"])[0]  # one precision per process
    after = generate(str(fresh), r.ckpt, str(tmp / "fresh_after"), nfe=16, progress=False)
    reward = lambda g: (1 - g["mean_cer"]) + g["mean_sim"]  # noqa: E731 - the demo's ASR + SIM reward
    out = {"pairs": r.pairs, "acc_before": r.val_before["val/dpo/accuracy"],
           "acc_after": r.val_after["val/dpo/accuracy"], "reward_before": reward(before),
           "reward_after": reward(after), "cer": (before["mean_cer"], after["mean_cer"]),
           "sim": (before["mean_sim"], after["mean_sim"])}
    print(out)
    return out


@pytest.mark.slow
def test_dpo_from_the_shipped_base_forms_pairs_and_raises_held_out_accuracy(dpo_round):
    """Issue 6's acceptance is measured here but not met: with the update-19500 base, 48 groups x 4
    samples gave 28 train / 12 held-out pairs; after 60 updates the held-out implicit accuracy (errors
    averaged over 8 stratified draws) went 0 -> 0.333 and the fresh-sample reward (32 prompts x 2, no
    pair text among them) 1.408 -> 1.401. Earlier runs with the update-10500 base and 6 held-out pairs:
    0 -> 0.5 / 0.667. Asserted: what held in every run; the numbers are printed."""
    d = dpo_round
    assert d["pairs"]["val"] >= 8 and d["pairs"]["train"] >= 16
    assert d["acc_after"] > d["acc_before"]

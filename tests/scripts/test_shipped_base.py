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
    """Measured when shipped: CER 0.413 (median 0.348), 21/24 transcripts closest to their own
    sentence, SIM 0.829 against 0.559 for a different speaker. An unintelligible model scores
    CER ≈ 0.85 with transcripts matching their own sentence no better than chance."""
    r = base_report
    assert r.items == 24
    assert r.cer < 0.5 and r.median_cer < 0.45, r.cer
    assert r.closer_to_own_text >= 18  # it says its own sentence, not just English-sounding noise
    assert r.sim > r.different_speaker_sim + 0.15  # the prompt's voice, not another one


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 8's target CER < 0.30 is not reached yet (0.413 after ~95 min "
                                       "of CPU training); `make demo-base` resumes the run")
def test_shipped_base_model_reaches_the_cer_target(base_report):
    assert base_report.cer < 0.30


@pytest.mark.slow
def test_dpo_from_the_shipped_base_on_real_rewards(tmp_path, standard_demo_corpus):
    """One offline DPO round from the shipped base: pairs from Whisper CER / resemblyzer SIM of 4 samples
    per held-out text; held-out pairs' implicit accuracy and fresh samples on other held-out prompts
    (same seeds) before and after. Measured when written: 12 train / 6 held-out pairs, accuracy
    0.000 -> 0.667, fresh CER 0.443 -> 0.417, SIM 0.816 -> 0.806, reward 1.373 -> 1.389."""
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
    from f5rl.prefs.generate import generate
    from f5rl.prefs.iterate import iterate
    from f5rl.scripts.demo import base_overrides
    from f5rl.scripts.demo_base import SHIPPED

    data, base = standard_demo_corpus, SHIPPED / "model.safetensors"
    manifest = write_jsonl(demo_rows(data, groups=24, nsamples=4), tmp_path / "pairs.jsonl")
    fresh = write_jsonl(demo_rows(data, groups=16, nsamples=2, seed=99), tmp_path / "fresh.jsonl")
    before = generate(str(fresh), str(base), str(tmp_path / "fresh_before"), nfe=16, progress=False)
    r = iterate(str(manifest), str(base), str(tmp_path / "work"), rounds=1, group_size=4, nfe=16, val_size=6,
                overrides=[*base_overrides(SHIPPED), f"datasets.path={data}", "ckpts.logger=null",
                           "optim.max_updates=60"])[0]
    after = generate(str(fresh), r.ckpt, str(tmp_path / "fresh_after"), nfe=16, progress=False)
    reward = lambda g: (1 - g["mean_cer"]) + g["mean_sim"]  # noqa: E731 - the demo's ASR + SIM reward
    acc_b, acc_a = r.val_before["val/dpo/accuracy"], r.val_after["val/dpo/accuracy"]
    print(f"pairs {r.pairs}; held-out implicit accuracy {acc_b:.3f} -> {acc_a:.3f}; fresh samples CER "
          f"{before['mean_cer']:.3f} -> {after['mean_cer']:.3f}, SIM {before['mean_sim']:.3f} -> "
          f"{after['mean_sim']:.3f}, reward {reward(before):.3f} -> {reward(after):.3f}")
    assert r.pairs["val"] >= 4
    assert acc_a > 0.5 and acc_a > acc_b
    assert reward(after) >= reward(before)

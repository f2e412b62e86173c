"""The shipped demo base model (issue 8): measured, not assumed. Its own module, apart from the DPO round
from it (``test_shipped_base.py``): with ``--dist loadscope`` a module runs on one worker, and the round, the
suite's longest test, then runs alone on its worker while this report runs on the other."""

import pytest


@pytest.fixture(scope="module")
def base_report(standard_demo_corpus):
    from f5rl.eval.base_model import SHIPPED, measure

    report = measure(SHIPPED / "model.safetensors", standard_demo_corpus / "test_eval.jsonl", n_items=24, nfe=32)
    print({k: v for k, v in report.__dict__.items() if k != "per_item"})
    return report


@pytest.mark.slow(seconds=103)
def test_shipped_base_model_speaks_and_sounds_like_the_prompt(base_report):
    """Measured when shipped (update 26500): CER 0.380 (median 0.379), 23/24 transcripts closest to
    their own sentence, SIM 0.840 against 0.559 for a different speaker; on the corpus rebuilt inside
    pytest: CER 0.332 (median 0.308), 20/24, SIM 0.835. An unintelligible model scores CER ≈ 0.85 with
    transcripts matching their own sentence no better than chance. Issue 8's CER < 0.30 is not met."""
    r = base_report
    print(f"shipped base on 24 held-out items: CER {r.cer:.3f} (median {r.median_cer:.3f}), "
          f"{r.closer_to_own_text}/24 closest to their own sentence, SIM {r.sim:.3f} "
          f"(different speaker {r.different_speaker_sim:.3f})")
    assert r.items == 24
    # a regression guard, not the target: the measured 0.332 (median 0.308) plus a margin of 0.07;
    # the target CER < 0.30 of issue 8 is not met
    measured_cer, measured_median, margin = 0.332, 0.308, 0.07
    assert r.cer < measured_cer + margin and r.median_cer < measured_median + margin, r.cer
    assert r.closer_to_own_text >= 18  # it says its own sentence, not just English-sounding noise
    assert r.sim > r.different_speaker_sim + 0.15  # the prompt's voice, not another one

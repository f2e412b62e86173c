"""The shipped demo base model speaks (issue 8's acceptance): measured, not assumed."""

import pytest


@pytest.mark.slow
def test_shipped_base_model_is_intelligible_and_sounds_like_the_prompt(tmp_path_factory):
    from f5rl.data.prepare_demo import build
    from f5rl.scripts.demo_base import SHIPPED, measure

    # the standard demo corpus (seed 1234, 1200 sentences): its held-out sentences were never trained on
    data = tmp_path_factory.mktemp("corpus") / "demo_char"
    build(data, sentences=1200, report_similarity=False)
    report = measure(SHIPPED / "model.safetensors", data / "test_eval.jsonl", n_items=24, nfe=32)
    print(report)
    assert report.items == 24
    assert report.cer < 0.30, report
    assert report.sim > report.different_speaker_sim, report

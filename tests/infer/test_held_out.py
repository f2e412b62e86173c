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


def test_word_hits_follow_the_wer_alignment():
    from f5rl.rewards.text_metrics import word_hits

    # "quick" deleted, "fox" substituted by "box", an inserted "big": hits are the aligned equal words only
    assert word_hits("The quick brown fox!", "the big brown box") == [
        ("the", True), ("quick", False), ("brown", True), ("fox", False)]
    # a word said elsewhere in the sentence is not a hit where it belongs: "cat" aligns with "dog" at the end
    assert word_hits("cat sat on the dog", "sat on the cat") == [
        ("cat", False), ("sat", True), ("on", True), ("the", True), ("dog", False)]
    assert word_hits("Hello there", "") == [("hello", False), ("there", False)]
    assert word_hits("", "anything") == []


def test_recall_splits_known_from_novel_words(tmp_path):
    from datasets import Dataset

    from f5rl.eval.held_out import corpus_words, recall_by_familiarity

    Dataset.from_dict({"text": ["The cat sat.", "A dog, the END?"], "audio_path": ["a.wav", "b.wav"]}
                      ).save_to_disk(str(tmp_path / "raw"))
    known = corpus_words(tmp_path)
    assert known == {"the", "cat", "sat", "a", "dog", "end"}
    rows = [{"text": "The cat ate a plum.", "transcript@j": "the hat ate a plum"},
            {"text": "The dog slept.", "transcript@j": "the dog"}]
    r = recall_by_familiarity(rows, "j", known)
    # known: the, cat, a, the, dog -> hits the, a, the, dog = 4 of 5; novel: ate, plum, slept -> 2 of 3
    assert (r["known"].hits, r["known"].words) == (4, 5) and r["known"].recall == pytest.approx(0.8)
    assert (r["novel"].hits, r["novel"].words) == (2, 3)


def test_judge_synthesises_at_its_inference_guidance(tmp_path):
    """The judge passes its ``cfg_strength`` (and nfe, seeds) to every batched synthesis: the bench's
    ``--cfg`` measures a trained policy at a guidance other than the default 2."""
    import numpy as np
    import soundfile as sf
    import torch

    from f5rl.eval.evaluate import TestItem
    from f5rl.eval.held_out import HeldOutJudge

    sf.write(tmp_path / "p.wav", np.zeros(24000, dtype=np.float32), 24000)
    items = [TestItem(f"u{i}", "prompt", str(tmp_path / "p.wav"), f"text {i}") for i in range(3)]
    calls = []

    class RecordingTTS:
        def synthesize_batch(self, refs, ref_texts, texts, seeds, **kw):
            calls.append((list(seeds), kw))
            return [type("S", (), {"audio": torch.full((10,), float(s))})() for s in seeds]

    for cfg in (2.0, 0.0):
        calls.clear()
        judge = HeldOutJudge(("embedded:tiny.en",), nfe=8, seed=5, batch=2, cfg_strength=cfg)
        audio = judge.synthesize(RecordingTTS(), items)
        assert [a[0].item() for a in audio] == [5.0, 5.0, 5.0]
        assert [c[0] for c in calls] == [[5, 5], [5]]
        assert all(c[1] == {"nfe": 8, "cfg_strength": cfg} for c in calls)
    assert HeldOutJudge(("embedded:tiny.en",)).cfg_strength == 2.0


def test_judge_measures_the_weights_it_is_told(monkeypatch):
    """``use_ema=False`` measures a trainer checkpoint's online weights (the bench's ``--weights online``)."""
    from f5rl.eval.evaluate import TestItem
    from f5rl.eval.held_out import HeldOutJudge
    from f5rl.infer.tts import TTS

    loaded = []
    monkeypatch.setattr(TTS, "from_checkpoint",
                        classmethod(lambda cls, ckpt, **kw: loaded.append((ckpt, kw)) or "tts"))
    items = [TestItem("u0", "prompt", "p.wav", "text")]
    for use_ema in (True, False):
        judge = HeldOutJudge(("embedded:tiny.en",), use_ema=use_ema)
        monkeypatch.setattr(judge, "synthesize", lambda tts, its, candidates=1: [tts] * len(its))
        monkeypatch.setattr(judge, "score",
                            lambda its, audios: [{"utt": it.utt, "audio": a} for it, a in zip(its, audios)])
        assert judge.measure("ckpt.pt", items) == [{"utt": "u0", "audio": "tts"}]
    assert loaded == [("ckpt.pt", {"device": "cpu", "use_ema": True}), ("ckpt.pt", {"device": "cpu", "use_ema": False})]
    assert HeldOutJudge(("embedded:tiny.en",)).use_ema


def _seed_rows(judge: list[list[float]], proxy: list[list[float]]) -> list[list[dict]]:
    """Rows of seed k for items i: judge[i][k], proxy[i][k]."""
    return [[{"utt": f"u{i}", "cer@j": judge[i][k], "cer@p": proxy[i][k]} for i in range(len(judge))]
            for k in range(len(judge[0]))]


def test_judge_agreement_by_hand():
    from f5rl.eval.held_out import judge_agreement

    judge = [[0.1, 0.3, 0.5], [0.4, 0.2, 0.0], [0.2, 0.2, 0.2], [0.0, 0.5, 0.5]]
    proxy = [[0.2, 0.4, 0.6], [0.1, 0.2, 0.3], [0.5, 0.1, 0.3], [0.3, 0.3, 0.9]]
    a = judge_agreement(_seed_rows(judge, proxy), proxy="cer@p", judge="cer@j")
    # within-item Spearman: +1, −1, undefined (the judge gives all three 0.2: left out), and with ties
    # (average ranks) judge [1, 2.5, 2.5] vs proxy [1.5, 1.5, 3]: 0.75 / 1.5 = 0.5
    assert a.items == 4 and a.ranked_items == 3 and a.samples == 3
    assert a.spearman == pytest.approx(1 / 6)
    assert a.spearman_se == pytest.approx(math.sqrt(((5 / 6) ** 2 + (7 / 6) ** 2 + (1 / 3) ** 2) / 2) / math.sqrt(3))
    # a random sample: the mean over items of each item's mean; best-of-3 by the proxy (ties: the first sample)
    # picks 0.1, 0.4, 0.2, 0.0; by the judge itself 0.1, 0.0, 0.2, 0.0
    assert a.random == pytest.approx((0.3 + 0.2 + 0.2 + 1 / 3) / 4)
    assert a.best_by_proxy == pytest.approx(0.7 / 4) and a.best_by_judge == pytest.approx(0.3 / 4)
    assert a.proxy_gain == pytest.approx(0.175 / a.random - 1)


def test_judge_agreement_refuses_what_it_cannot_rank():
    from f5rl.eval.held_out import judge_agreement

    rows = _seed_rows([[0.1, 0.2]], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="at least 2 samples"):
        judge_agreement(rows[:1], proxy="cer@p", judge="cer@j")
    rows[1][0]["utt"] = "other"
    with pytest.raises(ValueError, match="same items"):
        judge_agreement(rows, proxy="cer@p", judge="cer@j")


def test_judge_retests_itself_on_delayed_copies(tmp_path):
    """``retest_ms`` transcribes every clip again with the held-out judge, after that many ms of silence:
    the rows carry both verdicts, under the key :func:`retest_name` gives (the bench's ``--retest_ms``)."""
    import numpy as np
    import soundfile as sf
    import torch

    from f5rl.eval.evaluate import TestItem
    from f5rl.eval.held_out import HeldOutJudge, retest_name
    from f5rl.rewards.base import RewardOutput

    sf.write(tmp_path / "p.wav", np.zeros(2400, dtype=np.float32), 24000)
    items = [TestItem(f"u{i}", "prompt", str(tmp_path / "p.wav"), "abcd") for i in range(2)]
    seen = []

    class ShiftSensitiveASR:  # hears "abcd" in a clip that starts with speech, "abxy" in one that starts silent
        def __call__(self, batch):
            seen.append([a.clone() for a in batch.audio])
            self.last_transcripts = ["abxy" if float(a[0]) == 0 else "abcd" for a in batch.audio]

    judge = HeldOutJudge(("embedded:base", "embedded:tiny.en"), retest_ms=5)
    judge.judges = {"embedded:base": ShiftSensitiveASR(), "embedded:tiny.en": ShiftSensitiveASR()}
    judge.sim = lambda batch: RewardOutput(torch.ones(len(batch)))
    audio = [torch.full((10,), 0.5), torch.full((12,), -0.5)]
    rows = judge.score(items, audio)
    later = retest_name("embedded:base", 5)
    assert later == "embedded:base +5 ms"
    for row in rows:
        assert row["cer1@embedded:base"] == 0.0 and row["cer1@embedded:tiny.en"] == 0.0
        assert row[f"cer1@{later}"] == 0.5 and row[f"wer@{later}"] == 1.0 and row[f"transcript@{later}"] == "abxy"
    # three passes: base and tiny.en on the clips, then base alone on the clips 120 samples (5 ms at 24 kHz) later
    assert len(seen) == 3
    assert [len(a) for a in seen[2]] == [130, 132]
    assert torch.equal(seen[2][0][:120], torch.zeros(120)) and torch.equal(seen[2][0][120:], audio[0])
    assert HeldOutJudge(("embedded:base",)).retest_ms == 0.0  # off unless asked: it costs a judge pass

"""Stage-2 synthesis prompts (rl.prompts_manifest): reading, batching and rolling out."""

import json

import pytest
import torch

from f5rl.data.prompts import PromptSet, read_prompt_manifest


def _manifest(tmp_path, demo_corpus, groups=3):
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl

    return write_jsonl(demo_rows(demo_corpus, groups=groups, nsamples=4, split="train"), tmp_path / "prompts.jsonl")


def test_rows_are_distinct_prompt_text_pairs_and_bad_lines_are_named(tmp_path, demo_corpus):
    rows = read_prompt_manifest(_manifest(tmp_path, demo_corpus))
    assert len(rows) == 3  # 4 samples of each pair count once
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context_audio": "a.wav", "context_text": "hi", "text": "yo"}\n\n{"context_audio": "a.wav"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: missing context_text, text"):
        read_prompt_manifest(bad)
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not JSON"):
        read_prompt_manifest(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_prompt_manifest(tmp_path / "nope.jsonl")


def test_a_batch_is_the_prompt_then_room_for_the_text(tmp_path, demo_corpus):
    from f5rl.text.tokenizer import build_tokenizer

    tok = build_tokenizer("char", demo_corpus / "vocab.txt")
    ps = PromptSet(read_prompt_manifest(_manifest(tmp_path, demo_corpus)), tok)
    batch, prompts = ps.batch([0, 2])
    assert torch.equal(batch.ref_lengths, prompts) and (batch.mel_lengths > prompts).all()
    for i in range(2):
        assert batch.mel[i, prompts[i]:].abs().sum() == 0  # nothing after the prompt: the model writes it
        assert batch.mel[i, : prompts[i]].abs().sum() > 0
        assert batch.texts[i] == f"{ps.rows[[0, 2][i]].prompt_text} {ps.rows[[0, 2][i]].text}"


def test_stage2_rolls_out_synthesis_prompts(tmp_path, demo_corpus):
    from f5rl.train.rl_trainer import RLTrainer
    from tests.conftest import tiny_rl_config

    manifest = _manifest(tmp_path, demo_corpus)
    cfg = tiny_rl_config(tmp_path / "run", demo_corpus, "optim.max_updates=2", f"rl.prompts_manifest={manifest}")
    t = RLTrainer(cfg)
    seen, refs = [], []
    orig_rollout, orig_vocode = t.rollout, None

    def spy(batch, policy, prompts, use_cfg, generator=None, **kw):
        seen.append((list(batch.texts), prompts.clone(), batch.ref_lengths.clone()))
        return orig_rollout(batch, policy, prompts, use_cfg, generator, **kw)

    t.rollout = spy
    t.setup()
    orig_vocode = t.scorer.vocode
    t.scorer.vocode = lambda mels: refs.append([m.shape[0] for m in mels]) or orig_vocode(mels)
    t.train()
    rows = {f"{r['context_text']} {r['text']}" for r in map(json.loads, manifest.read_text().splitlines())}
    for texts, prompts, ref_lengths in seen:
        assert set(texts) <= rows  # every rollout says a manifest text in a manifest voice
        assert torch.equal(prompts.cpu(), ref_lengths.cpu())  # the whole prompt is given
    assert refs[1] == seen[0][2][::4].tolist()  # the speaker reference is the prompt audio, once per group


@pytest.mark.parametrize("span", ["auto", "full"])
def test_synthesis_rollouts_are_scored_on_what_inference_returns(tmp_path, demo_corpus, span):
    """With synthesis prompts the reward hears the generated speech alone and checks it against the new
    text (what TTS inference returns and the held-out judge scores); the prompt's copied frames and
    transcript would dilute CER and SIM. rl.rewards.score_span=full keeps the old whole-output scoring."""
    from f5rl.train.rl_trainer import RLTrainer
    from tests.conftest import tiny_rl_config

    manifest = _manifest(tmp_path, demo_corpus)
    cfg = tiny_rl_config(tmp_path / "run", demo_corpus, "optim.max_updates=1", f"rl.prompts_manifest={manifest}",
                         f"rl.rewards.score_span={span}")
    t = RLTrainer(cfg)
    t.setup()
    seen, vocoded, scored = [], [], []
    orig_rollout, orig_vocode, orig_score = t.rollout, t.scorer.vocode, t.scorer.rewards.score

    def spy(batch, policy, prompts, use_cfg, generator=None, **kw):
        ro = orig_rollout(batch, policy, prompts, use_cfg, generator, **kw)
        seen.append((batch, ro))
        return ro

    t.rollout = spy
    t.scorer.vocode = lambda mels: vocoded.append([m.shape[0] for m in mels]) or orig_vocode(mels)
    t.scorer.rewards.score = lambda rb: scored.append(rb) or orig_score(rb)
    t.train()
    (batch, ro), rb = seen[0], scored[0]
    rows = {f"{r.prompt_text} {r.text}": r.text for r in t.prompt_set.rows}
    durations, prompts = ro.durations.cpu(), ro.prompt_lens.cpu()
    if span == "auto":
        assert rb.texts == [rows[x] for x in batch.texts]  # the new text alone
        assert vocoded[0] == (durations - prompts).tolist()  # the generated frames alone
    else:
        assert rb.texts == list(batch.texts)  # prompt transcript + new text
        assert vocoded[0] == durations.tolist()
    assert vocoded[1] == prompts[::4].tolist()  # the speaker reference: the prompt audio, once per group

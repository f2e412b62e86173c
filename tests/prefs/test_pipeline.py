"""The offline preference pipeline on the tiny model and the demo corpus."""

import hashlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from f5rl.prefs.create_text_context_pairs import broad_text_twins, demo_rows, make_rows, write_jsonl


def test_text_context_rows_mix_and_repeat(tmp_path):
    ctx = [{"audio_path": "/a.wav", "text": "hi there", "speaker": "x"}]
    rows = make_rows(["hard one"], ["easy one", "easy two"], ctx, ["whisper softly"], nsamples=3)
    assert len(rows) == 9 and len({r["group"] for r in rows}) == 3
    assert sum(r["context_type"] == "text" for r in rows) == 3  # every other regular text
    assert all(r["context_audio"] == "/a.wav" for r in rows if r["context_type"] == "audio")
    with pytest.raises(ValueError, match="nsamples_perpair"):
        make_rows(["x"], [], ctx, [], nsamples=0)
    prompts = make_rows(["x", "y"], [], ctx, [], nsamples=1)  # NeMo's GRPO prompt list: one row per text
    assert [r["group"] for r in prompts] == ["g00000", "g00001"]


def test_nemo_recipe_commands_run_as_written(tmp_path, demo_corpus):
    """NeMo MagpieTTS DPO recipe: create_text_contextpairs.py and create_preference_pairs.py flags."""
    import soundfile as sf

    from f5rl.prefs import create_preference_pairs, create_text_context_pairs
    from tests.conftest import speech_like

    d = tmp_path / "DPOPairsInputData"
    d.mkdir()
    sf.write(d / "ctx.wav", speech_like(1.0, sr=24000), 24000)
    (d / "challenging_texts_nemollm.txt").write_text("a hard one\nanother hard one\n")
    (d / "regular_texts_for_audiocontext.txt").write_text("easy audio\n")
    (d / "regular_texts_for_textcontext.txt").write_text("easy text\n")
    (d / "audio_context_list.json").write_text(json.dumps([{"audio_path": "ctx.wav", "text": "hi", "speaker": "s"}]))
    (d / "text_context_list.txt").write_text("Speaker and Emotion: calm\n")
    args = ["--challenging_texts", d / "challenging_texts_nemollm.txt",
            "--regular_texts_for_audiocontext", d / "regular_texts_for_audiocontext.txt",
            "--regular_texts_for_textcontext", d / "regular_texts_for_textcontext.txt",
            "--audio_contexts", d / "audio_context_list.json", "--text_contexts", d / "text_context_list.txt",
            "--output_manifest", d / "text_context_pairs_v2.json"]
    create_text_context_pairs.main([str(a) for a in [*args, "--nsamples_perpair", "6"]])
    rows = [json.loads(ln) for ln in (d / "text_context_pairs_v2.json").read_text().splitlines()]
    assert len(rows) == 4 * 6 and len({r["group"] for r in rows}) == 4
    by_text = {r["text"]: r["context_type"] for r in rows}
    assert by_text == {"a hard one": "audio", "another hard one": "audio", "easy audio": "audio", "easy text": "text"}
    assert rows[0]["context_audio"] == str(d / "ctx.wav")
    create_text_context_pairs.main([str(a) for a in [*args, "--nsamples_perpair", "1"]])  # the GRPO prompt list
    assert len((d / "text_context_pairs_v2.json").read_text().splitlines()) == 4

    # create_preference_pairs.py --input_manifest ... --generated_audio_dir ... --group_size --cer_threshold --val_size
    gen = tmp_path / "audios"
    gen.mkdir()
    manifest = tmp_path / "dpo_textcontext_pairs.json"
    rows = [{"id": f"g{g}_s{k}", "group": f"g{g}", "text": f"text {g}"} for g in range(4) for k in range(3)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows[:9]))  # group 3 is not in the manifest
    for r in rows:
        g, k = int(r["group"][1:]), int(r["id"][-1])
        (gen / f"{r['id']}.json").write_text(json.dumps({**r, "audio_path": f"{r['id']}.wav", "cer": 0.1 * k,
                                                         "sim": 0.9 - 0.1 * k, "duration": 1.0 + g,
                                                         "context_audio": "c.wav", "context_text": "hi"}))
    create_preference_pairs.main(["--input_manifest", str(manifest), "--generated_audio_dir", str(gen),
                                  "--group_size", "3", "--cer_threshold", "0.01", "--val_size", "1"])
    out = tmp_path / "dpo_textcontext_pairs_pairs"
    train = [json.loads(ln) for ln in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(ln) for ln in (out / "val.jsonl").read_text().splitlines()]
    assert len(train) == 2 and len(val) == 1 and {r["group"] for r in train + val} == {"g0", "g1", "g2"}
    assert all(r["chosen"]["cer"] == 0.0 and r["rejected"]["cer"] == pytest.approx(0.2) for r in train + val)


def test_demo_rows_for_fresh_prompts_exclude_the_pair_texts(demo_corpus):
    pairs = demo_rows(demo_corpus, groups=2, nsamples=2)
    used = {r["text"] for r in pairs}
    fresh = demo_rows(demo_corpus, groups=2, nsamples=2, seed=0, exclude=used)  # same seed: would repeat
    assert len(used) == 2 and not used & {r["text"] for r in fresh}
    n_test = len((demo_corpus / "test.jsonl").read_text().splitlines())
    with pytest.raises(ValueError, match="test sentences left"):
        demo_rows(demo_corpus, groups=n_test - 1, nsamples=2, exclude=used)


def test_demo_rows_from_the_train_split_keep_held_out_voices(demo_corpus):
    from datasets import load_from_disk

    train = set(load_from_disk(str(demo_corpus / "raw"))["text"])
    held_out = [json.loads(ln) for ln in (demo_corpus / "test.jsonl").read_text().splitlines()]
    rows = demo_rows(demo_corpus, groups=5, nsamples=3, split="train")
    assert len(rows) == 15 and len({r["group"] for r in rows}) == 5
    assert {r["text"] for r in rows} <= train and not {r["text"] for r in rows} & {h["text"] for h in held_out}
    assert {r["context_audio"] for r in rows} <= {str(demo_corpus / h["audio_path"]) for h in held_out}
    with pytest.raises(ValueError, match="split='dev'"):
        demo_rows(demo_corpus, groups=1, nsamples=2, split="dev")


def test_broad_text_twins_say_new_sentences_in_each_groups_voice():
    pytest.importorskip("wordfreq", reason="demo extra not installed")
    ctx = [{"audio_path": f"/a/{i}.wav", "text": f"prompt {i}", "speaker": f"s{i}"} for i in range(3)]
    rows = make_rows([], ["one two three.", "four five six.", "seven eight nine."], ctx, [], nsamples=2, seed=1)
    twins = broad_text_twins(rows, seed=5, min_len=4, max_len=6, exclude={"never this one."})
    assert twins[: len(rows)] == rows  # the given rows first, unchanged
    added = twins[len(rows):]
    assert len(added) == len(rows) and len({r["id"] for r in twins}) == len(twins)
    by_group = {}
    for src, twin in zip(rows, added):  # the same voice and sample index, a new group and sentence
        assert twin["group"] != src["group"] and twin["sample"] == src["sample"]
        assert (twin["context_audio"], twin["context_text"], twin["speaker"]) == \
            (src["context_audio"], src["context_text"], src["speaker"])
        by_group.setdefault(twin["group"], set()).add(twin["text"])
    assert all(len(t) == 1 for t in by_group.values()) and len(by_group) == 3  # one sentence per group
    texts = [t.pop() for t in by_group.values()]
    assert len(set(texts)) == 3 and not set(texts) & {r["text"] for r in rows}
    assert all(4 <= len(t.split()) <= 6 for t in texts)
    assert broad_text_twins(rows, seed=5, min_len=4, max_len=6) == twins  # seeded
    assert broad_text_twins(rows, seed=6, min_len=4, max_len=6)[len(rows)]["text"] != added[0]["text"]


def _run_generate(manifest, ckpt, out, extra=()):
    return [sys.executable, "-m", "f5rl.prefs.generate", "--manifest", str(manifest), "--ckpt", str(ckpt),
            "--out_dir", str(out), "--nfe", "4", "--asr", "duration", "--sim", "duration", *extra]


def _digest(folder):
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".json":
            row = json.loads(p.read_text())
            out[p.name] = (row["seed"], row["duration"])
        else:
            out[p.name] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_generate_killed_and_restarted_equals_uninterrupted(tmp_path, demo_corpus, tiny_ckpt):
    rows = demo_rows(demo_corpus, groups=4, nsamples=3)
    rows += [dict(rows[0], id="text_ctx", group="t", context_type="text")]  # skipped by F5 generation
    manifest = write_jsonl(rows, tmp_path / "m.jsonl")
    subprocess.run(_run_generate(manifest, tiny_ckpt, tmp_path / "full"), check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(_run_generate(manifest, tiny_ckpt, tmp_path / "cut"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((tmp_path / "cut").glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(list((tmp_path / "cut").glob("*.json")))
    assert 3 <= killed_at < 12, "the kill should land mid-run"
    done = subprocess.run(_run_generate(manifest, tiny_ckpt, tmp_path / "cut"), check=True, capture_output=True,
                          text=True, timeout=600)
    assert "| 13 | 1 |" in done.stdout  # 13 rows, 1 text-context row skipped
    full, cut = _digest(tmp_path / "full"), _digest(tmp_path / "cut")
    assert len(full) == 36 and full == cut  # same files, same audio and mels, nothing truncated or duplicated
    assert not list((tmp_path / "cut").glob(".*"))

    # the saved mel is the model's own sample: the conditioning prompt, then the generated frames
    import numpy as np
    import torch

    from f5rl.audio.io import load_audio
    from f5rl.infer.tts import TTS

    row = json.loads((tmp_path / "full" / f"{rows[0]['id']}.json").read_text())
    mel = np.load(tmp_path / "full" / row["mel_path"])
    tts = TTS.from_checkpoint(str(tiny_ckpt))
    ctx = load_audio(row["context_audio"])
    again = tts.synthesize(ctx, row["context_text"], row["text"], seed=row["seed"], nfe=4)
    assert row["prompt_frames"] == again.prompt_frames and mel.shape == (again.total_frames, 100)
    torch.testing.assert_close(torch.from_numpy(mel), torch.cat([tts.prepare_prompt(ctx), again.mel]))


@pytest.mark.slow
def test_one_dpo_round_end_to_end(tmp_path, demo_corpus, tiny_ckpt, monkeypatch):
    """Pairs from real rewards (Whisper CER, resemblyzer SIM) and one DPO round. Reports held-out
    implicit accuracy; asserts the training direction on the training pairs."""
    from f5rl.prefs.iterate import held_out_reward, iterate, sample_reward

    rows = demo_rows(demo_corpus, groups=4, nsamples=4)
    manifest = write_jsonl(rows, tmp_path / "m.jsonl")
    held_out = write_jsonl(demo_rows(demo_corpus, groups=2, nsamples=4, split="train"), tmp_path / "held_out.jsonl")
    import f5rl.prefs.generate as gen_module

    made, real_generate = {}, gen_module.generate

    def counting_generate(manifest, ckpt, out_dir, **kw):  # which folders each round generated, and how much
        out = real_generate(manifest, ckpt, out_dir, **kw)
        made[str(Path(out_dir).relative_to(tmp_path / "work"))] = out["generated_now"]
        return out

    monkeypatch.setattr(gen_module, "generate", counting_generate)
    res = iterate(str(manifest), str(tiny_ckpt), str(tmp_path / "work"), rounds=2, group_size=4,
                  overrides=[f"datasets.path={demo_corpus}", "optim.max_updates=15", "dpo.beta=200",
                             "optim.learning_rate=1e-4", "ckpts.logger=null", "ckpts.log_samples=false",
                             "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2",
                             "model.arch.dim_head=32", "model.arch.text_dim=32", "model.arch.conv_layers=1",
                             "optim.mixed_precision=no"],
                  nfe=4, val_manifest=str(held_out))
    r = res[0]
    print(f"DPO round: {r.generation['done']} generations (mean CER {r.generation['mean_cer']:.3f}, SIM "
          f"{r.generation['mean_sim']:.3f}), pairs {r.pairs}; held-out accuracy "
          f"{r.val_before.get('val/dpo/accuracy')} -> {r.val_after.get('val/dpo/accuracy')}; held-out {r.held_out}")
    work = tmp_path / "work" / "iter_0"
    assert r.generation["done"] == 16 and r.pairs["train"] >= 1
    assert (work / "pairs" / "report.txt").is_file() and (work / "held_out_pairs" / "report.txt").is_file()
    assert (work / "train" / "model_last.pt").is_file()
    # every manifest group trains (held-out pairs come from the held-out prompts' own samples)
    assert len((work / "pairs" / "train.jsonl").read_text().splitlines()) == r.pairs["train"]
    assert len((work / "held_out_pairs" / "train.jsonl").read_text().splitlines()) == r.pairs["val"]
    # fresh samples of the held-out prompts before and after, paired by row (same seeds)
    before, after = sorted((work / "held_out_before").glob("*.json")), sorted((work / "held_out_after").glob("*.json"))
    assert [p.name for p in before] == [p.name for p in after] and len(before) == 8
    rb = [json.loads(p.read_text()) for p in before]
    ra = [json.loads(p.read_text()) for p in after]
    assert all(x["seed"] == y["seed"] for x, y in zip(rb, ra)) and all(y["ckpt"] == r.ckpt for y in ra)
    assert r.held_out == held_out_reward(work / "held_out_before", work / "held_out_after")
    assert r.held_out.n == 8 and r.held_out.reward_before == pytest.approx(sum(map(sample_reward, rb)) / 8)
    assert r.held_out.change == pytest.approx(r.held_out.reward_after - r.held_out.reward_before)
    assert (work / "held_out.png").read_bytes()[:4] == b"\x89PNG"  # CER/SIM before and after, for the eye
    assert (work / "train" / "curves.png").is_file()
    assert (tmp_path / "work" / "rounds.json").is_file()
    phases = ("generate", "held_out_before", "train", "implicit_accuracy", "held_out_after")
    assert list(r.seconds) == list(phases) and all(v > 0 for v in r.seconds.values()), r.seconds
    saved = json.loads((tmp_path / "work" / "rounds.json").read_text())[0]
    assert saved["seconds"] == r.seconds  # where the round's time went, kept with its results
    log = (tmp_path / "work" / "iterate.log").read_text()  # the readable account of the run
    assert "[round 0] generated 16" in log and str(work / "pairs" / "train.jsonl") in log and r.ckpt in log
    assert r.pairs["val"] >= 1  # the held-out prompts gave held-out pairs, so the next check runs
    assert r.val_before["val/loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference before training
    assert r.val_before["val/dpo/accuracy"] == 0.5  # every pair ties: chance, not "all wrong"

    # round 1 starts from round 0's policy, generates new training samples (new seeds), and takes round 0's
    # held-out "after" as its "before" (same policy, same seeds): copied, not generated again
    r1, work1 = res[1], tmp_path / "work" / "iter_1"
    assert made == {"iter_0/generated": 16, "iter_0/held_out_before": 8, "iter_0/held_out_after": 8,
                    "iter_1/generated": 16, "iter_1/held_out_before": 0, "iter_1/held_out_after": 8}, made
    seeds0 = {json.loads(p.read_text())["seed"] for p in (work / "generated").glob("*.json")}
    rows1 = [json.loads(p.read_text()) for p in sorted((work1 / "generated").glob("*.json"))]
    assert all(x["ckpt"] == r.ckpt for x in rows1) and not seeds0 & {x["seed"] for x in rows1}
    for p in after:
        assert (work1 / "held_out_before" / p.name).read_bytes() == p.read_bytes()
        stem = json.loads(p.read_text())["id"]
        for ext in (".wav", ".mel.npy"):
            assert (work1 / "held_out_before" / (stem + ext)).read_bytes() == (work / "held_out_after" /
                                                                               (stem + ext)).read_bytes()
    assert r1.held_out.reward_before == pytest.approx(r.held_out.reward_after)
    assert r1.ckpt == str(work1 / "train" / "model_last.pt") and Path(r1.ckpt).is_file()

    # pairs train on the generated mels themselves, not on mels re-analysed from the vocoded wavs
    import numpy as np

    from f5rl.data.pairs import PairDataset

    pairs_file = tmp_path / "work" / "iter_0" / "pairs" / "train.jsonl"
    pair = json.loads(pairs_file.read_text().splitlines()[0])
    item = PairDataset(str(pairs_file))[0]
    chosen, rejected = np.load(pair["chosen_mel"]), np.load(pair["rejected_mel"])
    assert item.prompt_len == pair["prompt_frames"] == pair["chosen"]["prompt_frames"]
    assert np.array_equal(item.chosen.numpy(), chosen) and np.array_equal(item.rejected.numpy(), rejected)
    assert np.array_equal(chosen[:item.prompt_len], rejected[:item.prompt_len])  # one prompt, two samples

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer

    pairs = tmp_path / "work" / "iter_0" / "pairs" / "train.jsonl"
    trained = DPOTrainer(validate(compose("F5TTS_DPO_tiny", [
        f"dpo.train_manifest={pairs}", f"dpo.val_manifest={pairs}", f"datasets.path={demo_corpus}",
        f"ckpts.save_dir={tmp_path / 'work' / 'iter_0' / 'train'}", f"dpo.ref_model_ckpt={tiny_ckpt}",
        "ckpts.logger=null", "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2",
        "model.arch.dim_head=32", "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no"]),
        DPOTrainConfig))
    trained.setup()
    on_train = trained.validate()
    print(f"implicit accuracy on the training pairs after DPO: {on_train['val/dpo/accuracy']:.2f}")
    assert on_train["val/dpo/accuracy"] > 0.5 and on_train["val/loss"] < 0.6931
    # fit() measures the same pairs from the training set itself (what iterate records per round)
    assert trained.fit() == {k.replace("val/", "fit/", 1): v for k, v in on_train.items()}
    assert r.fit["fit/dpo/accuracy"] == on_train["val/dpo/accuracy"]  # the round's own record of it


def _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, *extra: str):
    """A DPO config on three pairs made of corpus wavs (audio-only pairs) for the tiny model."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig

    tmp_path.mkdir(parents=True, exist_ok=True)
    wavs = sorted((demo_corpus / "wavs").glob("*.wav"))
    rows = [{"context_audio": str(wavs[i]), "chosen_audio": str(wavs[i + 1]), "rejected_audio": str(wavs[i + 1]),
             "context_text": "a", "text": "b", "chosen_cer": 0.0, "rejected_cer": 0.5, "chosen_sim": 0.9,
             "rejected_sim": 0.8} for i in range(3)]
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    over = [f"dpo.train_manifest={manifest}", f"dpo.val_manifest={manifest}", f"datasets.path={demo_corpus}",
            f"ckpts.save_dir={tmp_path / 'run'}", f"ckpts.init_from={tiny_ckpt}", f"dpo.ref_model_ckpt={tiny_ckpt}",
            "ckpts.logger=null", "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2",
            "model.arch.dim_head=32", "model.arch.text_dim=32", "model.arch.conv_layers=1",
            "optim.mixed_precision=no", *extra]
    return validate(compose("F5TTS_DPO_tiny", over), DPOTrainConfig)


def test_held_out_implicit_reward_averages_stratified_draws(tmp_path, demo_corpus, tiny_ckpt):
    """validate() averages each pair's flow errors over dpo.val_draws draws with t stratified over
    [0, 1]; with errors e_w = t (and 0 elsewhere) the gap is -mean(t)/2, checked by hand."""
    import math

    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer

    cfg = _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "dpo.val_draws=4", "dpo.beta=10",
                           "dpo.time_range=[0,1]")
    over = [f"dpo.train_manifest={cfg.dpo.train_manifest}", f"datasets.path={demo_corpus}"]
    trainer = DPOTrainer(cfg)
    trainer.setup()
    same = trainer.validate()  # policy == reference: zero gap whatever the draws
    assert same["val/loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert same["val/dpo/accuracy"] == 0.5  # every pair ties: a tie counts half

    trainer._val_ref = None  # forget the real reference errors: the fake ones below stand in
    with torch.no_grad():  # policy != reference from here on
        next(trainer.accelerator.unwrap_model(trainer.model).transformer.parameters()).add_(1.0)
    seen, calls = [], {"ref": 0, "policy": 0}

    def fake_errors(batch, net, draws):
        x0, t = draws
        who = "ref" if net is trainer.ref else "policy"
        calls[who] += 1
        if who == "policy":
            seen.append(t.clone())
        zero = torch.zeros_like(t)
        return (t, zero, draws) if who == "policy" else (zero, zero, draws)

    trainer.pair_errors = fake_errors
    out = trainer.validate()
    ts = torch.stack(seen)  # (draws, pairs)
    assert ts.shape == (4, 3)
    for i in range(4):  # draw i covers [i/4, (i+1)/4)
        assert ((ts[i] >= i / 4) & (ts[i] < (i + 1) / 4)).all()
    gap = -0.5 * ts.mean(0)  # implicit_gap with e_w = mean t, the rest 0
    assert out["val/loss"] == pytest.approx(float(-torch.nn.functional.logsigmoid(10 * gap).mean()), rel=1e-6)
    assert out["val/dpo/accuracy"] == 0.0  # the chosen got worse on every pair
    seen.clear()
    assert trainer.validate() == out  # fixed draws: the same numbers every call
    assert calls == {"ref": 4, "policy": 8}  # the frozen reference's errors are computed once
    with pytest.raises(ValueError, match="val_draws"):
        validate(compose("F5TTS_DPO_tiny", [*over, "dpo.val_draws=0"]), DPOTrainConfig)


def test_training_and_held_out_times_follow_dpo_time_range_and_sway(tmp_path, demo_corpus, tiny_ckpt):
    """Training draws t = lo + (hi - lo)·sway(u, dpo.time_sway), u ~ U(0, 1); held-out draws use the
    same map on stratified u. Uniform at [0, 1] and sway 0; a window and sway -1 as computed by hand;
    bad windows and sway values are refused."""
    import math

    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.data.pairs import PairCollate
    from f5rl.train.dpo_trainer import DPOTrainer

    for window, coef in (((0.0, 1.0), 0.0), ((0.0, 0.1), -1.0)):
        trainer = DPOTrainer(_wav_pairs_config(tmp_path / str(coef), demo_corpus, tiny_ckpt,
                                               f"dpo.time_range=[{window[0]},{window[1]}]", f"dpo.time_sway={coef}"))
        trainer.setup()
        batch = PairCollate(trainer.tokenizer)(trainer.val_items)
        torch.manual_seed(3)
        u = torch.rand(len(batch))
        torch.manual_seed(3)
        _, _, (_, t) = trainer.pair_errors(batch, trainer.ref)
        expected = u if coef == 0 else 0.1 * (1 - torch.cos(math.pi / 2 * u))
        assert torch.allclose(t, expected, atol=1e-6)
        seen = []  # the held-out estimate's draws (the reference's; the untrained policy is the reference)

        def spy(b, m, draws=None, seen=seen, real=trainer.pair_errors):
            seen.append(draws[1])
            return real(b, m, draws)

        trainer.pair_errors = spy
        trainer.validate()
        assert len(seen) == trainer.cfg.dpo.val_draws and all(float(t.max()) <= window[1] + 1e-6 for t in seen)
    over = [f"dpo.train_manifest={trainer.cfg.dpo.train_manifest}", f"datasets.path={demo_corpus}"]
    for bad, key in (("dpo.time_sway=-2", "time_sway"), ("dpo.time_range=[0.5,0.2]", "time_range"),
                     ("dpo.time_range=[0.1]", "time_range")):
        with pytest.raises(ValueError, match=key):
            validate(compose("F5TTS_DPO_tiny", [*over, bad]), DPOTrainConfig)


def test_anchor_term_trains_on_real_utterances_and_resumes_its_stream(tmp_path, demo_corpus, tiny_ckpt):
    """dpo.anchor_loss_weight adds the CFM loss on real corpus batches (logged as loss/anchor);
    the anchor stream started at micro-batch m yields what an uninterrupted stream yields after m
    batches, across epoch ends, so a resumed run sees the same real batches."""
    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer

    trainer = DPOTrainer(_wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "dpo.anchor_loss_weight=2",
                                           "dpo.anchor_batch_size=8", "optim.max_updates=3", "dpo.sft_loss_weight=0",
                                           "dpo.drift_time_range=null", "dpo.drift_weight=0"))
    trainer.setup()
    n = len(trainer.anchor_sampler)
    assert n >= 2 and len(trainer.anchor_sampler.epoch_batches(0)[0]) == 8
    stream = trainer._anchor_stream(0)
    whole = [next(stream).mel for _ in range(n + 3)]
    resumed = trainer._anchor_stream(n - 1)
    for k in range(n - 1, n + 3):  # the last batch of epoch 0, then into epoch 1
        assert torch.equal(next(resumed).mel, whole[k])
    assert not torch.equal(whole[0], whole[n])  # epoch 1 is reshuffled

    summary = trainer.train()
    metrics = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary.updates == 3 and len(metrics) == 3
    assert all(m["loss/anchor"] > 0 for m in metrics)
    # the logged loss is the preference loss plus the weighted anchor loss (no SFT or drift term here)
    assert all(abs(m["loss"] - (m["loss/preference"] + 2 * m["loss/anchor"])) < 1e-4 for m in metrics)
    over = [f"dpo.train_manifest={trainer.cfg.dpo.train_manifest}", f"datasets.path={demo_corpus}"]
    with pytest.raises(ValueError, match="anchor_batch_size"):
        validate(compose("F5TTS_DPO_tiny", [*over, "dpo.anchor_batch_size=0"]), DPOTrainConfig)


def test_held_out_reward_pairs_rows_by_id_by_hand(tmp_path):
    """Paired change of (1 - CER) + SIM over rows scored in both folders; NaN scores and rows missing
    on one side are left out; the standard error treats the samples of one prompt group as one unit."""
    import math

    from f5rl.prefs.iterate import held_out_reward

    before, after = tmp_path / "b", tmp_path / "a"
    before.mkdir()
    after.mkdir()
    rows = {"r1": ((0.5, 0.8), (0.3, 0.8)), "r2": ((0.2, 0.9), (0.2, 0.7)), "r3": ((0.4, 0.8), (0.1, 0.9)),
            "r4": ((0.1, 0.9), (math.nan, 0.9))}  # r4: failed scoring after training
    for rid, (x, y) in rows.items():
        (before / f"{rid}.json").write_text(json.dumps({"cer": x[0], "sim": x[1]}))
        (after / f"{rid}.json").write_text(json.dumps({"cer": y[0], "sim": y[1]}))
    (before / "r5.json").write_text(json.dumps({"cer": 0.0, "sim": 1.0}))  # not generated after
    h = held_out_reward(before, after)
    diffs = [0.2, -0.2, 0.4]  # r1: CER -0.2; r2: SIM -0.2; r3: CER -0.3, SIM +0.1
    mean = sum(diffs) / 3
    assert h.n == 3 and h.change == pytest.approx(mean)
    assert h.change_se == pytest.approx(math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2 / 3))
    assert h.reward_before == pytest.approx((1.3 + 1.7 + 1.4) / 3) and h.cer == pytest.approx((1.1 / 3, 0.6 / 3))
    # samples of one prompt form a group: the standard error comes from the groups' summed residuals
    for rid, group in (("r1", "A"), ("r2", "B"), ("r3", "A")):
        for d in (before, after):
            (d / f"{rid}.json").write_text(json.dumps({**json.loads((d / f"{rid}.json").read_text()), "group": group}))
    g = held_out_reward(before, after)
    # mean 2/15; A: (0.2 - m) + (0.4 - m) = 1/3, B: -0.2 - m = -1/3; se = sqrt(2/9 * 2/1) / 3 = 2/9
    assert g.change == pytest.approx(mean) and g.change_se == pytest.approx(2 / 9)
    (after / "r2.json").unlink()
    (after / "r3.json").unlink()
    with pytest.raises(ValueError, match="share 1 scored rows"):
        held_out_reward(before, after)


def test_pairs_ranked_by_any_reward_by_hand(tmp_path):
    """create_preference_pairs --rank_by NAME: reward/NAME decides (higher chosen), not (CER, SIM)."""
    from f5rl.prefs.create_preference_pairs import create
    from f5rl.prefs.pairs import Candidate, build_pairs

    def cand(i, group, cer, sim, mos):
        return Candidate(f"{group}_{i}", group, cer, sim, 1.0, {"id": f"{group}_{i}", "reward/dnsmos": mos})

    g = [cand(0, "a", 0.0, 0.9, 2.0), cand(1, "a", 0.5, 0.5, 3.5), cand(2, "a", 0.2, 0.7, 3.0)]
    flat = [cand(0, "b", 0.0, 0.9, 3.0), cand(1, "b", 0.4, 0.6, 3.0)]
    by_mos = build_pairs(g + flat, group_size=2, rank_by="dnsmos")
    (pair,) = by_mos.train
    assert (pair["chosen"]["id"], pair["rejected"]["id"]) == ("a_1", "a_0")  # MOS 3.5 over 2.0, against CER
    assert by_mos.dropped["no_reward_spread"] == 1  # group b: equal MOS
    pareto = build_pairs(g, group_size=2)
    assert (pareto.train[0]["chosen"]["id"], pareto.train[0]["rejected"]["id"]) == ("a_0", "a_1")
    # the CLI path refuses a reward the samples were not scored with
    gen = tmp_path / "gen"
    gen.mkdir()
    for c in g:
        (gen / f"{c.id}.json").write_text(json.dumps({**c.row, "group": c.group, "audio_path": "x.wav", "text": "t",
                                                      "context_audio": "c.wav", "context_text": "hi",
                                                      "cer": c.cer, "sim": c.sim, "duration": 1.0}))
    assert create(str(gen), str(tmp_path / "p"), 2, rank_by="dnsmos").train[0]["chosen"]["id"] == "a_1"
    with pytest.raises(ValueError, match="--extra_rewards duration"):
        create(str(gen), str(tmp_path / "p"), 2, rank_by="duration")


@pytest.mark.slow
def test_iterate_ranks_pairs_by_a_mos_reward(tmp_path, demo_corpus, tiny_ckpt):
    """Iterative DPO with MOS rewards: ``iterate --rank_by dnsmos`` scores DNSMOS beside CER/SIM while
    generating, pairs the highest against the lowest MOS of each group, trains, and logs the round."""
    from f5rl.prefs.iterate import main

    manifest = write_jsonl(demo_rows(demo_corpus, groups=3, nsamples=3), tmp_path / "m.jsonl")
    main(["--manifest", str(manifest), "--init_ckpt", str(tiny_ckpt), "--work_dir", str(tmp_path / "w"),
          "--group_size", "3", "--val_size", "0", "--nfe", "2", "--rank_by", "dnsmos", "--",
          f"datasets.path={demo_corpus}", "optim.max_updates=2", "ckpts.logger=null", "ckpts.log_samples=false",
          "model.arch.dim=64", "model.arch.depth=2", "model.arch.heads=2", "model.arch.dim_head=32",
          "model.arch.text_dim=32", "model.arch.conv_layers=1", "optim.mixed_precision=no", "dpo.val_every=0"])
    gen = [json.loads(p.read_text()) for p in sorted((tmp_path / "w" / "iter_0" / "generated").glob("*.json"))]
    assert len(gen) == 9 and all(math.isfinite(g["reward/dnsmos"]) for g in gen)
    pairs = [json.loads(ln) for ln in (tmp_path / "w" / "iter_0" / "pairs" / "train.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"]["reward/dnsmos"] > p["rejected"]["reward/dnsmos"] for p in pairs)
    for p in pairs:  # the chosen is the group's best MOS, the rejected its worst
        group = [g["reward/dnsmos"] for g in gen if g["group"] == p["group"]]
        assert (p["chosen"]["reward/dnsmos"], p["rejected"]["reward/dnsmos"]) == (max(group), min(group))
    assert "[round 0]" in (tmp_path / "w" / "iterate.log").read_text()


def test_drift_term_holds_the_later_flow_times_at_the_reference(tmp_path, demo_corpus, tiny_ckpt, monkeypatch):
    """dpo.drift_weight × the squared distance of the policy's velocity on the chosen sample from the reference's,
    at flow times of its own in dpo.drift_time_range (logged as loss/drift): zero before the first update (the
    policy is the reference), then positive; the logged loss is the preference loss plus the weighted drift; the
    drift's times fall in its window; a window without a weight, or a weight without a window, is refused."""
    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.rollout import evaluate
    from f5rl.train.dpo_trainer import DPOTrainer

    trainer = DPOTrainer(_wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "dpo.drift_time_range=[0.5,0.9]",
                                           "dpo.drift_weight=2", "optim.max_updates=3", "dpo.sft_loss_weight=0",
                                           "optim.learning_rate=1e-3"))
    trainer.setup()
    drift_times = []
    real = evaluate.reference_drift

    def spy(v, ref, x1, x0, time, *rest, **kw):
        drift_times.append(time.clone())
        return real(v, ref, x1, x0, time, *rest, **kw)

    monkeypatch.setattr(evaluate, "reference_drift", spy)
    trainer.train()
    metrics = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3
    assert metrics[0]["loss/drift"] == pytest.approx(0.0, abs=1e-10)  # no update yet: the policy is the reference
    assert all(m["loss/drift"] > 0 for m in metrics[1:])
    assert all(abs(m["loss"] - (m["loss/preference"] + 2 * m["loss/drift"])) < 1e-4 for m in metrics)
    ts = torch.cat(drift_times)
    assert len(drift_times) == 3 and bool(((ts >= 0.5) & (ts <= 0.9)).all())
    over = [f"dpo.train_manifest={trainer.cfg.dpo.train_manifest}", f"datasets.path={demo_corpus}"]
    tiny = validate(compose("F5TTS_DPO_tiny", over), DPOTrainConfig).dpo  # the tiny recipe's measured default
    assert (tiny.drift_time_range, tiny.drift_weight) == ([0.1, 1.0], 100.0)
    for bad in (["dpo.drift_time_range=[0.1,1.0]", "dpo.drift_weight=0"], ["dpo.drift_time_range=null"],
                ["dpo.drift_time_range=[0.9,0.1]", "dpo.drift_weight=5"], ["dpo.drift_weight=-1"]):
        with pytest.raises(ValueError, match="dpo.drift"):
            validate(compose("F5TTS_DPO_tiny", [*over, *bad]), DPOTrainConfig)


def test_reference_drift_by_hand():
    """Constant velocities, policy 2 and reference 0.5: the drift is (2 - 0.5)² = 2.25 on every spanned element;
    a frame outside the span does not count."""
    from types import SimpleNamespace

    import torch

    from f5rl.rollout.evaluate import reference_drift

    class Constant(torch.nn.Module):
        def forward(self, x, cond, text, t, mask=None):
            return SimpleNamespace(mu=torch.full_like(x, 0.5))

    v = torch.full((2, 3, 4), 2.0)
    v[:, 0] = 100.0  # the first frame is the prompt: outside the span
    span = torch.ones(2, 3, dtype=torch.bool)
    span[:, 0] = False
    x = torch.zeros(2, 3, 4)
    out = reference_drift(v, Constant(), x, x, torch.tensor([0.3, 0.7]), torch.zeros(2, 5, dtype=torch.long),
                          None, span)
    torch.testing.assert_close(out, torch.tensor([2.25, 2.25]))


def test_implicit_accuracy_runs_in_length_ordered_chunks_whose_size_does_not_change_it(tmp_path, demo_corpus,
                                                                                         tiny_ckpt):
    """validate() and fit() take dpo.val_batch_size pairs per forward, in order of length, each chunk padded only
    to its own longest pair; each pair's (noise, t) draws are its own, so the errors, the held-out metrics and the
    fit are the same for chunks of 1, 2 or all pairs. dpo.val_batch_size=0 is refused."""
    import torch

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.train.dpo_trainer import DPOTrainer

    wavs = sorted((demo_corpus / "wavs").glob("*.wav"))
    rows = [{"context_audio": str(wavs[i]), "chosen_audio": str(wavs[i + 5]), "rejected_audio": str(wavs[i + 10]),
             "context_text": "a", "text": "b", "chosen_cer": 0.0, "rejected_cer": 0.5, "chosen_sim": 0.9,
             "rejected_sim": 0.8} for i in range(5)]
    (tmp_path / "p").mkdir()
    manifest = tmp_path / "p" / "five.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _wav_pairs_config(tmp_path, demo_corpus, tiny_ckpt, "dpo.val_draws=3", "dpo.val_batch_size=2",
                            f"dpo.train_manifest={manifest}", f"dpo.val_manifest={manifest}")
    trainer = DPOTrainer(cfg)
    trainer.setup()
    with torch.no_grad():  # policy != reference, so the policy's errors are computed too
        for p in trainer.accelerator.unwrap_model(trainer.model).transformer.parameters():
            p.add_(0.01 * torch.randn_like(p))
    lengths = [trainer.dataset[i].chosen.shape[0] for i in range(5)]
    assert len(set(lengths)) == 5  # distinct lengths: padding and order matter

    shapes, real = [], trainer.pair_errors

    def spy(batch, net, draws=None):
        shapes.append((len(batch), batch.mel.shape[1], sorted(batch.mel_lengths.tolist())))
        return real(batch, net, draws)

    trainer.pair_errors = spy
    results = {}
    for size in (1, 2, 8):
        trainer.cfg.dpo.val_batch_size = size
        trainer._val_ref = None
        shapes.clear()
        results[size] = (trainer._held_out_errors(trainer.val_items, trainer.ref, 7), trainer.validate(),
                         trainer.fit())
        assert all(b <= size and n == lens[-1] for b, n, lens in shapes), shapes  # bounded, padded to its longest
        chunks = [lens for _, _, lens in shapes[: 3 * -(-5 // size): 3]]  # each chunk's 3 draws, chunk by chunk
        assert [x for c in chunks for x in c] == sorted(lengths)  # shortest pairs first
    for size in (2, 8):
        for a, b in zip(results[1][0], results[size][0]):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
        for got, want in zip(results[size][1:], results[1][1:]):
            assert got.keys() == want.keys()
            for k in want:
                assert got[k] == pytest.approx(want[k], rel=1e-3, abs=1e-6), k
    over = [f"dpo.train_manifest={manifest}", f"datasets.path={demo_corpus}"]
    with pytest.raises(ValueError, match="val_batch_size"):
        validate(compose("F5TTS_DPO_tiny", [*over, "dpo.val_batch_size=0"]), DPOTrainConfig)


def test_reuse_samples_copies_only_rows_of_that_checkpoint_and_those_seeds(tmp_path):
    """iterate's reuse of the last round's held-out samples: a row is copied (wav, mel, then its JSON) only when
    the checkpoint and the row's seed match; rows already in the destination are left as they are."""
    from f5rl.prefs.generate import row_seed
    from f5rl.prefs.iterate import reuse_samples

    src, dst = tmp_path / "after", tmp_path / "before"
    src.mkdir()
    for rid, ckpt, base in (("a", "m.pt", 0), ("b", "other.pt", 0), ("c", "m.pt", 5), ("d", "m.pt", 0)):
        row = {"id": rid, "ckpt": ckpt, "seed": row_seed(rid, base), "audio_path": f"{rid}.wav",
               "mel_path": f"{rid}.mel.npy"}
        (src / f"{rid}.wav").write_bytes(b"wav" + rid.encode())
        (src / f"{rid}.mel.npy").write_bytes(b"mel" + rid.encode())
        (src / f"{rid}.json").write_text(json.dumps(row))
    dst.mkdir()
    (dst / "d.json").write_text("kept")
    assert reuse_samples(src, dst, "m.pt", 0) == 1  # a; not b (checkpoint), c (seeds), d (already there)
    assert sorted(p.name for p in dst.iterdir()) == ["a.json", "a.mel.npy", "a.wav", "d.json"]
    assert (dst / "a.wav").read_bytes() == b"wava" and (dst / "d.json").read_text() == "kept"
    assert reuse_samples(tmp_path / "missing", dst, "m.pt", 0) == 0

"""The listening page's logic without the page: checkpoint specs, prompt checks, tables of evaluate and
prefs folders, and a real side-by-side synthesis with the shipped demo base."""

import math

import pytest
import soundfile as sf
import torch

from f5rl.app.backend import InputProblem, ModelSpec, Studio, Table, open_folder, read_prompt, shipped_base
from tests.app.conftest import make_prefs_round
from tests.conftest import speech_like


def test_model_specs_name_what_is_wrong(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model_last.pt").write_bytes(b"x")
    (tmp_path / "run" / "config.yaml").write_text("model: {}\n")
    assert ModelSpec.parse(str(tmp_path / "run" / "model_last.pt")).name == "run"
    (tmp_path / "f5.safetensors").write_bytes(b"x")
    (tmp_path / "vocab.txt").write_text("a\n")
    spec = ModelSpec.parse(f"{tmp_path / 'f5.safetensors'},model_cfg=F5TTS_v1_Base,vocab={tmp_path / 'vocab.txt'}")
    assert (spec.model_cfg, spec.vocab, spec.name) == ("F5TTS_v1_Base", tmp_path / "vocab.txt", "f5")
    cases = {str(tmp_path / "nope.pt"): "does not exist", str(tmp_path / "vocab.txt"): "not a checkpoint",
             str(tmp_path / "f5.safetensors"): "model_cfg=F5TTS_v1_Base",
             f"{tmp_path / 'f5.safetensors'},cfg=x": "PATH,model_cfg=NAME",
             f"{tmp_path / 'f5.safetensors'},model_cfg=F5TTS_v1_Base,vocab=/no/vocab.txt": "vocab /no/vocab.txt",
             f"{tmp_path / 'run' / 'model_last.pt'},vocab={tmp_path / 'vocab.txt'}": "goes with model_cfg="}
    for text, says in cases.items():
        with pytest.raises(InputProblem, match=says):
            ModelSpec.parse(text)


def test_bad_prompts_get_a_message(tmp_path):
    good = tmp_path / "p.wav"
    sf.write(good, speech_like(2.0), 24000)
    p = read_prompt(str(good), " some words ")
    assert p.text == "some words" and p.audio.numel() == 48000
    (tmp_path / "notes.wav").write_text("not audio at all")
    sf.write(tmp_path / "long.wav", speech_like(31.0), 24000)
    sf.write(tmp_path / "silent.wav", speech_like(2.0) * 0, 24000)
    cases = [(None, "x", "no prompt audio"), (str(tmp_path / "notes.wav"), "x", "is not audio"),
             (str(tmp_path / "long.wav"), "x", "31 s long"), (str(tmp_path / "silent.wav"), "x", "silent"),
             (str(good), "  ", "transcript is empty")]
    for path, text, says in cases:
        with pytest.raises(InputProblem, match=says):
            read_prompt(path, text)


def test_tables_sort_by_any_metric_with_unscorable_rows_last():
    t = Table("t", [{"utt": "a", "cer": 0.3}, {"utt": "b", "cer": math.nan}, {"utt": "c", "cer": 0.1}],
              [{"audio": "a"}, {"audio": "b"}, {"audio": "c"}])
    assert t.metrics == ["cer"]
    assert [r["utt"] for r in t.sorted("cer").rows] == ["c", "a", "b"]
    down = t.sorted("cer", descending=True)
    assert [r["utt"] for r in down.rows] == ["a", "c", "b"] and [a["audio"] for a in down.audio] == ["a", "c", "b"]
    with pytest.raises(InputProblem, match="sort by one of cer"):
        t.sorted("utt")


def _wav(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speech_like(1.0, seed=seed), 24000)
    return path


def test_open_folder_reads_evaluate_outputs_prefs_rounds_and_runs(tmp_path):
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "summary.json").write_text("{}")
    (ev / "sys.csv").write_text("utt,target_text,transcript,cer,sim\nu1,a b,a b,0.0,0.9\nu2,c d,c,0.5,0.8\n")
    (ev / "ground_truth.csv").write_text("utt,target_text,transcript,cer,sim\nu1,a b,a b,0.0,1.0\n")
    _wav(ev / "sys" / "u1.wav")
    _wav(ev / "sys" / "u2.wav")
    (ev / "plot.png").write_bytes(b"\x89PNG")
    f = open_folder(ev)
    assert f.kind == "evaluate" and list(f.tables) == ["sys"]  # ground truth has no copied clips
    assert f.tables["sys"].sorted("cer", True).audio[0]["audio"] == ev / "sys" / "u2.wav"
    assert f.pngs == [ev / "plot.png"]

    gen = make_prefs_round(tmp_path / "work" / "iter_0")
    f = open_folder(tmp_path / "work")
    assert f.kind == "prefs" and list(f.tables) == ["iter_0/pairs/train", "iter_0/generated"]  # pairs first
    p = f.tables["iter_0/pairs/train"]
    assert p.rows[0]["cer_gap"] == pytest.approx(0.5)
    assert p.audio[0] == {"chosen": gen / "g0_s0.wav", "rejected": gen / "g0_s1.wav"}
    assert len(f.tables["iter_0/generated"].rows) == 2

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"update": 1}\n')
    (run / "curves.png").write_bytes(b"\x89PNG")
    assert open_folder(run).kind == "run" and open_folder(run).pngs == [run / "curves.png"]
    for bad, says in ((tmp_path / "none", "is not a folder"), (tmp_path / "eval" / "sys", "holds no evaluate")):
        with pytest.raises(InputProblem, match=says):
            open_folder(bad)


@pytest.mark.slow
def test_compare_synthesises_each_model_from_the_same_seeds_and_keeps_the_best_of_n(tmp_path):
    pytest.importorskip("faster_whisper", reason="faster-whisper (the whisper extra) is the ASR judge")
    sf.write(tmp_path / "p.wav", speech_like(2.0), 24000)
    prompt = read_prompt(str(tmp_path / "p.wav"), "a short prompt.")
    base = shipped_base()
    studio = Studio([base, ModelSpec("again", base.ckpt)], mos=None)
    one = studio.compare([base.name, "again"], prompt, "The red bird is near the park.", seed=3, nfe=4)
    assert [r.model for r in one] == [base.name, "again"] and all(r.seed == 3 for r in one)
    assert torch.equal(one[0].audio, one[1].audio)  # same weights, same seed: the same sample
    assert one[0].scores["cer"] >= 0 and -1 <= one[0].scores["sim"] <= 1 and one[0].seconds > 0.5
    best = studio.compare([base.name], prompt, "The red bird is near the park.", seed=3, nfe=4, best_of=3)[0]
    assert best.candidates == 3 and best.seed in (3, 4, 5)
    assert best.scores["reward"] == pytest.approx(max(best.candidate_rewards))
    for names, text, n, says in (([], "x", 1, "no model chosen"), (["x"] * 5, "x", 1, "at most 4"),
                                 (["nope"], "x", 1, "unknown model"), ([base.name], " ", 1, "text to say is empty"),
                                 ([base.name], "x", 0, "choose 1 to 16")):
        with pytest.raises(InputProblem, match=says):
            studio.compare(names, prompt, text, best_of=n)

"""Every CLI meets bad input with one line on stderr and exit status 2, before any heavy work.

Table-driven: each row runs ``python -m <module> <args>`` as a user would and asserts the exit
status, that stderr's last line names the problem, that there is no traceback, and prints the time
to fail (not asserted: it depends on the machine)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import speech_like

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_ckpt):
    """Bad (and a few good) inputs, written once."""
    d = tmp_path_factory.mktemp("bad")
    sf.write(d / "ok.wav", speech_like(1.0, sr=24000), 24000)
    (d / "junk.wav").write_bytes(b"RIFF but not audio")
    sf.write(d / "low.wav", np.zeros(4000, dtype=np.float32), 4000)
    (d / "bad.jsonl").write_text('{"id": "a", "text": "hi"}\n\n{"id": "b", "text": oops}\n')
    (d / "array.jsonl").write_text('[1, 2]\n')
    (d / "no_text.jsonl").write_text(json.dumps({"id": "a", "audio_path": "ok.wav"}) + "\n")
    (d / "no_id.jsonl").write_text(json.dumps({"text": "hi"}) + "\n")
    (d / "short.tsv").write_text("a\tok.wav\n")
    (d / "rows.jsonl").write_text("".join(json.dumps({"id": f"g0_s{k}", "group": "g0", "text": "hello there",
                                                      "context_type": "audio", "context_audio": str(d / "ok.wav"),
                                                      "context_text": "hi"}) + "\n" for k in range(2)))
    (d / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json")
    blob = Path(tiny_ckpt).read_bytes()
    run = d / "trunc"
    run.mkdir()
    (run / "model_last.pt").write_bytes(blob[: len(blob) // 3])
    (run / "config.yaml").write_text((Path(tiny_ckpt).parent / "config.yaml").read_text())
    (d / "contexts_missing_wav.json").write_text(json.dumps([{"audio_path": "nowhere.wav", "text": "hi"}]))
    (d / "contexts_no_text.json").write_text(json.dumps([{"audio_path": "ok.wav"}]))
    (d / "contexts_bad.json").write_text("[{")
    (d / "texts.txt").write_text("hello there\n")
    (d / "prompt_list.lst").write_text("u1|hi|ok.wav\n")
    gen = d / "gen"
    gen.mkdir()
    for k in range(2):
        (gen / f"g0_s{k}.json").write_text(json.dumps({"id": f"g0_s{k}", "group": "g0", "audio_path": "x.wav",
                                                       "cer": 0.1 * k, "sim": 0.8, "duration": 1.0}))
    (d / "gen_bad").mkdir()
    (d / "gen_bad" / "x.json").write_text("{not json")
    (d / "empty_folder").mkdir()
    return {"d": d, "ckpt": Path(tiny_ckpt)}


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


SYN = "f5rl.infer.synthesize"
EVAL = "f5rl.eval.evaluate"
PREP = "f5rl.data.prepare"
TCP = "f5rl.prefs.create_text_context_pairs"
CPP = "f5rl.prefs.create_preference_pairs"
GEN = "f5rl.prefs.generate"
IT = "f5rl.prefs.iterate"
SERVE = "f5rl.rewards.serve"
TRAIN, RL, DPO = "f5rl.train.train", "f5rl.train.train_rl", "f5rl.train.train_dpo"

# (case, module, args with {d} = the fixture folder, {ckpt} = a good tiny checkpoint; text stderr's last line names)
CASES = [
    # data preparation
    ("prepare: missing input folder", PREP, ["--input", "{d}/nowhere", "--name", "x"], "does not exist"),
    ("prepare: empty folder", PREP, ["--input", "{d}/empty_folder", "--name", "x"], "found no (audio, transcript)"),
    ("prepare: malformed jsonl", PREP, ["--input", "{d}/bad.jsonl", "--name", "x"], "bad.jsonl:3: not valid JSON"),
    ("prepare: jsonl row not an object", PREP, ["--input", "{d}/array.jsonl", "--name", "x"], "not an object"),
    ("prepare: row without audio", PREP, ["--input", "{d}/no_id.jsonl", "--name", "x"], "no 'audio_path' field"),
    ("prepare: tsv with two columns", PREP, ["--input", "{d}/short.tsv", "--name", "x"],
     "short.tsv:1: 2 tab-separated"),
    ("prepare: unknown manifest kind", PREP, ["--input", "{d}/texts.txt", "--name", "x"], "expected a folder"),
    ("prepare: unreadable audio", PREP, ["--input", "{d}/unreadable.jsonl", "--name", "x"], "junk.wav"),
    # synthesis
    ("synthesize: --ckpt missing", SYN, ["--ckpt", "{d}/none.pt", "--ref_audio", "{d}/ok.wav", "--ref_text", "hi",
                                         "--text", "hi", "--out", "{d}/o.wav"], "none.pt does not exist"),
    ("synthesize: truncated .pt", SYN, ["--ckpt", "{d}/trunc/model_last.pt", "--ref_audio", "{d}/ok.wav",
                                        "--ref_text", "hi", "--text", "hi", "--out", "{d}/o.wav"], "truncated"),
    ("synthesize: corrupt safetensors", SYN, ["--ckpt", "{d}/corrupt.safetensors", "--config", "{d}/trunc/config.yaml",
                                              "--ref_audio", "{d}/ok.wav", "--ref_text", "hi", "--text", "hi",
                                              "--out", "{d}/o.wav"], "corrupt.safetensors (truncated"),
    ("synthesize: empty --ref_text", SYN, ["--ckpt", "{ckpt}", "--ref_audio", "{d}/ok.wav", "--ref_text", "",
                                           "--text", "hi", "--out", "{d}/o.wav"], "--ref_text is empty"),
    ("synthesize: --best_of 0", SYN, ["--ckpt", "{ckpt}", "--ref_audio", "{d}/ok.wav", "--ref_text", "hi",
                                      "--text", "hi", "--out", "{d}/o.wav", "--best_of", "0"], "--best_of 0"),
    ("synthesize: malformed manifest", SYN, ["--ckpt", "{ckpt}", "--manifest", "{d}/bad.jsonl", "--out_dir", "{d}/o"],
     "bad.jsonl:3: not valid JSON"),
    ("synthesize: manifest row without ref_audio", SYN, ["--ckpt", "{ckpt}", "--manifest", "{d}/no_id.jsonl",
                                                         "--out_dir", "{d}/o"], "no 'ref_audio', 'ref_text' field"),
    ("synthesize: unreadable ref audio", SYN, ["--ckpt", "{ckpt}", "--ref_audio", "{d}/junk.wav", "--ref_text", "hi",
                                               "--text", "hi", "--out", "{d}/o.wav"], "cannot read"),
    ("synthesize: 4 kHz ref audio", SYN, ["--ckpt", "{ckpt}", "--ref_audio", "{d}/low.wav", "--ref_text", "hi",
                                          "--text", "hi", "--out", "{d}/o.wav"], "sample rate"),
    # evaluation
    ("evaluate: missing test list", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/none.jsonl", "--out_dir", "{d}/e"],
     "not found"),
    ("evaluate: malformed test list", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/bad.jsonl", "--out_dir", "{d}/e"],
     "bad.jsonl:3: not valid JSON"),
    ("evaluate: test list without fields", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/no_id.jsonl",
                                                  "--out_dir", "{d}/e"], "no 'utt', 'prompt_text', 'prompt_wav'"),
    ("evaluate: short pipe list", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/prompt_list.lst", "--out_dir",
                                         "{d}/e"], "expected utt|prompt_text|prompt_wav|target_text"),
    ("evaluate: --ckpt missing", EVAL, ["--ckpt", "{d}/none.pt", "--test_list", "{d}/no_id.jsonl", "--out_dir",
                                        "{d}/e"], "none.pt does not exist"),
    ("evaluate: unknown --asr", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/no_id.jsonl", "--out_dir", "{d}/e",
                                       "--asr", "whisper_asrr"], "--asr: unknown reward provider 'whisper_asrr'"),
    ("evaluate: --asr_config key it does not take", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/no_id.jsonl",
                                                          "--out_dir", "{d}/e", "--asr_config", "window_sec=10"],
     "--asr_config: reward provider 'whisper_asr': bad config {'window_sec': 10}"),
    ("evaluate: wespeaker without its folder", EVAL, ["--ckpt", "{ckpt}", "--test_list", "{d}/no_id.jsonl",
                                                      "--out_dir", "{d}/e", "--sim", "wespeaker_sim"],
     "--sim: wespeaker_sim needs"),
    # preference data
    ("text pairs: missing contexts file", TCP, ["--audio_contexts", "{d}/none.json", "--challenging_texts",
                                                "{d}/texts.txt", "--out", "{d}/p.jsonl"], "none.json does not exist"),
    ("text pairs: contexts not JSON", TCP, ["--audio_contexts", "{d}/contexts_bad.json", "--challenging_texts",
                                            "{d}/texts.txt", "--out", "{d}/p.jsonl"], "not valid JSON"),
    ("text pairs: context wav missing", TCP, ["--audio_contexts", "{d}/contexts_missing_wav.json",
                                              "--challenging_texts", "{d}/texts.txt", "--out", "{d}/p.jsonl"],
     "nowhere.wav does not exist"),
    ("text pairs: context without text", TCP, ["--audio_contexts", "{d}/contexts_no_text.json", "--challenging_texts",
                                               "{d}/texts.txt", "--out", "{d}/p.jsonl"], "has no text"),
    ("text pairs: missing texts file", TCP, ["--audio_contexts", "{d}/good_contexts.json", "--challenging_texts",
                                             "{d}/none.txt", "--out", "{d}/p.jsonl"], "none.txt does not exist"),
    ("text pairs: --nsamples_perpair 0", TCP, ["--audio_contexts", "{d}/good_contexts.json", "--challenging_texts",
                                               "{d}/texts.txt", "--out", "{d}/p.jsonl", "--nsamples_perpair", "0"],
     "--nsamples_perpair 0"),
    ("pairs: --group_size 0", CPP, ["--generated_dir", "{d}/gen", "--out_dir", "{d}/pp", "--group_size", "0"],
     "--group_size 0"),
    ("pairs: --val_size >= groups", CPP, ["--generated_dir", "{d}/gen", "--out_dir", "{d}/pp", "--group_size", "2",
                                          "--val_size", "1"], "--val_size 1 would leave no training pairs"),
    ("pairs: missing generated dir", CPP, ["--generated_dir", "{d}/none", "--out_dir", "{d}/pp", "--group_size", "2"],
     "does not exist"),
    ("pairs: corrupt generated json", CPP, ["--generated_dir", "{d}/gen_bad", "--out_dir", "{d}/pp", "--group_size",
                                            "2"], "x.json: not valid JSON"),
    ("generate: malformed manifest", GEN, ["--manifest", "{d}/bad.jsonl", "--ckpt", "{ckpt}", "--out_dir", "{d}/g"],
     "bad.jsonl:3: not valid JSON"),
    ("generate: manifest without id", GEN, ["--manifest", "{d}/no_id.jsonl", "--ckpt", "{ckpt}", "--out_dir",
                                            "{d}/g"], "no 'id' field"),
    ("generate: --ckpt missing", GEN, ["--manifest", "{d}/rows.jsonl", "--ckpt", "{d}/none.pt", "--out_dir", "{d}/g"],
     "none.pt does not exist"),
    ("iterate: --rounds 0", IT, ["--manifest", "{d}/rows.jsonl", "--init_ckpt", "{ckpt}", "--work_dir", "{d}/w",
                                 "--group_size", "2", "--rounds", "0"], "--rounds 0"),
    ("iterate: --group_size 1", IT, ["--manifest", "{d}/rows.jsonl", "--init_ckpt", "{ckpt}", "--work_dir", "{d}/w",
                                     "--group_size", "1"], "--group_size 1"),
    ("iterate: bad override before generation", IT, ["--manifest", "{d}/rows.jsonl", "--init_ckpt", "{ckpt}",
                                                      "--work_dir", "{d}/w", "--group_size", "2", "--",
                                                      "dpo.beta=-1"], "dpo.beta"),
    ("iterate: --init_ckpt missing", IT, ["--manifest", "{d}/rows.jsonl", "--init_ckpt", "{d}/none.pt", "--work_dir",
                                          "{d}/w", "--group_size", "2"], "none.pt does not exist"),
    ("generate: --asr_config without =", GEN, ["--manifest", "{d}/rows.jsonl", "--ckpt", "{ckpt}", "--out_dir",
                                                "{d}/g", "--asr_config", "window_s"], "--asr_config 'window_s': give"),
    ("iterate: --asr_config window out of range", IT, ["--manifest", "{d}/rows.jsonl", "--init_ckpt", "{ckpt}",
                                                       "--work_dir", "{d}/w", "--group_size", "2", "--asr_config",
                                                       "window_s=45"], "--asr_config: window_s=45"),
    ("iterate: malformed manifest", IT, ["--manifest", "{d}/bad.jsonl", "--init_ckpt", "{ckpt}", "--work_dir",
                                         "{d}/w", "--group_size", "2"], "bad.jsonl:3: not valid JSON"),
    # reward server
    ("serve: --max_mb 0", SERVE, ["--providers", "duration", "--port", "0", "--max_mb", "0"], "--max_mb"),
    ("serve: unknown provider", SERVE, ["--providers", "duraton", "--port", "0"], "unknown reward provider"),
    ("serve: port in use", SERVE, ["--providers", "duration", "--port", "{busy}"], "in use"),
    ("serve: FunASR dir missing", SERVE, ["--providers", "funasr_wer", "--port", "0", "--provider_config",
                                          'funasr_wer={{"model_id": "{d}/no_funasr"}}'], "no_funasr"),
    # training (config time)
    ("train_rl: rl.steps=1", RL, ["-cn", "F5TTS_RL_tiny", "ckpts.save_dir={d}/rl", "rl.steps=1"], "rl.steps"),
    ("train_rl: bad reward value", RL, ["-cn", "F5TTS_RL_tiny", "ckpts.save_dir={d}/rl",
                                        "rl.rewards.providers.0.config.wer_mode=words"], "wer_mode='words'"),
    ("train_rl: unknown provider", RL, ["-cn", "F5TTS_RL_tiny", "ckpts.save_dir={d}/rl",
                                        "rl.rewards.providers.1.name=resemblyzr"], "unknown reward provider"),
    ("train_dpo: no initial checkpoint", DPO, ["-cn", "F5TTS_DPO_tiny", "ckpts.save_dir={d}/dpo",
                                               "dpo.train_manifest={d}/rows.jsonl"], "initial checkpoint"),
    ("train: misspelt key", TRAIN, ["-cn", "F5TTS_tiny_demo", "ckpts.save_dir={d}/t", "optim.epochz=2"], "epochz"),
    ("train: truncated init_from", TRAIN, ["-cn", "F5TTS_tiny_demo", "ckpts.save_dir={d}/t",
                                           "ckpts.init_from={d}/trunc/model_last.pt"], "truncated"),
    ("train_rl: corrupt reference", RL, ["-cn", "F5TTS_RL_tiny", "ckpts.save_dir={d}/rl",
                                         "rl.ref_model_ckpt={d}/corrupt.safetensors"], "corrupt.safetensors"),
    ("train_dpo: malformed pair file", DPO, ["-cn", "F5TTS_DPO_tiny", "ckpts.save_dir={d}/dpo",
                                             "ckpts.init_from={ckpt}", "dpo.train_manifest={d}/bad.jsonl"],
     "bad.jsonl:3: not valid JSON"),
    ("train_dpo: pair file without fields", DPO, ["-cn", "F5TTS_DPO_tiny", "ckpts.save_dir={d}/dpo",
                                                  "ckpts.init_from={ckpt}", "dpo.train_manifest={d}/no_id.jsonl"],
     "no 'context_audio'"),
    ("train: init_from missing", TRAIN, ["-cn", "F5TTS_tiny_demo", "ckpts.save_dir={d}/t",
                                         "ckpts.init_from={d}/none.pt"], "none.pt does not exist"),
    # the listening page refuses before it starts serving
    ("app: missing checkpoint", "f5rl.app", ["--model", "{d}/none.pt", "--port", "1"], "none.pt does not exist"),
    ("app: released weights without a config", "f5rl.app", ["--model", "{d}/corrupt.safetensors", "--port", "1"],
     "model_cfg=F5TTS_v1_Base"),
    ("app: corpus without a test list", "f5rl.app", ["--corpus", "{d}/empty_folder", "--port", "1"],
     "has no test_eval.jsonl"),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.slow(seconds=53)
def test_every_bad_input_gets_one_line_and_exit_2(files):
    d = files["d"]
    (d / "unreadable.jsonl").write_text(json.dumps({"audio_path": "junk.wav", "text": "hi"}) + "\n")
    (d / "good_contexts.json").write_text(json.dumps([{"audio_path": "ok.wav", "text": "hi"}]))
    busy, port = _busy_port()
    env = {k: v for k, v in os.environ.items() if k not in ("F5RL_DEBUG", "HYDRA_FULL_ERROR")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    def run(case):
        _, module, args, _ = case
        argv = [a.format(d=d, ckpt=files["ckpt"], busy=port) for a in args]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                              timeout=120, cwd=d, env=env)
        return proc, time.perf_counter() - t0

    failures, rows = [], []
    try:  # two at a time: the time to fail is mostly the interpreter starting
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(run, CASES))
    finally:
        busy.close()
    for (case, _, _, needle), (proc, seconds) in zip(CASES, results):
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        rows.append((case, proc.returncode, seconds, last))
        if proc.returncode != 2 or needle not in last or "Traceback" in proc.stderr:
            failures.append(f"{case}: exit {proc.returncode}, want 2 and {needle!r} in the last line; "
                            f"stderr: {proc.stderr[-600:]}")
    print("\n| case | exit | s | stderr's last line |\n|---|---|---|---|")
    for case, rc, s, last in rows:
        print(f"| {case} | {rc} | {s:.1f} | {last[:110]} |")
    assert not failures, "\n".join(failures)

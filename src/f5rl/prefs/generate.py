"""Step 2: synthesise every manifest row and score it (DESIGN §9).

    accelerate launch -m f5rl.prefs.generate --manifest pairs.jsonl --ckpt model_last.pt --out_dir gen/ \
        [--nfe 16 --cfg 2.0 --seed 0 --asr whisper_asr --asr_config model=embedded:tiny.en --sim resemblyzer_sim]

Writes ``<id>.wav``, ``<id>.mel.npy`` and then ``<id>.json`` (CER, WER, SIM, duration, transcript,
seed, and the row). The ``.npy`` holds the log-mel the model produced, prompt frames first
(``prompt_frames`` in the JSON): DPO trains on that exact sample, since re-analysing the vocoded
wav (Griffin-Lim above all) gives a different, smeared mel. A row counts as done only when its JSON
exists, and every file is written atomically,
so a killed run restarts where it stopped and never takes a half-written file as done. Rows are
sharded over processes (``RANK``/``WORLD_SIZE`` set by ``accelerate launch``, or by ``--processes N``,
which starts the N shards itself with the cores split between them); rows with a text context are
skipped (F5 models take audio prompts) and counted.

``--processes N`` on a machine with several GPUs gives each process a GPU of its own, in turn. On a
CPU it shares the cores: a tiny model keeps several threads poorly busy, and one-thread processes do not
wait on each other. Measured with the shipped demo base, 32 rows at 8 NFE, on an idle 2-core AVX2
machine: one process of two threads took 84.2 s and 71.0 s, two processes of one thread 72.4 s and
67.1 s (two passes). Beside another one-thread job the two processes were slower, 98.6 s against
86.6 s for one one-thread process: that one already scores on one core while it synthesises on the
other. Each row's seed comes from its id, so the samples do not depend on the split (with the same
threads per process they are the same bytes).

``--asr_config``/``--sim_config`` give the two scorers their provider config as ``KEY=VALUE`` items (values read
as YAML; the keys of ``rl.rewards.providers.N.config``): a Whisper model or window, a WeSpeaker folder, a reward
server's URL. They are checked before any model loads, reach every process, and each row records them
(``scorers``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import torch

from f5rl.audio.io import load_audio, save_audio
from f5rl.infer.overlap import run_overlapped, share_cores, thread_config
from f5rl.rewards.base import RewardBatch
from f5rl.rewards.registry import build_provider
from f5rl.rewards.text_metrics import word_error_rate
from f5rl.utils.atomic import atomic_path, atomic_write_text
from f5rl.utils.cli import command_parser


def row_seed(row_id: str, base: int) -> int:
    return (zlib.crc32(row_id.encode()) + base) % (2**31)


def shard(rows: list[dict]) -> list[dict]:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return rows[rank::world]


def generate(manifest: str, ckpt: str, out_dir: str, config: str | None = None, nfe: int = 16, cfg: float = 2.0,
             seed: int = 0, asr: str = "whisper_asr", sim: str = "resemblyzer_sim", vocoder: str | None = None,
             progress: bool = True, extra_rewards: tuple[str, ...] = (), desc: str = "generate",
             processes: int = 1, asr_config: dict | None = None, sim_config: dict | None = None) -> dict:
    """Synthesise and score every row not done yet; ``extra_rewards`` (provider names, e.g. ``dnsmos``)
    are scored too and stored as ``reward/<name>`` (and ``reward/<name>/<component>``). ``asr_config`` and
    ``sim_config`` are the two scorers' provider configs (e.g. ``{"model": "large-v3"}``), recorded in each row.
    With ``processes`` > 1 the rows are shared by that many ``prefs.generate`` processes (module docstring)."""
    from tqdm import tqdm

    from f5rl.infer.tts import TTS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):  # temp files of a killed run
        stale.unlink()
    rows = read_manifest_rows(manifest)
    audio_rows = [r for r in rows if r.get("context_type", "audio") == "audio"]
    skipped_text = len(rows) - len(audio_rows)
    todo = [r for r in shard(audio_rows) if not (out / f"{r['id']}.json").is_file()]
    scorers = {"asr": {"name": asr, "config": dict(asr_config or {})},
               "sim": {"name": sim, "config": dict(sim_config or {})}}
    check_resumed_scorers(out, scorers)
    generated_elsewhere = 0
    if todo and processes > 1:
        run_processes(processes, manifest, ckpt, out, config, nfe, cfg, seed, asr, sim, vocoder, extra_rewards,
                      desc, progress, asr_config, sim_config)
        missing = [r["id"] for r in todo if not (out / f"{r['id']}.json").is_file()]
        if missing:
            raise RuntimeError(f"the generation processes left {len(missing)} rows undone (e.g. {missing[0]})")
        generated_elsewhere, todo = len(todo), []
    tts = TTS.from_checkpoint(ckpt, config, vocoder=vocoder) if todo else None
    bar = tqdm(total=len(todo), desc=desc, disable=not progress or not todo, dynamic_ncols=True)

    def synthesize(r: dict):
        ctx = load_audio(r["context_audio"])
        s = row_seed(r["id"], seed)
        return ctx, tts.synthesize(ctx, r["context_text"], r["text"], seed=s, nfe=nfe, cfg_strength=cfg)

    def score_and_write(r: dict, produced) -> None:
        ctx, res = produced
        batch = RewardBatch([res.audio], [r["text"]], ref_audio=[ctx])
        a = asr_p(batch)
        sm = sim_p(batch)
        extra = {}
        for name, p in extra_p.items():
            out_p = p(batch)
            extra[f"reward/{name}"] = float(out_p.scores[0])
            extra.update({f"reward/{name}/{c}": float(v[0]) for c, v in out_p.components.items()})
        transcript = asr_p.last_transcripts[0] if getattr(asr_p, "last_transcripts", None) else ""
        cer = float(a.components.get("char_error_rate", torch.tensor([math.nan]))[0])
        metrics = {"cer": cer, "wer": word_error_rate(r["text"], transcript) if transcript else math.nan,
                   "sim": float(sm.scores[0]), "duration": res.audio.numel() / 24000, "transcript": transcript,
                   "seed": res.seed, "nfe": nfe, "cfg": cfg, "ckpt": str(ckpt), "prompt_frames": res.prompt_frames,
                   "scorers": scorers, **extra}
        save_audio(out / f"{r['id']}.wav", res.audio)
        # the mel the sample was conditioned on, then the generated frames
        save_mel(out / f"{r['id']}.mel.npy", torch.cat([res.prompt_mel, res.mel.float()]))
        atomic_write_text(out / f"{r['id']}.json", json.dumps({**r, **metrics, "audio_path": f"{r['id']}.wav",
                                                               "mel_path": f"{r['id']}.mel.npy"}))
        bar.update()

    if todo:  # synthesis here, scoring on a worker thread (f5rl.infer.overlap)
        with share_cores(tts.device) as score_threads:
            # the user's config comes last: an explicit cpu_threads wins over the share
            asr_p = build_provider(asr, {**thread_config(asr, score_threads), **scorers["asr"]["config"]})
            sim_p = build_provider(sim, {**thread_config(sim, score_threads), **scorers["sim"]["config"]})
            extra_p = {n: build_provider(n, thread_config(n, score_threads)) for n in extra_rewards}
            run_overlapped(todo, synthesize, score_and_write)
        del asr_p, sim_p, extra_p  # frees the scorers' models and threads before torch work goes on
    bar.close()
    done = len(todo) + generated_elsewhere
    results = [json.loads((out / f"{r['id']}.json").read_text()) for r in shard(audio_rows)
               if (out / f"{r['id']}.json").is_file()]
    valid = [x for x in results if not math.isnan(x["cer"])]
    return {"rows": len(rows), "skipped_text_context": skipped_text, "generated_now": done, "done": len(results),
            "mean_cer": sum(x["cer"] for x in valid) / max(len(valid), 1),
            "mean_sim": sum(x["sim"] for x in valid) / max(len(valid), 1)}


def check_resumed_scorers(out: Path, scorers: dict) -> None:
    """A resumed folder must have been scored as this run scores: pairs compare the CER and SIM of a group's
    samples, so rows of two scorers in one folder would rank samples by different judges."""
    for path in sorted(out.glob("*.json")):
        before = json.loads(path.read_text()).get("scorers")
        if before is not None and before != scorers:
            raise ValueError(f"{out} holds rows scored by {before} ({path.name}); this run scores with {scorers}: "
                             "give the same --asr/--sim and their configs, or another --out_dir")


def run_processes(n: int, manifest: str, ckpt: str, out: Path, config: str | None, nfe: int, cfg: float, seed: int,
                  asr: str, sim: str, vocoder: str | None, extra_rewards: tuple[str, ...], desc: str,
                  progress: bool, asr_config: dict | None = None, sim_config: dict | None = None) -> None:
    """``n`` shards of the rows, each in a ``prefs.generate`` process of its own (``RANK``/``WORLD_SIZE``)
    with an equal share of this process's torch threads and, where there are GPUs, one GPU of its own (in
    turn); waits for all of them. Their progress bars and errors go to this stderr; a failed process stops
    the others (what they wrote is kept: a restart resumes)."""
    import torch

    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise ValueError("--processes > 1 inside a multi-process launch: the rows are already sharded by "
                         "WORLD_SIZE; use one or the other")
    threads = max(1, torch.get_num_threads() // n)
    gpus = visible_gpus() if torch.cuda.is_available() else []
    argv = [sys.executable, "-m", "f5rl.prefs.generate", "--manifest", str(manifest), "--ckpt", str(ckpt),
            "--out_dir", str(out), "--nfe", str(nfe), "--cfg", str(cfg), "--seed", str(seed), "--asr", asr,
            "--sim", sim, "--extra_rewards", ",".join(extra_rewards)]
    argv += (["--config", str(config)] if config else []) + (["--vocoder", vocoder] if vocoder else [])
    argv += [] if progress else ["--no_progress"]
    for flag, conf in (("--asr_config", asr_config), ("--sim_config", sim_config)):
        # JSON values read back as the same YAML values (parse_provider_config)
        argv += [flag, *(f"{k}={json.dumps(v)}" for k, v in conf.items())] if conf else []
    procs = []
    for rank in range(n):
        env = {**os.environ, **process_env(rank, n, threads, gpus)}
        procs.append(subprocess.Popen([*argv, "--desc", f"{desc} [{rank + 1}/{n}]"], env=env,
                                      stdout=subprocess.DEVNULL))

    def first_failure() -> tuple[int, int] | None:
        return next(((i, p.returncode) for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)

    try:
        while (failed := first_failure()) is None and any(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:  # a failure, or an interrupt here, stops the others
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    if failed:
        i, rc = failed
        raise RuntimeError(f"generation process {i + 1}/{n} exited with status {rc} (its error is above); "
                           "finished rows are kept, run again to resume")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (all of them when it is unset)."""
    import torch

    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [g.strip() for g in named.split(",") if g.strip()] if named else \
        [str(i) for i in range(torch.cuda.device_count())]


def process_env(rank: int, n: int, threads: int, gpus: list[str]) -> dict[str, str]:
    """Environment of generation process ``rank`` of ``n``: its shard, its threads and, with GPUs, the
    GPU ``rank mod len(gpus)`` (processes beyond the GPU count share them in turn)."""
    from f5rl.utils.threads import thread_env

    env = {"RANK": str(rank), "WORLD_SIZE": str(n), **thread_env(threads)}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[rank % len(gpus)]
    return env


def save_mel(path: Path, mel: torch.Tensor) -> None:
    """``(frames, n_mels)`` float32 ``.npy``, written atomically."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, mel.detach().cpu().numpy().astype(np.float32))


def read_manifest_rows(path: str) -> list[dict]:
    """Text/context rows (``id``, ``text``; f5rl.prefs.create_text_context_pairs writes them)."""
    from f5rl.data.rows import read_rows

    return read_rows(path, ("id", "text"), "--manifest (from f5rl.prefs.create_text_context_pairs)")


def check_scorers(asr: str, sim: str, asr_config: dict | None = None, sim_config: dict | None = None) -> None:
    """The two scorers built (no model loads) with their configs: an unknown name, key or value fails here."""
    from f5rl.rewards.registry import check_provider_config

    check_provider_config(asr, asr_config or {}, "--asr")
    check_provider_config(sim, sim_config or {}, "--sim")


def check_inputs(manifest: str, ckpt: str, asr: str, sim: str, extra_rewards: tuple[str, ...] = (),
                 processes: int = 1, asr_config: dict | None = None, sim_config: dict | None = None) -> None:
    """What ``generate`` is given, checked in seconds before a model loads."""
    read_manifest_rows(manifest)
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"--ckpt {ckpt} does not exist")
    if processes < 1:
        raise ValueError(f"--processes {processes}: must be >= 1")
    check_scorers(asr, sim, asr_config, sim_config)
    for name in extra_rewards:
        build_provider(name)  # an unknown name, or a missing extra, fails here


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--manifest", required=True, help="text/context rows (f5rl.prefs.create_text_context_pairs)")
    ap.add_argument("--ckpt", required=True, help="the policy checkpoint that synthesises")
    ap.add_argument("--config", default=None, help="training config.yaml (default: beside the checkpoint)")
    ap.add_argument("--out_dir", required=True, help="<id>.wav, <id>.mel.npy and <id>.json go here")
    ap.add_argument("--nfe", type=int, default=16, help="Euler steps of synthesis")
    ap.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance strength")
    ap.add_argument("--seed", type=int, default=0, help="base seed (each row's seed derives from its id)")
    ap.add_argument("--asr", default="whisper_asr", help="ASR reward provider (CER, WER)")
    ap.add_argument("--asr_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config of the ASR provider, values read as YAML (e.g. model=large-v3 window_s=10; "
                         "the keys of rl.rewards.providers.N.config)")
    ap.add_argument("--sim", default="resemblyzer_sim", help="speaker-similarity reward provider")
    ap.add_argument("--sim_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config of the speaker-similarity provider (e.g. model_dir=/path/to/wespeaker)")
    ap.add_argument("--vocoder", default=None, help="vocoder (default: the checkpoint config's)")
    ap.add_argument("--extra_rewards", default="",
                    help="comma-separated reward providers also scored (reward/NAME; e.g. dnsmos,duration)")
    ap.add_argument("--processes", type=int, default=1,
                    help="share the rows among this many processes started here, each with an equal share of the "
                         "threads and, with several GPUs, a GPU of its own (the demo's tiny model on an idle 2-core "
                         "CPU: 2 was about 10%% faster than 1; beside a busy core it was slower)")
    ap.add_argument("--desc", default="generate", help="label of the progress bar")
    ap.add_argument("--no_progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    from f5rl.utils.cli import one_line_errors

    with one_line_errors("generate"):
        from f5rl.rewards.registry import parse_provider_config

        extra = tuple(n for n in args.extra_rewards.split(",") if n)
        asr_config = parse_provider_config(args.asr_config, "--asr_config")
        sim_config = parse_provider_config(args.sim_config, "--sim_config")
        check_inputs(args.manifest, args.ckpt, args.asr, args.sim, extra, args.processes, asr_config, sim_config)
        summary = generate(args.manifest, args.ckpt, args.out_dir, args.config, args.nfe, args.cfg, args.seed,
                           args.asr, args.sim, args.vocoder, progress=not args.no_progress, extra_rewards=extra,
                           desc=args.desc, processes=args.processes, asr_config=asr_config, sim_config=sim_config)
    print("| rows | text-context rows skipped | generated now | done (this shard) | mean CER | mean SIM |")
    print("|---|---|---|---|---|---|")
    print(f"| {summary['rows']} | {summary['skipped_text_context']} | {summary['generated_now']} | {summary['done']} "
          f"| {summary['mean_cer']:.3f} | {summary['mean_sim']:.3f} |")


if __name__ == "__main__":
    main()

"""Synthesise speech from an f5rl or released F5 checkpoint.

    python -m f5rl.infer.synthesize --ckpt ckpts/demo/stage2_grpo/model_last.pt \
        --ref_audio prompt.wav --ref_text "what the prompt says" --text "what to say" --out out.wav \
        [--nfe 32 --cfg 2.0 --sway -1 --speed 1.0 --seed 0 --duration SECONDS --vocoder griffin_lim|vocos]
        [--best_of 4 --rewards whisper_asr,resemblyzer_sim --weights 3,1 --reward_config 'whisper_asr={...}']
    python -m f5rl.infer.synthesize --ckpt ... --manifest items.jsonl --out_dir out/   # batch form

Prompts are clipped at a silence to at most 12 s and quiet ones are raised to F5's loudness;
long text is split into chunks and joined with cross-fades. Manifest rows: ``ref_audio``,
``ref_text``, ``text`` and optionally ``id``/``seed``. Bad input stops with one line saying
what is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from f5rl.utils.cli import command_parser


def _load_ref(path: str):
    from f5rl.audio.io import load_audio
    from f5rl.infer.tts import clip_reference

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reference audio not found: {p}")
    import soundfile as sf

    try:
        sr = sf.info(str(p)).samplerate
    except Exception as err:  # libsndfile error types vary
        raise ValueError(f"cannot read reference audio {p}: {err}") from err
    if sr < 8000:
        raise ValueError(f"reference audio {p} has sample rate {sr} Hz; use at least 8 kHz (16-48 kHz is typical)")
    return clip_reference(load_audio(p))


def best_of_rewards(args: argparse.Namespace):
    """The ``RewardSet`` of ``--best_of`` from ``--rewards``, ``--weights`` and ``--reward_config``; a name, key
    or value it cannot take fails here in one line."""
    from f5rl.rewards.combine import RewardSet
    from f5rl.rewards.serve import provider_configs

    names = [n for n in args.rewards.split(",") if n]
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"--weights {args.weights}: give one weight per --rewards provider ({len(names)})")
    configs = provider_configs(args.rewards, args.reward_config)
    for name in configs.keys() - set(names):
        raise ValueError(f"--reward_config names {name}, which is not in --rewards {args.rewards}")
    try:
        return RewardSet.from_config([{"name": n, "weight": w, "config": configs.get(n, {})}
                                      for n, w in zip(names, weights)])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"--reward_config: {err}" if configs else f"--rewards: {err}") from None


def run(args: argparse.Namespace) -> list[dict]:
    from f5rl.audio.io import save_audio
    from f5rl.infer.tts import TTS

    if args.best_of < 1:
        raise ValueError(f"--best_of {args.best_of}: must be >= 1 (1: one sample, N: the best of N by --rewards)")
    if args.ref_text is not None and not args.ref_text.strip():
        raise ValueError("--ref_text is empty: give the transcript of --ref_audio (F5 models need it)")
    if args.manifest:  # read before the model loads: a bad line fails in seconds
        from f5rl.data.rows import read_rows

        rows = read_rows(args.manifest, ("ref_audio", "ref_text", "text"), "--manifest")
        out_dir = Path(args.out_dir or "synth_out")
        items = [(r, out_dir / f"{r.get('id', f'{i:05d}')}.wav") for i, r in enumerate(rows)]
    else:
        if args.text is None or args.ref_audio is None or args.ref_text is None or args.out is None:
            raise ValueError("give --ref_audio, --ref_text, --text and --out (or --manifest and --out_dir)")
        items = [({"ref_audio": args.ref_audio, "ref_text": args.ref_text, "text": args.text}, Path(args.out))]
    rewards = best_of_rewards(args) if args.best_of > 1 else None  # built (no model loads) before the TTS
    tts = TTS.from_checkpoint(args.ckpt, args.config, vocoder=args.vocoder, device=args.device,
                              model_cfg=args.model_cfg, vocab=args.vocab, compile=args.compile)
    kw = dict(nfe=args.nfe, cfg_strength=args.cfg, sway=args.sway, speed=args.speed)
    from tqdm import tqdm

    report = []
    desc = f"best of {args.best_of}" if rewards is not None else "synthesise"
    for row, out in tqdm(items, desc=desc, disable=len(items) < 2, dynamic_ncols=True):  # a bar with ETA
        ref = _load_ref(row["ref_audio"])
        seed = int(row.get("seed", args.seed))
        if rewards is not None:
            from f5rl.infer.best_of_n import best_of_n

            ranked = best_of_n(tts, rewards, ref, row["ref_text"], row["text"], args.best_of, seed, **kw)
            syn = ranked.best
            entry = {"candidates": [{"seed": seed + i, "reward": float(ranked.rewards[i]),
                                     **{k: v[i] for k, v in ranked.metrics.items()}} for i in range(args.best_of)],
                     "chosen": ranked.index}
        elif args.duration:
            frames = int(args.duration * 24000 / 256)
            syn = tts.synthesize(ref, row["ref_text"], row["text"], seed=seed,
                                 duration=tts.prepare_prompt(ref).shape[0] + frames, **kw)
            entry = {}
        else:
            syn = tts.synthesize_long(ref, row["ref_text"], row["text"], seed=seed, **kw)
            entry = {}
        save_audio(out, syn.audio)
        entry.update(out=str(out), seconds=round(syn.audio.numel() / 24000, 3), seed=seed)
        report.append(entry)
        print(json.dumps(entry))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--ckpt", required=True, help="an f5rl .pt or a released F5 .safetensors")
    ap.add_argument("--config", default=None, help="training config.yaml (default: beside the checkpoint)")
    ap.add_argument("--model_cfg", default=None, help="shipped config name for a released checkpoint (F5TTS_v1_Base)")
    ap.add_argument("--vocab", default=None, help="vocab.txt of a released checkpoint (with --model_cfg)")
    ap.add_argument("--ref_audio", help="the prompt audio (the voice to speak in)")
    ap.add_argument("--ref_text", help="what the prompt audio says")
    ap.add_argument("--text", help="what to say")
    ap.add_argument("--out", help="the .wav to write")
    ap.add_argument("--manifest",
                    help="JSONL/TSV rows of ref_audio, ref_text, text (and id, seed) to synthesise instead")
    ap.add_argument("--out_dir", help="folder of the manifest's <id>.wav files (default: synth_out)")
    ap.add_argument("--nfe", type=int, default=32, help="Euler steps of the ODE")
    ap.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance strength")
    ap.add_argument("--sway", type=float, default=-1.0, help="sway-sampling coefficient of the time grid")
    ap.add_argument("--speed", type=float, default=1.0, help="speaking rate of the duration estimate")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--duration", type=float, default=None, help="seconds of generated speech (default: estimated)")
    ap.add_argument("--vocoder", default=None, choices=(None, "griffin_lim", "vocos"),
                    help="vocoder (default: the checkpoint config's)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile the DiT (model.compile; default: the checkpoint config's): the first "
                         "sample compiles, a manifest's later rows are faster")
    ap.add_argument("--best_of", type=int, default=1,
                    help="synthesise N candidates and keep the one --rewards score best")
    ap.add_argument("--rewards", default="whisper_asr,resemblyzer_sim", help="reward providers of --best_of")
    ap.add_argument("--weights", default="3,1", help="weights of --rewards, comma-separated")
    ap.add_argument("--reward_config", action="append", default=[], metavar="NAME=JSON",
                    help="config of one --rewards provider, e.g. 'whisper_asr={\"model\": \"large-v3\"}' "
                         "(repeatable; as rewards.serve --provider_config)")
    args = ap.parse_args(argv)
    try:
        run(args)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

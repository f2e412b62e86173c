"""Evaluate one or more checkpoints on a test list: WER/CER, speaker similarity, DNSMOS, RTF.

    python -m f5rl.eval.evaluate --ckpt A/model_last.pt [--ckpt B/model_last.pt ...] \
        --test_list data/demo_char/test_eval.jsonl --out_dir eval/ [--nfe 16 --ground_truth]

Test lists: Seed-TTS-eval ``meta.lst`` lines ``utt|prompt_text|prompt_wav|target_text`` (paths
relative to the list) or JSON lines with ``utt``, ``prompt_text``, ``prompt_wav``, ``target_text``
and optionally ``target_wav`` (the recording of the target, used by ``--ground_truth`` as a
sanity row: real speech should get a low CER and a high similarity).
Writes ``<system>/<utt>.wav``, ``<system>.csv`` (per utterance), ``summary.json``, ``report.md``,
``report.html`` and PNG plots (metric distributions, CER against duration).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from f5rl.utils.cli import command_parser

METRICS = ("cer", "wer", "sim", "dnsmos", "rtf")


@dataclass
class TestItem:
    utt: str
    prompt_text: str
    prompt_wav: str
    target_text: str
    target_wav: str | None = None
    speaker: str | None = None


def read_test_list(path: str | Path) -> list[TestItem]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"test list not found: {path}")
    base = path.parent
    fix = lambda p: p if p is None or Path(p).is_absolute() else str(base / p)  # noqa: E731
    items = []
    if path.suffix in (".jsonl", ".json"):
        from f5rl.data.rows import read_rows

        for r in read_rows(path, ("utt", "prompt_text", "prompt_wav", "target_text"), "test list"):
            items.append(TestItem(r["utt"], r["prompt_text"], fix(r["prompt_wav"]), r["target_text"],
                                  fix(r.get("target_wav")), r.get("speaker")))
    else:  # F5-TTS's LibriSpeech-PC lists: utt|prompt_text|prompt_wav|target_text
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 4:
                raise ValueError(f"{path}:{n}: expected utt|prompt_text|prompt_wav|target_text")
            items.append(TestItem(parts[0], parts[1], fix(parts[2]), parts[3]))
    if not items:
        raise ValueError(f"{path} lists no utterances")
    return items


def score(items: list[TestItem], audios, providers: dict) -> list[dict]:
    """Per-utterance metrics of generated (or ground-truth) audio."""
    from f5rl.audio.io import load_audio
    from f5rl.rewards.base import RewardBatch
    from f5rl.rewards.text_metrics import char_error_rate, word_error_rate

    prompts = [load_audio(it.prompt_wav) for it in items]
    batch = RewardBatch(list(audios), [it.target_text for it in items], ref_audio=prompts)
    asr = providers["asr"](batch)
    hyps = providers["asr"].last_transcripts
    sim = providers["sim"](batch).scores.tolist()
    mos = providers["mos"](batch).scores.tolist() if "mos" in providers else [math.nan] * len(items)
    rows = []
    for i, it in enumerate(items):
        rows.append({"utt": it.utt, "target_text": it.target_text, "transcript": hyps[i],
                     "cer": char_error_rate(it.target_text, hyps[i]), "wer": word_error_rate(it.target_text, hyps[i]),
                     "sim": sim[i], "dnsmos": mos[i], "duration": audios[i].numel() / 24000,
                     "asr_reward": float(asr.scores[i])})
    return rows


def synthesize_items(tts, items: list[TestItem], nfe: int = 16, cfg: float = 2.0, seed: int = 0,
                     save_dir: Path | None = None, desc: str | None = None) -> tuple[list, list[float]]:
    """Synthesise every item with ``tts`` (fixed seed); returns audios and real-time factors.
    ``desc``: show a progress bar (with ETA) under this name."""
    from tqdm import tqdm

    from f5rl.audio.io import load_audio, save_audio
    from f5rl.infer.tts import clip_reference

    audios, rtfs = [], []
    for it in tqdm(items, desc=desc, disable=desc is None, dynamic_ncols=True):
        t0 = time.perf_counter()
        syn = tts.synthesize(clip_reference(load_audio(it.prompt_wav)), it.prompt_text, it.target_text,
                             seed=seed, nfe=nfe, cfg_strength=cfg)
        rtfs.append((time.perf_counter() - t0) / max(syn.audio.numel() / 24000, 1e-3))
        audios.append(syn.audio)
        if save_dir is not None:
            save_audio(save_dir / f"{it.utt}.wav", syn.audio)
    return audios, rtfs


def evaluate_rows(tts, items: list[TestItem], providers: dict, nfe: int = 16, seed: int = 0) -> list[dict]:
    """Per-item scores (and RTF) of an in-memory model on ``items`` (trainer validation)."""
    audios, rtfs = synthesize_items(tts, items, nfe, seed=seed)
    rows = score(items, audios, providers)
    for r, rtf in zip(rows, rtfs):
        r["rtf"] = rtf
    return rows


def val_metrics(rows: list[dict], prefix: str = "val/") -> dict[str, float]:
    """``rows``' means as logged metrics, ``{prefix}cer`` etc. (metrics no row has are left out)."""
    return {f"{prefix}{k}": v for k, v in summarize(rows).items() if k != "n" and not math.isnan(v)}


def evaluate_system(name: str, ckpt: str | None, items: list[TestItem], out_dir: Path, providers: dict,
                    nfe: int = 16, cfg: float = 2.0, seed: int = 0) -> list[dict]:
    from f5rl.audio.io import load_audio

    if ckpt is None:  # ground truth
        audios = [load_audio(it.target_wav) for it in items]
        rtfs = [math.nan] * len(items)
    else:
        from f5rl.infer.tts import TTS

        audios, rtfs = synthesize_items(TTS.from_checkpoint(ckpt), items, nfe, cfg, seed, out_dir / name,
                                        desc=f"synthesise {name}")
    rows = score(items, audios, providers)
    for r, rtf in zip(rows, rtfs):
        r["rtf"] = rtf
    with open(out_dir / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def summarize(rows: list[dict]) -> dict[str, float]:
    out = {}
    for m in METRICS:
        vals = [r[m] for r in rows if not math.isnan(r[m])]
        out[m] = sum(vals) / len(vals) if vals else math.nan
    out["n"] = len(rows)
    return out


def plots(results: dict[str, list[dict]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, m in zip(axes, ("cer", "sim", "dnsmos")):
        for name, rows in results.items():
            vals = [r[m] for r in rows if not math.isnan(r[m])]
            if vals:
                ax.hist(vals, bins=15, alpha=0.5, label=name)
        ax.set_title(m.upper() + ("" if ax.has_data() else " (not scored)"))
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "metric_distributions.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in results.items():
        ax.scatter([r["duration"] for r in rows], [r["cer"] for r in rows], s=12, label=name)
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("CER")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "cer_vs_duration.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def write_report(summary: dict[str, dict], pngs: list[Path], out_dir: Path, scorers: str = "") -> None:
    """``report.md`` and ``report.html``; ``scorers`` says which providers (and configs) scored."""
    def cfg(s: dict) -> str:  # the synthesis guidance; recordings have none
        return "—" if s.get("cfg") is None else f"{s['cfg']:g}"

    header = "| system | CFG | n | CER | WER | SIM | DNSMOS | RTF |"
    lines = ["# f5rl evaluation", "", *([f"Scored by {scorers}.", ""] if scorers else []), header,
             "|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {cfg(s)} | {s['n']} | {s['cer']:.4f} | {s['wer']:.4f} | {s['sim']:.4f} "
                     f"| {s['dnsmos']:.3f} | {s['rtf']:.3f} |")
    lines += ["", *[f"![{p.stem}]({p.name})" for p in pngs], ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    cells = "".join(
        f"<tr><td>{n}</td><td>{cfg(s)}</td><td>{s['n']}</td>"
        + "".join(f"<td>{s[m]:.4f}</td>" for m in METRICS) + "</tr>" for n, s in summary.items())
    html = ("<html><head><meta charset='utf-8'><title>f5rl evaluation</title></head><body><h1>f5rl evaluation</h1>"
            "<table border='1' cellpadding='4'><tr><th>system</th><th>CFG</th><th>n</th>"
            + "".join(f"<th>{m.upper()}</th>" for m in METRICS) + f"</tr>{cells}</table>"
            + "".join(f"<p><img src='{p.name}'></p>" for p in pngs) + "</body></html>")
    (out_dir / "report.html").write_text(html)


def guidance_per_ckpt(cfgs: list[float] | None, n: int) -> list[float]:
    """The inference CFG strength of each of ``n`` checkpoints: none given is 2.0 for all, one is for all,
    else one per checkpoint (a GRPO policy that absorbed guidance is measured at its own)."""
    if not cfgs:
        return [2.0] * n
    if len(cfgs) == 1:
        return list(cfgs) * n
    if len(cfgs) != n:
        raise ValueError(f"--cfg given {len(cfgs)} times for {n} --ckpt: give it once (for every checkpoint) "
                         "or once per --ckpt, in the same order")
    return list(cfgs)


def evaluate(ckpts: list[str], test_list: str, out_dir: str, ground_truth: bool = False, nfe: int = 16,
             asr: str = "whisper_asr", sim: str = "resemblyzer_sim", mos: str | None = "dnsmos",
             names: list[str] | None = None, cfgs: list[float] | None = None, asr_config: dict | None = None,
             sim_config: dict | None = None) -> dict[str, dict]:
    """Synthesise ``test_list`` with every checkpoint (at its CFG strength, ``cfgs``) and score it with the
    ``asr`` and ``sim`` providers (built with ``asr_config`` and ``sim_config``, e.g. ``{"model": "large-v3"}``)
    and ``mos``; writes per-utterance CSVs, plots, ``summary.json`` and the report into ``out_dir``."""
    from f5rl.rewards.registry import build_provider

    guidance = guidance_per_ckpt(cfgs, len(ckpts))
    items = read_test_list(test_list)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    providers = {"asr": build_provider(asr, asr_config), "sim": build_provider(sim, sim_config)}
    if mos:
        providers["mos"] = build_provider(mos)
    scorers = ", ".join(f"{kind} `{name}`" + (f" {conf}" if conf else "")
                        for kind, name, conf in (("ASR", asr, asr_config), ("SIM", sim, sim_config), ("MOS", mos, None))
                        if name)
    systems: dict[str, tuple[str | None, float | None]] = {}  # name: (checkpoint, CFG); recordings have neither
    if ground_truth:
        if any(it.target_wav is None for it in items):
            raise ValueError("--ground_truth needs target_wav for every item (use the JSONL test list)")
        systems["ground_truth"] = (None, None)
    for i, c in enumerate(ckpts):
        name = (names or [])[i] if names and i < len(names) else f"{Path(c).parent.name}_{Path(c).stem}"
        systems[name] = (c, guidance[i])
    results = {n: evaluate_system(n, c, items, out, providers, nfe, cfg) for n, (c, cfg) in systems.items()}
    summary = {n: {**summarize(results[n]), "cfg": cfg} for n, (_, cfg) in systems.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, plots(results, out), out, scorers)
    return summary


def main(argv: list[str] | None = None) -> None:
    import sys

    ap = command_parser(__doc__)
    ap.add_argument("--ckpt", action="append", default=[], help="a checkpoint to evaluate (repeatable)")
    ap.add_argument("--name", action="append", default=None, help="display name per --ckpt")
    ap.add_argument("--test_list", action="append", required=True,
                    help="Seed-TTS .lst or JSONL test list; repeat it (e.g. test_eval.jsonl and test_free_eval.jsonl) "
                         "to report each list in its own subfolder of --out_dir")
    ap.add_argument("--out_dir", required=True, help="reports, per-utterance CSVs and plots go here")
    ap.add_argument("--ground_truth", action="store_true", help="also score the recordings themselves (a sanity row)")
    ap.add_argument("--nfe", type=int, default=16, help="Euler steps of synthesis")
    ap.add_argument("--cfg", type=float, action="append", default=None,
                    help="CFG strength of synthesis (default 2.0): once for every --ckpt, or once per --ckpt in "
                         "their order (e.g. a GRPO policy at 1.0 beside its base at 2.0)")
    ap.add_argument("--asr", default="whisper_asr", help="ASR provider of WER/CER")
    ap.add_argument("--asr_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config of the ASR provider, values read as YAML (e.g. model=large-v3; the keys of "
                         "rl.rewards.providers.N.config)")
    ap.add_argument("--sim", default="resemblyzer_sim", help="speaker-similarity provider")
    ap.add_argument("--sim_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config of the speaker-similarity provider (e.g. model_dir=/path/to/wespeaker)")
    ap.add_argument("--mos", default="dnsmos", help="MOS provider ('' to skip)")
    args = ap.parse_args(argv)
    if not args.ckpt and not args.ground_truth:
        ap.error("give at least one --ckpt or --ground_truth")
    for ckpt in args.ckpt:  # before any test list is read or model loaded
        if not Path(ckpt).is_file():
            print(f"error: --ckpt {ckpt} does not exist", file=sys.stderr)
            sys.exit(2)
    try:
        from f5rl.rewards.registry import check_provider_config, parse_provider_config

        guidance_per_ckpt(args.cfg, len(args.ckpt))
        scorers = {"asr_config": parse_provider_config(args.asr_config, "--asr_config"),
                   "sim_config": parse_provider_config(args.sim_config, "--sim_config")}
        check_provider_config(args.asr, scorers["asr_config"], "--asr")
        check_provider_config(args.sim, scorers["sim_config"], "--sim")
        if args.mos:
            check_provider_config(args.mos, {}, "--mos")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    several = len(args.test_list) > 1
    for test_list in args.test_list:
        out_dir = Path(args.out_dir) / Path(test_list).stem if several else Path(args.out_dir)
        try:
            evaluate(args.ckpt, test_list, str(out_dir), args.ground_truth, args.nfe, args.asr, args.sim,
                     args.mos or None, args.name, args.cfg, **scorers)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        print(f"## {test_list}\n" if several else "", end="")
        print((out_dir / "report.md").read_text())


if __name__ == "__main__":
    main()

"""The CPU demo behind ``make demo``: the whole method on the embedded defaults, offline.

1. corpus  – synthesise the multi-speaker demo corpus (``data/demo_char``) if it is missing;
2. base    – the shipped demo base model (``f5rl/assets/demo_base``, rebuilt by ``make demo-base``),
   a tiny DiT that already speaks; ``--from-scratch`` trains a stage-0 CFM model instead (minutes,
   unintelligible: ASR rewards then carry little signal);
3. stage 1 – Gaussian-NLL warmup of the σ head, starting from the base (or stage-0) weights;
4. stage 2 – GRPO over ODE rollouts with the embedded offline rewards (Whisper tiny.en CER and NLL,
   resemblyzer speaker similarity on Griffin-Lim audio), held-out CER and SIM before/after;
5. DPO      – one round of offline preference optimisation from the GRPO policy, with held-out
   pair accuracy and the reward of fresh samples on held-out sentences before/after (same seeds);
then a summary: loss curves (PNG), checkpoints, sample audio and the trackio project.

Each stage builds its command line once (:class:`Command`), prints it and runs it in-process from
the same arguments. ``--quick`` runs a
reduced version (small corpus, a few updates) for CI.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from f5rl.eval.base_model import base_overrides, check_base
from f5rl.utils.cli import command_parser


@dataclass
class DemoPlan:
    out: Path
    data: Path
    sentences: int
    stage0_updates: int
    stage1_updates: int
    stage2_updates: int
    quick: bool
    dpo_groups: int = 48  # train sentences, 4 samples each
    dpo_held_out_groups: int = 24  # held-out sentences, 4 samples each, before and after
    dpo_updates: int = 120
    # (noise, t) draws of the implicit accuracy on the held-out and training pairs: dpo.val_draws=32 made
    # these checks 290 s of the demo's 1002-s DPO round (make demo 27 min); the demo shows them from 8 (noisier)
    dpo_val_draws: int = 8
    stage2_prompt_groups: int = 96  # GRPO's synthesis prompts: train sentences in held-out voices
    held_out_items: int = 24  # GRPO's before/after table: half template, half free-text sentences
    judge: str = "embedded:base"  # Whisper model judging held-out CER (the reward uses tiny.en)
    base: Path | None = None  # shipped base model folder; None: train stage 0
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)


def plan(out: str, data: str, quick: bool, base: Path | None = None) -> DemoPlan:
    if quick:
        return DemoPlan(Path(out), Path(data), sentences=60, stage0_updates=12, stage1_updates=6, stage2_updates=2,
                        quick=True, dpo_groups=3, dpo_held_out_groups=2, dpo_updates=2, base=base,
                        stage2_prompt_groups=3, held_out_items=4, judge="embedded:tiny.en")
    return DemoPlan(Path(out), Path(data), sentences=1200, stage0_updates=600, stage1_updates=200, stage2_updates=16,
                    quick=False, base=base)


def stage_corpus(p: DemoPlan) -> None:
    from f5rl.data.prepare_demo import SPEAKERS, build

    marker = p.data / "speakers.json"
    voices = {s: (v.__dict__ if v else "piper:joe") for s, v in SPEAKERS.items()}
    old = json.loads(marker.read_text()) if marker.is_file() else {}
    if old.get("sentences") == p.sentences and old.get("speakers") == voices:
        print(f"[corpus] using existing {p.data}")
        return
    print(f"[corpus] python -m f5rl.data.prepare_demo --out {p.data} --sentences {p.sentences}")
    summary = build(p.data, sentences=p.sentences, report_similarity=not p.quick)
    sim = summary.get("similarity")
    line = f"{summary['train_items']} train / {summary['test_items']} test utterances, {summary['train_hours']} h"
    if isinstance(sim, dict):
        line += f"; speaker cosine same {sim['same_speaker_mean']} vs different {sim['different_speaker_mean']}"
    print(f"[corpus] {line}")


@dataclass
class Command:
    """A stage's command line, built once: printed as a user would type it, and run in-process from
    the very same arguments (so what the demo shows is what it does)."""

    module: str  # python -m <module>
    argv: list[str]

    def line(self) -> str:
        return "python -m " + shlex.join([self.module, *self.argv])

    def config(self, schema):
        """The validated config of a Hydra entry point's ``-cn NAME key=value ...``."""
        from f5rl.config import compose, validate

        if self.argv[:1] != ["-cn"]:
            raise ValueError(f"{self.module}: expected -cn NAME first, got {self.argv[:2]}")
        return validate(compose(self.argv[1], self.argv[2:]), schema)


def _train(name: str, overrides: list[str]) -> dict:
    from f5rl.config.schema import TrainConfig
    from f5rl.train.trainer import Trainer

    cmd = Command("f5rl.train.train", ["-cn", "F5TTS_tiny_demo", *overrides])
    print(f"[{name}] {cmd.line()}")
    trainer = Trainer(cmd.config(TrainConfig))
    trainer.setup()
    summary = trainer.train()
    print(summary.render())
    return {"save_dir": summary.save_dir, "updates": summary.updates, "final_loss": summary.final_loss,
            "checkpoints": summary.checkpoints, "samples": summary.samples,
            "seconds": round(summary.wall_seconds, 1), "precision": summary.precision}


def stage0(p: DemoPlan) -> None:
    if p.base is not None:
        print(f"[stage0] using the shipped base model {p.base} (make demo-base rebuilds it)")
        return
    over = [f"datasets.path={p.data}", f"ckpts.save_dir={p.out / 'stage0_mse'}",
            f"optim.total_updates={p.stage0_updates}", "model.objective=mse", "ckpts.run_name=stage0_mse"]
    if p.quick:
        over += ["ckpts.save_per_updates=6", "ckpts.last_per_updates=6", "ckpts.sample_steps=4",
                 "optim.num_warmup_updates=2"]
    p.results["stage0"] = _train("stage0", over)


def stage1(p: DemoPlan) -> None:
    from f5rl.scripts.grpo_recipe import warmup_argv

    init = check_base(p.base) if p.base is not None else p.out / "stage0_mse" / "model_last.pt"
    argv = warmup_argv(p.base, p.data, p.out / "stage1_gaussian_nll", p.stage1_updates, init)
    if p.quick:
        argv += ["ckpts.save_per_updates=3", "ckpts.last_per_updates=3", "ckpts.sample_steps=4",
                 "optim.num_warmup_updates=1"]
    p.results["stage1"] = _train("stage1", argv[2:])  # _train adds -cn F5TTS_tiny_demo


def stage2(p: DemoPlan) -> None:
    """GRPO with the embedded offline rewards (Whisper tiny.en CER and NLL, resemblyzer similarity,
    z-scored within each group) on Griffin-Lim audio, the ``F5TTS_RL_tiny`` recipe (advantage-weighted
    matching on synthesis prompts, README "GRPO on the demo base"); then held-out sentences (template and free text)
    synthesised before and after with the same seeds and judged by Whisper base (not the reward's ASR)."""
    from f5rl.config.schema import RLTrainConfig
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl
    from f5rl.scripts.grpo_recipe import grpo_argv
    from f5rl.train.rl_trainer import RLTrainer

    init = p.out / "stage1_gaussian_nll" / "model_last.pt"
    # the recipe rolls out synthesis prompts (a held-out voice saying a train sentence), as inference does
    prompts = write_jsonl(demo_rows(p.data, groups=p.stage2_prompt_groups, nsamples=4, split="train"),
                          p.out / "stage2_prompts.jsonl")
    extra = [f"optim.total_updates={p.stage2_updates}", f"rl.prompts_manifest={prompts}",
             f"rl.val_manifest={p.data / 'test.jsonl'}", f"rl.val_every={max(p.stage2_updates // 3, 1)}",
             "ckpts.keep_best_by=val/mean_reward", "ckpts.run_name=stage2_grpo"]
    if p.quick:
        extra += ["rl.steps=4", "rl.val_size=2", "rl.group_size=2", "ckpts.save_per_updates=2",
                  "model.vocoder.griffin_lim_iters=4"]
    cmd = Command("f5rl.train.train_rl", grpo_argv(p.base, p.data, init, p.out / "stage2_grpo", extra))
    print(f"[stage2] {cmd.line()}")
    trainer = RLTrainer(cmd.config(RLTrainConfig))
    try:
        trainer.setup()
        before = trainer.validate()
        summary = trainer.train()
        after = trainer.validate()
    finally:
        trainer.close()
    print(summary.render())
    p.results["stage2"] = {"save_dir": summary.save_dir, "updates": summary.updates, "final_loss": summary.final_loss,
                           "checkpoints": summary.checkpoints, "samples": summary.samples,
                           "seconds": round(summary.wall_seconds, 1), "precision": summary.precision,
                           "val_before": before, "val_after": after,
                           "held_out": held_out_table(p, init, p.out / "stage2_grpo" / "model_last.pt")}


def held_out_table(p: DemoPlan, before: Path, after: Path) -> dict:
    """CER (Whisper base, per item clipped at 1) and SIM of fresh samples on held-out sentences of
    both test lists, before and after, paired by item."""
    from f5rl.eval.evaluate import read_test_list
    from f5rl.eval.held_out import HeldOutJudge, compare

    n = p.held_out_items // 2
    items = [*read_test_list(p.data / "test_eval.jsonl")[:n], *read_test_list(p.data / "test_free_eval.jsonl")[:n]]
    judge = HeldOutJudge((p.judge,), nfe=4 if p.quick else 16)
    rows_b, rows_a = judge.measure(before, items), judge.measure(after, items)
    out = {"items": len(items), "judge": p.judge,
           "cer": compare(rows_b, rows_a, f"cer1@{p.judge}").__dict__, "sim": compare(rows_b, rows_a, "sim").__dict__}
    print("\n".join(held_out_lines(out)))
    return out


def held_out_lines(h: dict) -> list[str]:
    c, s = h["cer"], h["sim"]
    return [f"| GRPO, {h['items']} held-out sentences (half template, half free text; same seeds) "
            "| before | after | change ± SE |", "|---|---|---|---|",
            f"| CER (Whisper {h['judge']}, per item clipped at 1) | {c['before']:.4f} | {c['after']:.4f} "
            f"| {c['change']:+.4f} ± {c['se']:.4f} |",
            f"| SIM (resemblyzer) | {s['before']:.4f} | {s['after']:.4f} | {s['change']:+.4f} ± {s['se']:.4f} |"]


def stage3_dpo(p: DemoPlan) -> None:
    """One round of offline preference optimisation from the GRPO policy: 4 samples per train
    sentence (voices of held-out utterances), scored by Whisper CER and resemblyzer SIM, best paired
    against worst, flow-matching DPO at the noise end of the flow (``dpo.time_range=[0,0.1]``) with
    the CFM term on the chosen and the reference drift at the later flow times (``F5TTS_DPO_tiny``'s
    recipe); held-out sentences give the held-out pairs and fresh samples (same seeds) before and after."""
    from f5rl.prefs import iterate
    from f5rl.prefs.create_text_context_pairs import demo_rows, write_jsonl

    work = p.out / "stage3_dpo"
    policy = p.out / "stage2_grpo" / "model_last.pt"
    manifest = write_jsonl(demo_rows(p.data, groups=p.dpo_groups, nsamples=4, split="train"),
                           work / "pairs_manifest.jsonl")
    held_out = write_jsonl(demo_rows(p.data, groups=p.dpo_held_out_groups, nsamples=4, seed=99),
                           work / "held_out_manifest.jsonl")
    nfe = 4 if p.quick else 16
    import torch

    # on a CPU, one generation process of one thread per core (up to 4) outpaces one process of every core for
    # this tiny model (prefs.generate); --quick's few rows would not pay for the processes' start-up
    gen_processes = 1 if p.quick or torch.cuda.is_available() else min(4, os.cpu_count() or 1)
    over = [*base_overrides(p.base), f"datasets.path={p.data}", f"optim.max_updates={p.dpo_updates}",
            f"dpo.val_draws={p.dpo_val_draws}", "ckpts.run_name=stage3_dpo"]
    cmd = Command("f5rl.prefs.iterate", ["--manifest", str(manifest), "--val_manifest", str(held_out), "--init_ckpt",
                                         str(policy), "--work_dir", str(work), "--rounds", "1", "--group_size", "4",
                                         "--nfe", str(nfe), "--gen_processes", str(gen_processes), "--", *over])
    print(f"[dpo] {cmd.line()}")
    t0 = time.perf_counter()
    r = iterate.main(cmd.argv)[0]
    h = r.held_out
    p.results["stage3_dpo"] = {
        "save_dir": str(work / "iter_0" / "train"), "updates": r.train["updates"], "final_loss": r.train["final_loss"],
        "checkpoints": [r.ckpt], "samples": [], "seconds": round(time.perf_counter() - t0, 1),
        "precision": "generate+pairs+train", "pairs": r.pairs, "val_before": r.val_before, "val_after": r.val_after,
        "held_out": {"n": h.n, "reward": (h.reward_before, h.reward_after), "change": h.change, "se": h.change_se,
                     "cer": h.cer, "sim": h.sim},
    }


def reward_table(before: dict[str, float], after: dict[str, float]) -> list[str]:
    lines = ["| held-out metric (same seeds) | before GRPO | after GRPO |", "|---|---|---|"]
    for key in before:
        lines.append(f"| {key} | {before[key]:.4f} | {after.get(key, float('nan')):.4f} |")
    return lines


def plot_losses(p: DemoPlan) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = [("stage0_mse", "loss", "stage 0: CFM loss (mse)"),
              ("stage1_gaussian_nll", "loss", "stage 1: Gaussian NLL")]
    if p.base is not None:  # no stage 0: the base model's validation CER from its training run
        val = json.loads((p.base / "metrics.json").read_text()).get("validation", [])
        axes[0].plot([v["update"] for v in val], [v["val/cer"] for v in val], marker="o", label="val/cer")
        axes[0].set_title("base model (shipped): held-out CER")
        axes[0].set_xlabel("update")
        axes[0].legend()
        axes[0].grid(alpha=0.3)
        panels[0] = None
    for ax, panel in zip(axes, panels):
        if panel is None:
            continue
        stage, key, title = panel
        rows = [json.loads(ln) for ln in (p.out / stage / "metrics.jsonl").read_text().splitlines() if ln]
        ax.plot([r["update"] for r in rows], [r[key] for r in rows], label=key)
        if stage.startswith("stage1"):
            ax.plot([r["update"] for r in rows], [r["loss/mse"] for r in rows], label="mse of μ", alpha=0.7)
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = p.out / "loss_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_summary(p: DemoPlan, plot: Path) -> Path:
    lines = ["# f5rl CPU demo", "", f"corpus: `{p.data}`", f"loss curves: `{plot}`",
             f"trackio: project `f5rl`, stored in `{os.environ.get('TRACKIO_DIR', '~/.cache/huggingface/trackio')}`"
             " (view with `trackio show --project f5rl`)", "", "| stage | updates | final loss | seconds | precision |",
             "|---|---|---|---|---|"]
    for name, r in p.results.items():
        loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "n/a"
        lines.append(f"| {name} | {r['updates']} | {loss} | {r['seconds']} | {r['precision']} |")
    if "stage2" in p.results:
        lines += ["", *reward_table(p.results["stage2"]["val_before"], p.results["stage2"]["val_after"]),
                  "", *held_out_lines(p.results["stage2"]["held_out"])]
    if "stage3_dpo" in p.results:
        d = p.results["stage3_dpo"]
        acc_b = d["val_before"].get("val/dpo/accuracy", float("nan"))
        acc_a = d["val_after"].get("val/dpo/accuracy", float("nan"))
        h = d["held_out"]
        lines += ["", f"DPO pairs: {d['pairs']}", "",
                  f"| DPO, held-out sentences ({h['n']} fresh samples, same seeds) | before | after |", "|---|---|---|",
                  f"| implicit accuracy on held-out pairs (ties 0.5, chance 0.5) | {acc_b:.3f} | {acc_a:.3f} |",
                  f"| mean CER (Whisper) | {h['cer'][0]:.4f} | {h['cer'][1]:.4f} |",
                  f"| mean SIM (resemblyzer) | {h['sim'][0]:.4f} | {h['sim'][1]:.4f} |",
                  f"| mean reward (1 − CER) + SIM | {h['reward'][0]:.4f} | {h['reward'][1]:.4f} "
                  f"(change {h['change']:+.4f} ± {h['se']:.4f}) |"]
    lines += ["", "| step | seconds |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in p.timings.items()], ""]
    for name, r in p.results.items():
        lines += [f"## {name}", *[f"- checkpoint `{c}`" for c in r["checkpoints"]],
                  *[f"- sample `{s}`" for s in r["samples"][-2:]], ""]
    path = p.out / "summary.md"
    path.write_text("\n".join(lines))
    (p.out / "summary.json").write_text(json.dumps({"results": p.results, "timings": p.timings}, indent=2))
    return path


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--out", default="ckpts/demo", help="where every stage's run goes")
    ap.add_argument("--data", default="data/demo_char", help="the demo corpus (built when missing)")
    ap.add_argument("--quick", action="store_true", help="reduced size for CI (about a minute)")
    ap.add_argument("--base", type=Path, default=None, help="base model folder (default: the shipped demo base)")
    ap.add_argument("--from-scratch", action="store_true", help="train a stage-0 model instead of using the base")
    args = ap.parse_args(argv)
    if args.from_scratch and args.base:
        ap.error("--base and --from-scratch exclude each other")
    base = None
    if not args.from_scratch:
        from f5rl.eval.base_model import SHIPPED

        base = args.base or SHIPPED
        check_base(base)  # before any work
    p = plan(args.out, args.data, args.quick, base)
    if p.out.exists():
        # a re-run starts fresh (the stages would otherwise resume their finished runs); the last
        # run's outputs are kept beside it, not deleted
        previous = p.out.with_name(p.out.name + ".previous")
        if previous.exists():
            shutil.rmtree(previous)
        p.out.rename(previous)
        print(f"[demo] previous outputs moved to {previous}")
    p.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TRACKIO_DIR", str((p.out / "trackio").resolve()))
    t_all = time.perf_counter()
    stages = [("corpus", stage_corpus), ("stage0", stage0), ("stage1", stage1), ("stage2", stage2),
              ("stage3_dpo", stage3_dpo)]
    for name, fn in stages:
        t0 = time.perf_counter()
        fn(p)
        p.timings[name] = time.perf_counter() - t0
    plot = plot_losses(p)
    p.timings["total"] = time.perf_counter() - t_all
    summary = write_summary(p, plot)
    print("\n" + summary.read_text())


if __name__ == "__main__":
    main()

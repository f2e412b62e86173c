"""Step 5: iterative offline preference optimisation (DESIGN §9).

Round k (folder ``<work_dir>/iter_<k>/``): generate and score every manifest row with the
current policy (``generated/``), build chosen/rejected pairs (``pairs/``), train DPO from the
current policy (``train/``); the next round starts from ``iter_<k>/train/model_last.pt``. Each
step is resumable: finished generations are skipped, existing pairs are reused, and training
resumes from its own ``model_last.pt``.

Held-out prompts: with ``--val_manifest`` (rows of other texts, e.g. held-out sentences) the round
also generates those rows before training (``held_out_before/``), pairs them into the held-out
pairs whose implicit accuracy is reported, and after training generates them again with the same
seeds (``held_out_after/``), so the mean reward of fresh samples on held-out prompts is compared
sample by sample. The held-out seeds are the same in every round, so round k's ``held_out_before/`` is
round k-1's ``held_out_after/`` (same policy, same seeds): its rows are copied, not generated again.
Without ``--val_manifest``, ``--val_size`` groups of the manifest are held out as pairs only.

``--rank_by NAME`` ranks each group by any reward provider (e.g. ``dnsmos`` for MOS, ``duration``)
instead of the Pareto order of (CER, SIM): it is scored beside them during generation. ``--asr`` and ``--sim``
choose the providers of that CER and SIM (Whisper ``embedded:tiny.en`` and resemblyzer by default), and
``--asr_config``/``--sim_config`` their settings as ``KEY=VALUE`` items (``prefs.generate``'s flags).

Files of round k, for users of other iterative-DPO code: the chosen/rejected data is
``iter_<k>/pairs/train.jsonl`` (and ``val.jsonl``; one JSON object per pair, ``chosen`` and
``rejected`` with their audio, mel, CER, SIM and rewards), the samples it came from are
``iter_<k>/generated/``, the trained policy is ``iter_<k>/train/model_last.pt``. ``iterate.log`` in
the work dir is a readable account of the whole run (one block per round); ``rounds.json`` holds
every number.

Everything a user gives is checked before the first generation: the manifests, the initial
checkpoint, the counts, and the training overrides (composed and validated as round 0 will).

    python -m f5rl.prefs.iterate --manifest pairs.jsonl --val_manifest held_out.jsonl \
        --init_ckpt ckpts/.../model_last.pt --work_dir ckpts/dpo_rounds --rounds 2 --group_size 4 \
        -- dpo.time_range=[0,0.1] dpo.sft_loss_weight=100 optim.max_updates=120
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from f5rl.utils.atomic import atomic_copy, atomic_write_text
from f5rl.utils.cli import command_parser


@dataclass
class HeldOutReward:
    """Fresh samples on held-out prompts before and after a round, paired by row (same seeds);
    reward = (1 − CER) + SIM per sample."""

    n: int
    reward_before: float
    reward_after: float
    change: float  # mean paired change
    change_se: float  # its standard error, over prompt groups (samples of one prompt are not independent)
    cer: tuple[float, float]
    sim: tuple[float, float]


def sample_reward(row: dict) -> float:
    """The demo's ASR + speaker reward of one scored generation: ``(1 − CER) + SIM``."""
    return 1.0 - row["cer"] + row["sim"]


def held_out_reward(before_dir: Path, after_dir: Path) -> HeldOutReward:
    """Pair the scored generations of two folders by row id (failed scores are left out)."""
    pairs = []
    for b in sorted(before_dir.glob("*.json")):
        a = after_dir / b.name
        if not a.is_file():
            continue
        x, y = json.loads(b.read_text()), json.loads(a.read_text())
        if not any(math.isnan(r[k]) for r in (x, y) for k in ("cer", "sim")):
            pairs.append((x, y))
    n = len(pairs)
    if n < 2:
        raise ValueError(f"{before_dir} and {after_dir} share {n} scored rows; need at least 2")
    diffs = [sample_reward(y) - sample_reward(x) for x, y in pairs]
    mean = sum(diffs) / n
    # the samples of one prompt share its text and voice, so their changes correlate: the standard
    # error comes from the spread of per-group sums (the cluster-robust one; rows without a "group"
    # are their own group, which gives the usual sd / sqrt(n))
    groups: dict[str, float] = {}
    for i, ((x, _), d) in enumerate(zip(pairs, diffs)):
        key = str(x.get("group", f"row {i}"))
        groups[key] = groups.get(key, 0.0) + d - mean
    g = len(groups)
    se = math.sqrt(sum(v * v for v in groups.values()) * g / (g - 1)) / n if g > 1 else float("nan")

    def avg(key: str, i: int) -> float:
        return sum(p[i][key] for p in pairs) / n

    return HeldOutReward(n, sum(sample_reward(x) for x, _ in pairs) / n, sum(sample_reward(y) for _, y in pairs) / n,
                         mean, se, (avg("cer", 0), avg("cer", 1)), (avg("sim", 0), avg("sim", 1)))


@dataclass
class RoundResult:
    round: int
    ckpt: str
    generation: dict
    pairs: dict
    train: dict = field(default_factory=dict)
    val_before: dict = field(default_factory=dict)
    val_after: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)  # implicit accuracy and margin on the training pairs after training
    held_out: HeldOutReward | None = None
    # wall seconds of each phase: generate, held_out_before, train, implicit_accuracy (held-out pairs before
    # and after, training pairs after: dpo.val_draws draws each), held_out_after
    seconds: dict = field(default_factory=dict)


def _pairs(generated: Path, out: Path, group_size: int, cer_threshold: float, max_duration: float, val_size: int,
           seed: int, rank_by: str | None = None) -> dict:
    """Pairs of one generation folder (reused when already made): ``{"train", "val", "dropped"}``."""
    from f5rl.prefs.create_preference_pairs import create

    if not (out / "report.json").is_file():
        report = create(str(generated), str(out), group_size, cer_threshold, 0.0, max_duration, val_size, seed=seed,
                        rank_by=rank_by)
        atomic_write_text(out / "report.json", json.dumps({"train": len(report.train), "val": len(report.val),
                                                           "dropped": dict(report.dropped)}))
    return json.loads((out / "report.json").read_text())


def run_round(k: int, manifest: str, policy_ckpt: str, work_dir: Path, group_size: int, config_name: str,
              overrides: list[str], nfe: int = 16, cer_threshold: float = 1.0, val_size: int = 2,
              max_duration: float = 30.0, asr: str = "whisper_asr", sim: str = "resemblyzer_sim",
              seed: int = 0, val_manifest: str | None = None, rank_by: str | None = None,
              gen_processes: int = 1, asr_config: dict | None = None, sim_config: dict | None = None) -> RoundResult:
    import time

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.prefs.generate import generate
    from f5rl.train.dpo_trainer import DPOTrainer

    d = work_dir / f"iter_{k}"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[phase] = round(seconds.get(phase, 0.0) + now - clock, 1)
        clock = now

    gen_kw = dict(nfe=nfe, asr=asr, sim=sim, extra_rewards=(rank_by,) if rank_by else (),
                  processes=gen_processes, asr_config=asr_config, sim_config=sim_config)
    # new samples for new pairs every round; the held-out prompts keep their seeds in every round, so rounds
    # compare on the same draws and round k's "before" is round k-1's "after" (reused, not generated again)
    gen = generate(manifest, policy_ckpt, str(d / "generated"), desc=f"round {k}: generate", seed=seed + 1000 * k,
                   **gen_kw)
    pairs = _pairs(d / "generated", d / "pairs", group_size, cer_threshold, max_duration,
                   0 if val_manifest else val_size, seed, rank_by)
    val_pairs = d / "pairs" / "val.jsonl"
    lap("generate")
    if val_manifest:  # held-out pairs from the held-out prompts' own generations
        if k > 0:
            reuse_samples(work_dir / f"iter_{k - 1}" / "held_out_after", d / "held_out_before", policy_ckpt, seed)
        generate(val_manifest, policy_ckpt, str(d / "held_out_before"), desc=f"round {k}: held-out before", seed=seed,
                 **gen_kw)
        held = _pairs(d / "held_out_before", d / "held_out_pairs", group_size, cer_threshold, max_duration, 0, seed,
                      rank_by)
        pairs = {**pairs, "val": held["train"], "dropped_held_out": held["dropped"]}
        val_pairs = d / "held_out_pairs" / "train.jsonl"
        lap("held_out_before")
    if pairs["train"] == 0:
        raise RuntimeError(f"round {k}: no preference pair survived the filters ({pairs['dropped']}); "
                           "generate more samples per group or relax --cer_threshold")
    over = round_overrides(d, policy_ckpt, val_pairs if pairs["val"] else None)
    trainer = DPOTrainer(validate(compose(config_name, over + list(overrides)), DPOTrainConfig))
    trainer.setup()
    lap("train")
    before = trainer.validate()
    lap("implicit_accuracy")
    summary = trainer.train()
    lap("train")
    after = trainer.validate()
    fit = trainer.fit()
    lap("implicit_accuracy")
    ckpt = str(d / "train" / "model_last.pt")
    held_out = None
    if val_manifest:  # fresh samples of the trained policy on the held-out prompts, same seeds
        generate(val_manifest, ckpt, str(d / "held_out_after"), desc=f"round {k}: held-out after", seed=seed,
                 **gen_kw)
        held_out = held_out_reward(d / "held_out_before", d / "held_out_after")
        from f5rl.train.curves import write_before_after

        h = held_out
        write_before_after({"CER": h.cer, "SIM": h.sim, "(1 - CER) + SIM": (h.reward_before, h.reward_after)},
                           d / "held_out.png", f"round {k}, held-out samples (n={h.n}): change "
                           f"{h.change:+.4f} ± {h.change_se:.4f}")
        lap("held_out_after")
    return RoundResult(k, ckpt, gen, pairs, {"updates": summary.updates, "final_loss": summary.final_loss},
                       before, after, fit, held_out, seconds)


def reuse_samples(src: Path, dst: Path, ckpt: str, seed: int) -> int:
    """Copy into ``dst`` the finished rows of ``src`` (a ``prefs.generate`` folder) that ``ckpt`` generated with
    the seeds of ``seed``, so generating ``dst`` from the same checkpoint and seeds finds them done; the row JSON
    goes last, as ``generate`` writes it. Returns how many rows were copied."""
    from f5rl.prefs.generate import row_seed

    if not src.is_dir():
        return 0
    dst.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path in sorted(src.glob("*.json")):
        row = json.loads(path.read_text())
        if (dst / path.name).is_file() or row.get("ckpt") != str(ckpt) or row.get("seed") != row_seed(row["id"], seed):
            continue
        for name in (row["audio_path"], row["mel_path"], path.name):
            atomic_copy(src / name, dst / name)
        copied += 1
    return copied


def round_overrides(d: Path, policy_ckpt: str, val_pairs: Path | None) -> list[str]:
    """The train_dpo overrides of the round in folder ``d`` (the user's come after them)."""
    over = [f"dpo.train_manifest={d / 'pairs' / 'train.jsonl'}", f"ckpts.save_dir={d / 'train'}",
            f"ckpts.init_from={policy_ckpt}", f"dpo.ref_model_ckpt={policy_ckpt}"]
    return over + ([f"dpo.val_manifest={val_pairs}"] if val_pairs else [])


def check_inputs(manifest: str, init_ckpt: str, rounds: int, group_size: int, config_name: str,
                 overrides: list[str], val_size: int = 2, val_manifest: str | None = None,
                 rank_by: str | None = None, work_dir: str = ".", gen_processes: int = 1, asr: str = "whisper_asr",
                 sim: str = "resemblyzer_sim", asr_config: dict | None = None, sim_config: dict | None = None) -> None:
    """Everything a user gives, checked in seconds before the first generation."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.prefs.generate import check_scorers, read_manifest_rows

    if rounds < 1:
        raise ValueError(f"--rounds {rounds}: must be >= 1")
    if group_size < 2:
        raise ValueError(f"--group_size {group_size}: must be >= 2 (a pair is the best and the worst of a group)")
    if val_size < 0:
        raise ValueError(f"--val_size {val_size}: must be >= 0")
    if gen_processes < 1:
        raise ValueError(f"--gen_processes {gen_processes}: must be >= 1")
    if not Path(init_ckpt).is_file():
        raise FileNotFoundError(f"--init_ckpt {init_ckpt} does not exist")
    read_manifest_rows(manifest)
    if val_manifest:
        read_manifest_rows(val_manifest)
    check_scorers(asr, sim, asr_config, sim_config)
    if rank_by:
        from f5rl.rewards.registry import build_provider

        build_provider(rank_by)
    d = Path(work_dir) / "iter_0"
    validate(compose(config_name, round_overrides(d, init_ckpt, d / "val.jsonl") + list(overrides)), DPOTrainConfig)


def iterate(manifest: str, init_ckpt: str, work_dir: str, rounds: int, group_size: int,
            config_name: str = "F5TTS_DPO_tiny", overrides: list[str] | None = None, **kw) -> list[RoundResult]:
    import time

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt, results = init_ckpt, []
    log = work / "iterate.log"
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} iterate: {rounds} round(s) from {init_ckpt}, manifest "
                f"{manifest}, groups of {group_size}, config {config_name} {' '.join(overrides or [])}\n")
    for k in range(rounds):
        t0 = time.perf_counter()
        r = run_round(k, manifest, ckpt, work, group_size, config_name, overrides or [], **kw)
        results.append(r)
        ckpt = r.ckpt
        line = (f"[round {k}] generated {r.generation['done']} (mean CER {r.generation['mean_cer']:.3f}, "
                f"SIM {r.generation['mean_sim']:.3f}); pairs {r.pairs['train']} train / {r.pairs['val']} val; "
                f"val accuracy {r.val_before.get('val/dpo/accuracy', float('nan')):.2f} -> "
                f"{r.val_after.get('val/dpo/accuracy', float('nan')):.2f}; training pairs fitted "
                f"{r.fit.get('fit/dpo/accuracy', float('nan')):.2f}"
                + (f"; held-out reward {r.held_out.reward_before:.4f} -> {r.held_out.reward_after:.4f} "
                   f"(change {r.held_out.change:+.4f} ± {r.held_out.change_se:.4f}, n={r.held_out.n})"
                   if r.held_out else ""))
        print(line)
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{line}\n    dropped: {r.pairs['dropped']}; {r.train['updates']} updates, final loss "
                    f"{r.train['final_loss']}; {time.perf_counter() - t0:.0f} s ({r.seconds})\n    data: "
                    f"{work / f'iter_{k}' / 'pairs' / 'train.jsonl'}; policy: {r.ckpt}\n")
    atomic_write_text(work / "rounds.json", json.dumps([asdict(r) for r in results], indent=2))
    return results


def parser() -> argparse.ArgumentParser:
    ap = command_parser(__doc__)
    ap.add_argument("--manifest", required=True, help="text/context rows (f5rl.prefs.create_text_context_pairs)")
    ap.add_argument("--init_ckpt", required=True, help="the policy of round 0 (also its reference)")
    ap.add_argument("--work_dir", required=True, help="iter_<k>/ folders, iterate.log and rounds.json go here")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of generate -> pairs -> train")
    ap.add_argument("--group_size", type=int, required=True, help="samples per text/context pair (>= 2)")
    ap.add_argument("--config_name", default="F5TTS_DPO_tiny", help="train_dpo config of every round")
    ap.add_argument("--nfe", type=int, default=16, help="Euler steps of generation")
    ap.add_argument("--cer_threshold", type=float, default=1.0, help="drop pairs whose chosen CER is above")
    ap.add_argument("--rank_by", default=None,
                    help="rank groups by this reward provider (e.g. dnsmos, duration) instead of (CER, SIM)")
    ap.add_argument("--val_size", type=int, default=2, help="manifest groups held out as pairs (no --val_manifest)")
    ap.add_argument("--val_manifest", default=None,
                    help="rows of held-out prompts: held-out pairs, and their fresh samples' reward before/after")
    ap.add_argument("--gen_processes", type=int, default=1,
                    help="generate in this many processes, each with an equal share of the threads and, with "
                         "several GPUs, a GPU of its own (prefs.generate --processes)")
    ap.add_argument("--asr", default="whisper_asr", help="ASR reward provider that scores every generation (CER)")
    ap.add_argument("--asr_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="its config, values read as YAML (e.g. model=large-v3 window_s=10)")
    ap.add_argument("--sim", default="resemblyzer_sim", help="speaker-similarity reward provider of every generation")
    ap.add_argument("--sim_config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="its config (e.g. model_dir=/path/to/wespeaker for --sim wespeaker_sim)")
    ap.add_argument("overrides", nargs="*", help="config overrides for train_dpo (after --)")
    return ap


def main(argv: list[str] | None = None) -> list[RoundResult]:
    args = parser().parse_args(argv)
    from f5rl.utils.cli import one_line_errors

    with one_line_errors("iterate"):
        from f5rl.rewards.registry import parse_provider_config

        scorers = {"asr": args.asr, "sim": args.sim,
                   "asr_config": parse_provider_config(args.asr_config, "--asr_config"),
                   "sim_config": parse_provider_config(args.sim_config, "--sim_config")}
        check_inputs(args.manifest, args.init_ckpt, args.rounds, args.group_size, args.config_name, args.overrides,
                     args.val_size, args.val_manifest, args.rank_by, args.work_dir, args.gen_processes, **scorers)
    return iterate(args.manifest, args.init_ckpt, args.work_dir, args.rounds, args.group_size, args.config_name,
                   args.overrides, nfe=args.nfe, cer_threshold=args.cer_threshold, val_size=args.val_size,
                   val_manifest=args.val_manifest, rank_by=args.rank_by, gen_processes=args.gen_processes, **scorers)


if __name__ == "__main__":
    main()

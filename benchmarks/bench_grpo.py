"""GRPO from the shipped demo base, measured: held-out CER/WER/SIM before and after, per named setting,
next to the base, best-of-N reranking with the training reward, and an offline DPO round.

Each setting runs ``python -m f5rl.train.train_rl -cn F5TTS_RL_tiny`` (a subprocess, as a user would)
from the base after its stage-1 σ warmup, stopped by an update budget and by a wall-time budget
(``optim.max_minutes``), then the same held-out items (the template list and the free-text list of
the demo corpus) are synthesised with the same seeds by every system and judged by Whisper
``embedded:base``, which is not the training reward's ASR model (``embedded:tiny.en``): a policy
that learned tiny.en's quirks shows up as a gap between the two judges. Changes are paired by item,
with their standard error. ``--agreement K`` also samples the base K times per item and reports how
the training reward's ASR orders each item's samples against the held-out judge (what selection by
that reward can reach). ``--paired_against SYSTEM`` also pairs every system with one of them item by item
(is GRPO below DPO, with its own standard error). Prints tables; ``--json`` writes everything. Never asserts.

    python benchmarks/bench_grpo.py --data data/demo_char --max_minutes 20 \
        --setting recipe --setting "lr 3e-5" optim.learning_rate=3e-5 --best_of 4 --dpo \
        --json benchmarks/results/bench_grpo.json

A setting is NAME then config overrides (after the recipe's, so they replace its keys). Needs the
demo corpus (``python -m f5rl.data.prepare_demo --out data/demo_char``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

# bumped when the sampler's output changes for the same checkpoint, items and seeds, so the cache in
# WORK/measurements.jsonl never pairs a measurement of old code with one of new code
# (2: the text encoder's GRN reads only each row's own frames, so a held-out batch's rows equal them alone)
MEASURE_VERSION = 2


def dpo_round_seconds(log: Path) -> float:
    """Wall seconds of the last DPO round a bench run wrote to ``iterate.log`` (NaN if none)."""
    import re

    found = re.findall(r"^bench_grpo: DPO round ([0-9.]+) s$", log.read_text() if log.is_file() else "", re.M)
    return float(found[-1]) if found else float("nan")


DPO_GROUPS = 48  # the DPO round's train sentences by default (4 samples each)


def dpo_round_name(groups: int, overrides: list[str] | None = None) -> tuple[str, str]:
    """The WORK folder of a DPO round of ``groups`` sentences trained with ``F5TTS_DPO_tiny`` and config
    ``overrides``, and what its row adds to its name. The folder is named by a hash of the round's typed
    config, so ``--reuse`` never mistakes one round for another: not a round of other overrides, nor a round of
    the config's earlier defaults (as when the drift term went on in ``F5TTS_DPO_tiny``)."""
    import hashlib

    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig

    # the typed config: 0 and 0.0, or a key left at its default and the same value given, hash alike
    cfg = validate(compose("F5TTS_DPO_tiny", ["dpo.train_manifest=pairs.jsonl", *(overrides or [])]), DPOTrainConfig)
    text = json.dumps(asdict(cfg), sort_keys=True, default=str)
    folder = "dpo" if groups == DPO_GROUPS else f"dpo_g{groups}"
    label = "" if groups == DPO_GROUPS else f", {groups} sentences"
    label += f", {' '.join(overrides)}" if overrides else ""
    return f"{folder}_{hashlib.sha1(text.encode()).hexdigest()[:8]}", label


def check_dpo_overrides(dpo: bool, overrides: list[str]) -> None:
    """``--dpo_override``: refused in one line before any work when there is no round to train or a key is wrong."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig

    if not dpo:
        raise SystemExit("--dpo_override trains the DPO round with these keys: add --dpo")
    try:  # the round writes its own train manifest: a placeholder stands in for it here
        validate(compose("F5TTS_DPO_tiny", ["dpo.train_manifest=pairs.jsonl", *overrides]), DPOTrainConfig)
    except Exception as err:  # a wrong value (ConfigError) or an unknown key (Hydra's composition error)
        raise SystemExit(f"--dpo_override {' '.join(overrides)}: {err}".splitlines()[0]) from None


def training_rewards():
    """The reward set GRPO trains with (``F5TTS_RL_tiny``'s providers): best-of-N reranks with it."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import RLTrainConfig
    from f5rl.rewards.combine import RewardSet

    rl = validate(compose("F5TTS_RL_tiny", []), RLTrainConfig).rl
    return RewardSet.from_config([{"name": p.name, "weight": p.weight, "config": dict(p.config), "label": p.label}
                                  for p in rl.rewards.providers], rl.rewards.mode, dict(rl.rewards.params))


def average_rows(runs: list[dict[str, list[dict]]]) -> dict[str, list[dict]]:
    """Per list and item, the numbers of several seeds' rows averaged (text fields from the first);
    a paired change then compares each item's mean over its samples, with less sampling noise."""
    out = {}
    for lst, first in runs[0].items():
        out[lst] = []
        for i, row in enumerate(first):
            vals = [run[lst][i] for run in runs]
            assert all(v["utt"] == row["utt"] for v in vals)
            out[lst].append({k: (sum(v[k] for v in vals) / len(vals) if isinstance(x, (int, float)) else x)
                             for k, x in row.items()} | {"seeds": len(vals)})
    return out


def list_rows(rows: dict[str, list[dict]], lst: str) -> list[dict]:
    """The rows of one list, or of every list pooled (``all``)."""
    return rows[lst] if lst != "all" else [r for v in rows.values() for r in v]


def summarise(name: str, rows: dict[str, list[dict]], base: dict[str, list[dict]], judges: list[str],
              seconds: float, extra: dict | None = None) -> dict:
    """Means and paired changes against the base, per list and over both lists."""
    from f5rl.eval.held_out import compare

    out = {"system": name, "seconds": round(seconds, 1), **(extra or {}), "lists": {}}
    for lst in [*rows, "all"]:
        now, ref = list_rows(rows, lst), list_rows(base, lst)
        metrics = [*(f"cer1@{j}" for j in judges), *(f"cer@{j}" for j in judges), "sim"]
        out["lists"][lst] = {m: compare(ref, now, m).__dict__ for m in metrics}
    return out


def paired_rows(measured: dict[str, dict[str, list[dict]]], against: str, judges: list[str]) -> list[dict]:
    """Every measured system but the shipped base and ``against`` itself, paired item by item with
    ``against`` (same items, same seeds): the change is the system's number minus the reference's, so
    "is GRPO below DPO" gets its own standard error rather than two changes against the base."""
    return [summarise(name, rows, measured[against], judges, 0.0, {"against": against})
            for name, rows in measured.items() if name != against and not name.startswith("shipped base")]


def paired_lines(paired: list[dict], head: str) -> list[str]:
    """The printed table of :func:`paired_rows` (CER judged by ``head``); no lines when nothing was paired."""
    if not paired:
        return []
    against = paired[0]["against"]

    def cell(change: dict | None) -> str:
        return f"{change['change']:+.4f} ± {change['se']:.4f}" if change else "n/a"

    lines = [f"\npaired by item against {against}: each system's number minus {against}'s, ± standard error",
             f"| system | CER@{head} all | CER@{head} template | CER@{head} free | CER@tiny.en all | SIM all |",
             "|---|---|---|---|---|---|"]
    for r in paired:
        lists = r["lists"]
        cells = [lists.get(lst, {}).get(f"cer1@{head}") for lst in ("all", "template", "free")]
        cells += [lists["all"].get("cer1@embedded:tiny.en"), lists["all"]["sim"]]
        lines.append(f"| {r['system']} | " + " | ".join(cell(c) for c in cells) + " |")
    return lines


def budget_note(name: str, updates: int, train_s: float, max_updates: int, max_minutes: float,
                summary: dict | None = None) -> str | None:
    """A line for a setting that an update limit ended before its wall-time budget: it had less time
    than the others, so a comparison at equal wall time is not one for it. The limit is the LR schedule's
    end (``optim.total_updates``, which the bench sets to ``--max_updates``) or a setting's own
    ``optim.max_updates`` cap. None when the wall-time budget ended the run.

    ``summary``: the run's ``summary.json`` (:class:`f5rl.train.summary.TrainSummary`), whose
    ``stop_reason`` the trainer recorded; without one (a run trained before f5rl wrote it) the reason
    is estimated from the update count and the summed rollout, reward and update seconds."""
    if summary is None:  # estimated: the bench passes --max_updates as the LR schedule's end
        if updates < max_updates or train_s >= 0.98 * max_minutes * 60:
            return None
        return (f"note: {name} reached --max_updates {max_updates} after {train_s:.0f} s, before its "
                f"--max_minutes {max_minutes:g} budget (its LR had decayed to zero); raise --max_updates for an "
                "equal-wall-time comparison")
    reason = summary["stop_reason"]
    if reason == "optim.max_minutes":
        return None
    # optim.total_updates is the LR schedule's end; optim.max_updates a cap that a setting set before it
    why, fix = (("its LR had decayed to zero", "raise --max_updates") if reason == "optim.total_updates" else
                ("a cap before its LR schedule's end", f"drop the setting's {reason}"))
    return (f"note: {name} stopped at {reason} ({summary['updates']} updates) after {summary['wall_seconds']:.0f} s, "
            f"before its --max_minutes {max_minutes:g} budget ({why}); {fix} for an equal-wall-time comparison")


def agreement_rows(per_seed: list[dict[str, list[dict]]], judges: list[str], retest_ms: float = 0.0) -> list[dict]:
    """Per list (and over all items), how each other judge (the training reward's ASR) orders an item's
    samples against the first (the held-out judge): ``per_seed[k]`` is the base's rows of seed k. With
    ``retest_ms`` also the first judge hearing the same clips that much later: its agreement with itself."""
    from f5rl.eval.held_out import judge_agreement, retest_name

    out = []
    proxies = [*judges[1:], *([retest_name(judges[0], retest_ms)] if retest_ms > 0 else [])]
    for lst in [*per_seed[0], "all"]:
        samples = [list_rows(rows, lst) for rows in per_seed]
        for proxy in proxies:
            a = judge_agreement(samples, proxy=f"cer1@{proxy}", judge=f"cer1@{judges[0]}")
            out.append({"list": lst, "proxy": proxy, "judge": judges[0], **asdict(a),
                        "proxy_gain": a.proxy_gain, "judge_gain": a.judge_gain})
    return out


def read_summary(run: Path) -> dict | None:
    """The run's ``summary.json`` written by its trainer, or None for a run trained before it existed."""
    from f5rl.train.summary import SUMMARY_FILE

    path = run / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_config(run: Path):
    """The resolved config a training run wrote beside its checkpoints (``config.yaml``)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(run / "config.yaml")


def run_start(run: Path) -> str | None:
    """The checkpoint a setting's run started from (``ckpts.init_from`` in its own config)."""
    return run_config(run).ckpts.init_from


def run_label(run: Path) -> str:
    """"DPO + GRPO" for a setting whose run started from a DPO round's warmup (a WORK/dpo* folder, as
    ``--after_dpo`` trains), else "GRPO": read from the run's own config, so a ``--reuse``d run is named by
    where it started, not by this invocation's flags."""
    start = run_start(run)
    return "DPO + GRPO" if start and Path(start).parent.name.startswith("dpo") else "GRPO"


def check_reused_start(run: Path, start: Path) -> None:
    """``--reuse``: a setting's finished run in WORK is taken only if it started where this invocation's settings
    start (``--after_dpo`` and the DPO round's overrides change that); else one line says so before any work."""
    if not (run / "model_last.pt").is_file():
        return
    began = run_start(run)
    if not began or Path(began).resolve() != start.resolve():
        raise SystemExit(f"--reuse: WORK/{run.name} was trained from {began}, but this run's settings start from "
                         f"{start}: give the setting another name, or drop --reuse to train it again")


def check_reused_round(train: Path, max_minutes: float | None) -> None:
    """``--reuse`` of a DPO round: its folder is named by its config, but not by the bench's ``--max_minutes``
    (the round's ``optim.max_minutes``). A round that budget stopped early is taken only at the same budget;
    else one line says so before any work."""
    summary = read_summary(train)
    if not (train / "model_last.pt").is_file() or not summary or summary.get("stop_reason") != "optim.max_minutes":
        return
    took = run_config(train).optim.max_minutes
    if took != max_minutes:
        raise SystemExit(f"--reuse: the DPO round in {train.parent.parent} was stopped early by --max_minutes {took}, "
                         f"but this run gives {max_minutes}: give --max_minutes {took}, or drop --reuse to train it "
                         "again")


def setting_overrides(over: list[str], prompts: Path, prompts_broad: Path) -> list[str]:
    """A setting's overrides after the recipe's ``rl.prompts_manifest={prompts}`` (a later value of a key
    wins), with the placeholders ``{prompts}`` and ``{prompts_broad}`` replaced by the bench's files."""
    return [o.replace("{prompts}", str(prompts)).replace("{prompts_broad}", str(prompts_broad))
            for o in [f"rl.prompts_manifest={prompts}", *over]]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/demo_char", type=Path, help="demo corpus (both test lists)")
    ap.add_argument("--work", default="benchmarks/results/grpo", type=Path, help="runs and measurements go here")
    ap.add_argument("--setting", nargs="+", action="append", metavar=("NAME", "OVERRIDE"),
                    help="a GRPO setting: NAME then config overrides (repeatable); default: the recipe alone")
    ap.add_argument("--max_minutes", type=float, default=20.0,
                    help="training wall-time budget of each setting, and of the DPO round (--dpo)")
    ap.add_argument("--max_updates", type=int, default=400, help="update budget (and LR schedule) of each setting")
    ap.add_argument("--warmup_updates", type=int, default=200, help="stage-1 σ-head warmup updates")
    ap.add_argument("--template_items", type=int, default=60, help="items of test_eval.jsonl (from the first)")
    ap.add_argument("--free_items", type=int, default=60, help="items of test_free_eval.jsonl (from the first)")
    ap.add_argument("--nfe", type=int, default=16, help="Euler steps of held-out synthesis")
    ap.add_argument("--seeds", type=int, default=1,
                    help="samples per held-out item (seeds 0, 1000, ...), averaged per item before pairing")
    ap.add_argument("--judges", default="embedded:base,embedded:tiny.en",
                    help="Whisper judges of held-out CER (the first is the headline; the reward uses tiny.en)")
    ap.add_argument("--cfg", type=float, default=2.0,
                    help="inference CFG strength of the trained systems (GRPO, DPO); the shipped base is measured at "
                         "2.0 (its default) and, when this differs, also at this value, so a gain from the guidance "
                         "alone shows (0: the conditional branch alone, half the synthesis cost)")
    ap.add_argument("--weights", choices=("ema", "online"), default="ema",
                    help="which weights of each trained checkpoint to measure: its EMA (what synthesis loads by "
                         "default) or the online weights the last update left (the shipped base is its EMA)")
    ap.add_argument("--best_of", type=int, default=0, help="also measure best-of-N reranking of the base (0: no)")
    ap.add_argument("--agreement", type=int, default=0, metavar="K",
                    help="also sample the base K times per item (seeds 0, 1000, ...) and report how the training "
                         "reward's ASR orders each item's samples against the held-out judge (within-item "
                         "Spearman) and best-of-K by each: what selection by the reward can reach (0: no)")
    ap.add_argument("--only_agreement", action="store_true",
                    help="with --agreement: measure the shipped base and its agreement table, then stop (no stage-1 "
                         "warmup, no GRPO settings)")
    ap.add_argument("--dpo", action="store_true", help="also measure one DPO round (prefs.iterate) from the base")
    ap.add_argument("--dpo_groups", type=int, default=DPO_GROUPS,
                    help="DPO train sentences (4 samples each); another count than 48 keeps its round in "
                         "WORK/dpo_gN_<hash>, apart from the default's WORK/dpo_<hash> (hash: of the round's config)")
    ap.add_argument("--dpo_override", nargs="+", default=[], metavar="OVERRIDE",
                    help="train_dpo config overrides of the DPO round (e.g. dpo.drift_time_range=null "
                         "dpo.drift_weight=0: the round without the drift term); such a round is cached in a WORK "
                         "folder of its own (named by a hash of its config)")
    ap.add_argument("--prompts_groups", type=int, default=96,
                    help="train sentences of WORK/prompts.jsonl (each said in the voice of a held-out utterance, as "
                         "the DPO round's are): every setting rolls them out (rl.prompts_manifest, as the "
                         "recipe does; a setting's rl.prompts_manifest=null infills the corpus instead)")
    ap.add_argument("--broad_seed", type=int, default=4242,
                    help="seed of WORK/prompts_broad.jsonl: the prompts of WORK/prompts.jsonl and, in the same voices, "
                         "as many groups saying broad-text sentences (common English words in random order); a "
                         "setting names it as rl.prompts_manifest={prompts_broad}")
    ap.add_argument("--retest_ms", type=float, default=5.0,
                    help="with --agreement: the held-out judge also hears each sample after this many ms of silence "
                         "(imperceptible), and the table shows how far it agrees with itself, the ceiling for the "
                         "training judge's agreement (0: skip; costs one more judge pass over the samples)")
    ap.add_argument("--paired_against", default=None, metavar="SYSTEM",
                    help="also print every system's change against this one, paired by item: a --setting NAME, "
                         "dpo (with --dpo) or best-of-N (with --best_of N)")
    ap.add_argument("--after_dpo", action="store_true",
                    help="train every --setting from the DPO round's weights instead of the shipped base (needs "
                         "--dpo; the round runs first, then a stage-1 σ warmup of its weights in "
                         "WORK/dpo_<hash>_stage1): what GRPO adds to DPO; a setting's s counts its own training only")
    ap.add_argument("--sigma_only_warmup", action="store_true",
                    help="the stage-1 warmup trains the σ head alone (model.train_only=[proj_out_ln_sig]), so the "
                         "start keeps the velocity of the weights it warms (with --after_dpo: DPO's gain); its "
                         "folder gets a _sigma suffix")
    ap.add_argument("--skip_start", action="store_true", help="do not measure the stage-1 checkpoint itself")
    ap.add_argument("--reuse", action="store_true",
                    help="measure a setting's existing WORK/NAME/model_last.pt (and with --dpo the round's "
                         "WORK/dpo_<hash>/iter_0/train/model_last.pt) instead of training again")
    ap.add_argument("--checkpoint", nargs=2, action="append", default=[], metavar=("NAME", "PATH"),
                    help="also judge this checkpoint as system NAME (repeatable), at --cfg like the trained systems: "
                         "one trained elsewhere, e.g. by another invocation, paired with this run's systems by "
                         "--paired_against NAME; with --checkpoint and no --setting, no setting trains")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    from f5rl.eval.base_model import SHIPPED, base_overrides
    from f5rl.eval.evaluate import read_test_list
    from f5rl.eval.held_out import HeldOutJudge
    from f5rl.prefs.create_text_context_pairs import broad_text_twins, demo_rows, write_jsonl
    from f5rl.scripts.grpo_recipe import grpo_argv, run_cli, warmup_argv

    judges = args.judges.split(",")
    if args.agreement > 1 and len(judges) < 2:
        raise SystemExit("--agreement needs two judges, the held-out one first: "
                         "--judges embedded:base,embedded:tiny.en")
    if args.only_agreement and (args.agreement < 2 or args.setting or args.dpo or args.best_of > 1
                                or args.checkpoint):
        raise SystemExit("--only_agreement measures the base's agreement alone: give --agreement K (K >= 2) and "
                         "no --setting, --dpo, --best_of or --checkpoint")
    # the recipe alone when no setting is named, unless the run judges given checkpoints instead
    settings = [] if args.only_agreement else args.setting or ([] if args.checkpoint else [["recipe"]])
    others = {*(s[0] for s in settings), *(["dpo"] if args.dpo else []),
              *([f"best-of-{args.best_of}"] if args.best_of > 1 else [])}
    for k, (name, path) in enumerate(args.checkpoint):
        if name in others or name.startswith("shipped base") or name in [n for n, _ in args.checkpoint[:k]]:
            raise SystemExit(f"--checkpoint {name}: the name of another system of this run; give it its own name")
        if not Path(path).is_file():
            raise SystemExit(f"--checkpoint {name} {path}: no such file; give a checkpoint (model_last.pt, "
                             "model.safetensors)")
    measurable = others | {name for name, _ in args.checkpoint}
    if args.paired_against is not None and args.paired_against not in measurable:
        raise SystemExit(f"--paired_against {args.paired_against}: name a system this run measures "
                         f"({', '.join(sorted(measurable))}): a --setting NAME, dpo with --dpo, best-of-N with "
                         "--best_of N or a --checkpoint NAME")
    if args.after_dpo and not args.dpo:
        raise SystemExit("--after_dpo trains the settings from the DPO round's weights: add --dpo")
    if args.dpo_override:
        check_dpo_overrides(args.dpo, args.dpo_override)
    if args.retest_ms < 0:
        raise SystemExit(f"--retest_ms {args.retest_ms:g}: give the silence in ms (> 0), or 0 to skip the retest")
    # composing the round's config costs a Hydra start: only when there is a round
    dpo_folder, dpo_size = dpo_round_name(args.dpo_groups, args.dpo_override) if args.dpo else ("", "")
    sigma = "_sigma" if args.sigma_only_warmup else ""
    # every setting starts from the stage-1 warmup of the DPO round (--after_dpo) or of the shipped base
    start = args.work / (f"{dpo_folder}_stage1{sigma}" if args.after_dpo else f"stage1{sigma}") / "model_last.pt"
    if args.reuse:
        for name, *_ in settings:
            check_reused_start(args.work / name.replace(" ", "_"), start)
    if args.reuse and args.dpo:
        check_reused_round(args.work / dpo_folder / "iter_0" / "train", args.max_minutes)
    # synthesis prompts for stage 2 (rl.prompts_manifest={prompts}): the DPO round's rows for the same count
    prompt_rows = demo_rows(args.data, groups=args.prompts_groups, nsamples=4, split="train")
    prompts = write_jsonl(prompt_rows, args.work / "prompts.jsonl")
    prompts_broad = args.work / "prompts_broad.jsonl"
    if any("{prompts_broad}" in o for _, *over in args.setting or [] for o in over):  # needs wordfreq: only if named
        held_free = {r.target_text for r in read_test_list(args.data / "test_free_eval.jsonl")}
        write_jsonl(broad_text_twins(prompt_rows, seed=args.broad_seed, exclude=held_free), prompts_broad)
    items = {"template": read_test_list(args.data / "test_eval.jsonl")[: args.template_items],
             "free": read_test_list(args.data / "test_free_eval.jsonl")[: args.free_items]}
    judge = HeldOutJudge(tuple(judges), nfe=args.nfe, rerank=training_rewards() if args.best_of > 1 else None)

    def measure(ckpt, candidates: int = 1, cfg: float = 2.0, ema: bool = True) -> tuple[dict[str, list[dict]], float]:
        """Rows of every list, each item's numbers averaged over ``--seeds`` samples (seeds 0, 1000, ...),
        synthesised at inference guidance ``cfg`` by the checkpoint's EMA (or online) weights."""
        judge.cfg_strength, judge.use_ema = cfg, ema
        runs = [measure_seed(ckpt, candidates, 1000 * k) for k in range(args.seeds)]
        return average_rows([rows for rows, _ in runs]), sum(s for _, s in runs)

    def measure_seed(ckpt, candidates: int, seed: int) -> tuple[dict[str, list[dict]], float]:
        """Rows of every list for one seed; kept beside the checkpoint's run (keyed by what was measured),
        so an unchanged checkpoint is measured once across invocations."""
        what = [MEASURE_VERSION, str(ckpt), Path(ckpt).stat().st_mtime, candidates, args.nfe, judges,
                {k: [it.utt for it in v] for k, v in items.items()}]
        if judge.cfg_strength != 2.0:  # the default leaves the key of earlier measurements as it was
            what.append({"cfg": judge.cfg_strength})
        if not judge.use_ema:
            what.append({"weights": "online"})
        if judge.retest_ms > 0:
            what.append({"retest_ms": judge.retest_ms})
        key = json.dumps(what + [seed] if seed else what)  # seed 0: the key of measurements before --seeds
        cache = args.work / "measurements.jsonl"
        if cache.is_file():
            for line in cache.read_text().splitlines():
                entry = json.loads(line)
                if entry["key"] == key:
                    return entry["rows"], entry["seconds"]
        t0 = time.perf_counter()
        judge.seed = seed
        rows = {lst: judge.measure(ckpt, its, candidates) for lst, its in items.items()}
        seconds = time.perf_counter() - t0
        args.work.mkdir(parents=True, exist_ok=True)
        with open(cache, "a") as f:
            f.write(json.dumps({"key": key, "rows": rows, "seconds": seconds}) + "\n")
        return rows, seconds

    base_ckpt = SHIPPED / "model.safetensors"

    def dpo_round() -> tuple[Path, float, int | None]:
        """One DPO round from the shipped base (``prefs.iterate``): its checkpoint, wall seconds and updates."""
        from f5rl.prefs.iterate import run_round

        work = args.work / dpo_folder
        manifest = write_jsonl(demo_rows(args.data, groups=args.dpo_groups, nsamples=4, split="train"),
                               work / "pairs.jsonl")
        done = work / "iter_0" / "train" / "model_last.pt"
        if args.reuse and done.is_file():  # run_round would resume its training for another budget
            return done, dpo_round_seconds(work / "iterate.log"), None
        t0 = time.perf_counter()
        r = run_round(0, str(manifest), str(base_ckpt), work, 4, "F5TTS_DPO_tiny",
                      [*base_overrides(SHIPPED), f"datasets.path={args.data}", "ckpts.logger=null",
                       f"optim.max_minutes={args.max_minutes}", *args.dpo_override], nfe=16)
        seconds = time.perf_counter() - t0
        with open(work / "iterate.log", "a") as f:  # what a later --reuse reports as its cost
            f.write(f"bench_grpo: DPO round {seconds:.1f} s\n")
        return Path(r.ckpt), seconds, r.train["updates"]

    # the round trains before anything is judged: Whisper's CTranslate2 threads throttle torch in the process
    # that loaded them (measured here: 1.9 s per DPO update instead of 1.2), and its seconds are the compute
    # that the other systems are compared at
    dpo = dpo_round() if args.dpo else None
    base_rows, base_s = measure(base_ckpt)
    results = [summarise("shipped base", base_rows, base_rows, judges, 0.0, {"measure_s": round(base_s, 1)})]
    measured = {"shipped base": base_rows}
    at_cfg = f" at CFG {args.cfg:g}" if args.cfg != 2.0 else ""  # names the systems measured at --cfg
    tag = at_cfg + (" (online weights)" if args.weights == "online" else "")  # names the trained systems
    if at_cfg:
        rows, s = measure(base_ckpt, cfg=args.cfg)
        results.append(summarise(f"shipped base{at_cfg}", rows, base_rows, judges, 0.0,
                                 {"measure_s": round(s, 1), "cfg": args.cfg}))
        measured[f"shipped base{at_cfg}"] = rows

    agreement = []
    if args.agreement > 1:
        judge.cfg_strength, judge.use_ema = 2.0, True  # the shipped base as every other row measures it
        judge.retest_ms = args.retest_ms
        agreement = agreement_rows([measure_seed(base_ckpt, 1, 1000 * k)[0] for k in range(args.agreement)], judges,
                                   args.retest_ms)
        judge.retest_ms = 0.0

    def warm_start(init: Path | None) -> None:
        """The stage-1 σ warmup of ``init`` (None: the shipped base) into ``start``, run once per WORK."""
        if not start.is_file():
            t0 = time.perf_counter()
            run_cli("f5rl.train.train", warmup_argv(SHIPPED, args.data, start.parent, args.warmup_updates, init=init,
                                                    sigma_only=args.sigma_only_warmup),
                    args.work / f"{start.parent.name}.log")
            print(f"stage-1 warmup ({start.parent.name}): {time.perf_counter() - t0:.0f} s", flush=True)

    train = bool(settings)  # no setting: no stage-1 warmup either
    label = "DPO + GRPO" if args.after_dpo else "GRPO"
    if train:  # the settings start from the DPO round's weights with --after_dpo (which needs --dpo)
        warm_start(dpo[0] if args.after_dpo else None)
    if train and not args.skip_start:  # the checkpoint every setting starts from
        rows, _ = measure(start)
        kind = "σ-head " if args.sigma_only_warmup else ""
        results.append(summarise(f"stage-1 {kind}warmup ({label} start)", rows, base_rows, judges, 0.0))

    if args.best_of > 1:  # (refused with --only_agreement)
        rows, s = measure(base_ckpt, args.best_of)
        results.append(summarise(f"best-of-{args.best_of} (training reward)", rows, base_rows, judges, s,
                                 {"note": "inference cost only"}))
        measured[f"best-of-{args.best_of}"] = rows
    for name, *over in settings:
        over = setting_overrides(over, prompts, prompts_broad)
        run = args.work / name.replace(" ", "_")
        if not (args.reuse and (run / "model_last.pt").is_file()):
            run_cli("f5rl.train.train_rl", grpo_argv(SHIPPED, args.data, start, run,
                                                     [f"optim.total_updates={args.max_updates}",
                                                      f"optim.max_minutes={args.max_minutes}", "ckpts.logger=null",
                                                      "ckpts.log_samples=false", *over]), run / "bench.log")
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        updates = len(metrics)
        train_s = sum(m["time/rollout_s"] + m["time/reward_s"] + m["time/update_s"] for m in metrics)
        rows, _ = measure(run / "model_last.pt", cfg=args.cfg, ema=args.weights == "ema")
        note = budget_note(name, updates, train_s, args.max_updates, args.max_minutes, read_summary(run))
        results.append(summarise(f"{run_label(run)}: {name}{tag}", rows, base_rows, judges, train_s,
                                 {"overrides": over, "updates": updates, "cfg": args.cfg, "budget_note": note}))
        measured[name] = rows
    for name, path in args.checkpoint:
        rows, _ = measure(Path(path), cfg=args.cfg, ema=args.weights == "ema")
        results.append(summarise(f"{name}{tag}", rows, base_rows, judges, 0.0,
                                 {"checkpoint": path, "cfg": args.cfg, "note": "trained elsewhere"}))
        measured[name] = rows
    if args.dpo:
        ckpt, seconds, updates = dpo
        rows, _ = measure(ckpt, cfg=args.cfg, ema=args.weights == "ema")
        kind = "prefs.iterate" if args.dpo_override else "prefs.iterate defaults"
        results.append(summarise(f"DPO ({kind}{dpo_size}){tag}", rows, base_rows, judges, seconds,
                                 {"updates": updates, "note": "generation + training", "cfg": args.cfg}))
        measured["dpo"] = rows

    head = judges[0]
    print(f"\nheld-out CER (per item clipped at 1) judged by Whisper {head} (the training reward uses "
          f"embedded:tiny.en); {len(items['template'])} template + {len(items['free'])} free-text items, "
          f"nfe {args.nfe}, {args.seeds} seed(s) per item; change vs the shipped base (at CFG 2), paired by item, "
          f"± standard error")
    print(f"| system | s | CER@{head} all | rel | CER@{head} template | CER@{head} free | CER@tiny.en all | SIM all |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        a, t, f = r["lists"]["all"], r["lists"]["template"], r["lists"]["free"]
        c = a[f"cer1@{head}"]
        other = a.get("cer1@embedded:tiny.en", {"after": float("nan"), "change": float("nan"), "se": float("nan")})
        rel = c["change"] / c["before"] if c["before"] else float("nan")
        print(f"| {r['system']} | {r['seconds']} | {c['after']:.4f} ({c['change']:+.4f} ± {c['se']:.4f}) | "
              f"{rel:+.1%} | {t[f'cer1@{head}']['after']:.4f} | {f[f'cer1@{head}']['after']:.4f} | "
              f"{other['after']:.4f} ({other['change']:+.4f}) | {a['sim']['after']:.4f} ({a['sim']['change']:+.4f} "
              f"± {a['sim']['se']:.4f}) |", flush=True)
    for r in results:
        if r.get("budget_note"):
            print(r["budget_note"])
    paired = paired_rows(measured, args.paired_against, judges) if args.paired_against in measured else []
    for line in paired_lines(paired, head):
        print(line, flush=True)
    if agreement:
        print(f"\nthe shipped base, {args.agreement} samples per item: how each training judge orders an item's "
              f"samples against {head} (mean within-item Spearman ± SE, over items whose samples both spread), "
              f"and CER@{head} of a random sample and of the best of {args.agreement} by each"
              + (f"; '{head} +{args.retest_ms:g} ms' is {head} itself hearing each sample after {args.retest_ms:g} ms "
                 "of silence (how far the judge agrees with itself)" if args.retest_ms > 0 else ""))
        print(f"| list | judge that ranks | items | Spearman | random | best-of-{args.agreement} by it | "
              f"best-of-{args.agreement} by {head} |")
        print("|---|---|---|---|---|---|---|")
        for a in agreement:
            print(f"| {a['list']} | {a['proxy']} | {a['items']} ({a['ranked_items']} ranked) | {a['spearman']:+.3f} ± "
                  f"{a['spearman_se']:.3f} | {a['random']:.4f} | {a['best_by_proxy']:.4f} ({a['proxy_gain']:+.1%}) | "
                  f"{a['best_by_judge']:.4f} ({a['judge_gain']:+.1%}) |", flush=True)
    if args.json:
        from f5rl.utils.atomic import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        out = {"results": results, "per_item": measured, "agreement": agreement, "paired": paired}
        atomic_write_text(Path(args.json), json.dumps(out, indent=1))
    return results


if __name__ == "__main__":
    main()

"""The demo base model (``make demo-base``): train, measure and export the tiny DiT that ``make demo``
starts GRPO and DPO from.

    python -m f5rl.scripts.demo_base                      # corpora -> train (resumes) -> export
    python -m f5rl.scripts.demo_base --export-only        # measure + export the current best
    python -m f5rl.scripts.demo_base -- optim.max_updates=3000   # Hydra overrides for the trainer
    python -m f5rl.scripts.demo_base --recipe my_recipe.yaml --save-dir ckpts/my_base --out my_base

Training is ``python -m f5rl.train.train -cn F5TTS_demo_base`` (bf16 on CPUs that have it, held-out
validation between steps logging ``val/cer``/``val/sim``, ``model_best.pt`` kept by ``val/cer``)
in the stages of :data:`RECIPE`: the 1200-sentence corpus first, then the same run continued on
corpora with 4800 and then 10800 more train-only sentences (same held-out split). Every stage resumes from
``--save-dir``, so the run can be split across sittings; a stage stopped early (``optim.max_updates``)
is resumed before the next begins; ``--recipe`` trains another file of that form. Export writes the EMA
weights of the checkpoint chosen on a selection split (released F5 layout, safetensors), ``config.yaml``,
``vocab.txt``, ``curves.png``, ``metrics.json``, a model card, the recipe it trained (``recipe.yaml``) and
the card's template (``card.md``) into ``--out`` (default: the copy shipped in the package), each file
written atomically.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from f5rl.eval.base_model import SHIPPED, BaseModelReport, measure
from f5rl.text.inventory import COUNTS_FILE
from f5rl.utils.atomic import atomic_copy, atomic_path, atomic_write_text
from f5rl.utils.cli import command_parser

MAX_BYTES = 30 * 1024 * 1024
FREE_LIST = "test_free_eval.jsonl"  # prepare_demo's free-text list: ordinary sentences, not the grammar's


@dataclass(frozen=True)
class Stage:
    """One phase of the recipe: train on ``corpus`` until update ``total_updates`` (the learning rate
    decays linearly to zero there; a later stage re-warms it from the resumed scheduler)."""

    name: str
    corpus: str
    extra_train_sentences: int
    total_updates: int
    overrides: tuple[str, ...] = ()
    sentences: int = 1200  # the corpus's held-out split is drawn from these
    broad_train_sentences: int = 0  # common English words in random order (f5rl.data.broad_text)
    coverage_min: int = 0  # prepare_demo's coverage pass: every phoneme token at least this often


def load_recipe(path: Path) -> tuple[Stage, ...]:
    """The stages of a recipe file (``recipe.yaml`` beside the shipped model); a file that is not YAML
    raises ValueError with the parser's message on one line."""
    import yaml

    try:
        stages = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["stages"]
    except yaml.YAMLError as e:
        raise ValueError(" ".join(str(e).split())) from e
    return tuple(Stage(**{**st, "overrides": tuple(st.get("overrides", ()))}) for st in stages)


RECIPE_FILE = SHIPPED / "recipe.yaml"
RECIPE = load_recipe(RECIPE_FILE)  # the shipped model's recipe
CARD_TEMPLATE = SHIPPED / "card.md"


def ensure_corpus(data: Path, sentences: int = 1200, extra_train_sentences: int = 0, broad_train_sentences: int = 0,
                  coverage_min: int = 0) -> None:
    """Build the demo corpus when missing; add the phoneme vocab to a corpus built before it existed."""
    from f5rl.data.prepare_demo import build

    if not (data / "raw").is_dir():
        more = {"extra_train_sentences": extra_train_sentences, "broad_train_sentences": broad_train_sentences,
                "coverage_min": coverage_min}
        print(f"[corpus] python -m f5rl.data.prepare_demo --out {data} --sentences {sentences}"
              + "".join(f" --{k} {v}" for k, v in more.items() if v))
        build(data, sentences=sentences, report_similarity=not any(more.values()), **more)
    vocab = data / "vocab_phoneme.txt"
    if not vocab.is_file():
        from datasets import load_from_disk

        from f5rl.data.prepare import tokens_for_vocab
        from f5rl.text.vocab import write_vocab

        texts = list(load_from_disk(str(data / "raw"))["text"])
        texts += [json.loads(ln)["text"] for ln in (data / "test.jsonl").read_text().splitlines() if ln.strip()]
        write_vocab(vocab, tokens_for_vocab(texts, "phoneme"))
        print(f"[corpus] wrote {vocab}")


def train(data: Path, save_dir: Path, overrides: list[str], eval_data: Path | None = None) -> dict:
    """One training run on ``data``; validation and vocab come from ``eval_data`` (default ``data``)."""
    from f5rl.config import compose, validate
    from f5rl.config.schema import TrainConfig
    from f5rl.train.trainer import Trainer

    ev = eval_data or data
    over = [f"datasets.path={data}", f"model.tokenizer_path={ev / 'vocab_phoneme.txt'}",
            f"ckpts.val_list={ev / 'test_eval.jsonl'}", f"ckpts.save_dir={save_dir}", *overrides]
    print("[train] python -m f5rl.train.train -cn F5TTS_demo_base " + " ".join(over))
    trainer = Trainer(validate(compose("F5TTS_demo_base", over), TrainConfig))
    trainer.setup()
    summary = trainer.train()
    print(summary.render())
    return {"updates": summary.updates, "seconds": round(summary.wall_seconds, 1), "final_loss": summary.final_loss}


def run_recipe(eval_data: Path, save_dir: Path, overrides: list[str], recipe: tuple[Stage, ...] = RECIPE,
               root: Path = Path(".")) -> bool:
    """Train the stages in order, each resumed from ``save_dir``; True when all are complete.

    A finished stage leaves ``model_best_<name>.pt`` / ``model_last_<name>.pt`` as export candidates
    (the next stage's validation replaces ``model_best.pt``). A stage that stops short of its
    ``total_updates`` (``optim.max_updates``) ends the run, so the next stage never starts from an
    unfinished one."""
    for stage in recipe:
        corpus = root / stage.corpus
        ensure_corpus(corpus, stage.sentences, stage.extra_train_sentences, stage.broad_train_sentences,
                      stage.coverage_min)
        print(f"[stage {stage.name}] {corpus}, to update {stage.total_updates}")
        done = train(corpus, save_dir, [f"optim.total_updates={stage.total_updates}", *stage.overrides, *overrides],
                     eval_data=eval_data)
        if done["updates"] < stage.total_updates:
            print(f"[stage {stage.name}] stopped at update {done['updates']}; run again to resume")
            return False
        for kind in ("best", "last"):
            src, dst = save_dir / f"model_{kind}.pt", save_dir / f"model_{kind}_{stage.name}.pt"
            if stage is not recipe[-1] and src.is_file() and not dst.exists():
                atomic_copy(src, dst)
    return True


def plot_curves(save_dir: Path, out: Path) -> Path:
    """Training loss and held-out CER/SIM against updates, from ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in (save_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, title in zip(axes, ["loss", "val/cer", "val/sim"],
                              ["CFM loss (mse)", "held-out CER (Whisper tiny.en)", "held-out SIM to prompt"]):
        pts = [(r["update"], r[key]) for r in rows if key in r and not math.isnan(r[key])]
        if pts:
            ax.plot(*zip(*pts), marker="o" if key != "loss" else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out


def _ema_file(ckpt: Path, tmp: Path) -> tuple[Path, int]:
    """A training checkpoint's EMA weights as a released-format file (what gets measured and shipped)."""
    from f5rl.model.checkpoint import dit_state_from, read_weights_file, save_released_format

    raw = read_weights_file(ckpt)
    update = int(raw.get("update", 0))
    out = tmp / f"{ckpt.stem}.safetensors"
    save_released_format(dit_state_from(raw, use_ema=True), out, step=update)
    return out, update


def select_checkpoint(save_dir: Path, test_lists: list[Path], candidates: list[str], n_items: int, nfe: int,
                      work: Path) -> tuple[Path, dict[str, float]]:
    """The candidate with the lowest CER on a selection split: the ``n_items`` items of each test list after
    the ``n_items`` that are reported, so the reported numbers are not the ones the choice was made on
    (with the template and the free-text list, the mean of the two lists' CERs).

    Each item's CER is clipped at 1 for the choice: a Whisper transcript that loops on noise scores
    CER 4-5 on one item, which would outweigh everything else a mean over 24 items measures."""
    found = [save_dir / c for c in candidates if (save_dir / c).is_file()] if candidates else \
        sorted([*save_dir.glob("model_best*.pt"), *save_dir.glob("model_last*.pt")])
    if not found:
        raise FileNotFoundError(f"none of {candidates} in {save_dir}; train first (make demo-base)")
    if len(found) == 1:
        return found[0], {}
    scores, by_update = {}, {}
    shutil.copy(save_dir / "config.yaml", work / "config.yaml")
    for ckpt in found:
        weights, update = _ema_file(ckpt, work)
        if update in by_update:  # one run: the same update is the same weights (e.g. best == last)
            scores[ckpt.name] = by_update[update]
            print(f"[select] {ckpt.name}: update {update}, measured above")
            continue
        per_list = []
        for test_list in test_lists:
            r = measure(weights, test_list, n_items, nfe, config=work / "config.yaml", start=n_items)
            per_list.append(sum(min(it["cer"], 1.0) for it in r.per_item) / len(r.per_item))
            print(f"[select] {ckpt.name}: {test_list.name} CER {r.cer:.4f} (clipped per item at 1: "
                  f"{per_list[-1]:.4f}) on the selection split")
        scores[ckpt.name] = by_update[update] = round(sum(per_list) / len(per_list), 4)
    return save_dir / min(scores, key=scores.get), scores


def export(save_dir: Path, out: Path, data: Path, n_items: int = 24, nfe: int = 32,
           candidates: tuple[str, ...] = (), recipe_file: Path = RECIPE_FILE) -> BaseModelReport:
    """EMA weights of the selected checkpoint + config + vocab + curves + measurement + model card, with the
    recipe it trained (``recipe_file``) and the card's template -> ``out``.

    With several candidates (default: every ``model_best*.pt`` and ``model_last*.pt``) the one with
    the lowest CER on a selection split is taken (see :func:`select_checkpoint`). Everything is
    assembled in a temp folder beside ``out`` and swapped in at the end, so a failed export leaves the
    previous model in place."""
    import torch
    from omegaconf import OmegaConf

    from f5rl.model.checkpoint import dit_state_from, read_weights_file, save_released_format

    recipe = load_recipe(recipe_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    tmp.chmod(0o755)
    try:
        work = tmp / "select"
        work.mkdir()
        lists = [data / "test_eval.jsonl", *[p for p in [data / FREE_LIST] if p.is_file()]]
        src, selection = select_checkpoint(save_dir, lists, list(candidates), n_items, nfe, work)
        shutil.rmtree(work)
        raw = read_weights_file(src)
        update = int(raw.get("update", 0))
        state = dit_state_from(raw, use_ema=True)
        dtype = torch.float32
        if sum(v.numel() * 4 for v in state.values()) > MAX_BYTES:
            dtype = torch.bfloat16  # keep the shipped file small; inference runs in bf16 anyway
        save_released_format({k: v.to(dtype) for k, v in state.items()}, tmp / "model.safetensors", step=update)
        cfg = OmegaConf.load(save_dir / "config.yaml")
        vocab = cfg.model.tokenizer_path or Path(cfg.datasets.path or data) / "vocab.txt"
        shutil.copy(vocab, tmp / "vocab.txt")
        # which rows were trained (the fallback reads it): the run's record, else the counts beside its vocab
        for counts in (save_dir / COUNTS_FILE, Path(vocab).with_name(COUNTS_FILE)):
            if counts.is_file():
                shutil.copy(counts, tmp / COUNTS_FILE)
                break
        cfg.model.tokenizer_path = "vocab.txt"  # resolved beside the config by TTS.from_checkpoint
        OmegaConf.save(cfg, tmp / "config.yaml")
        plot_curves(save_dir, tmp / "curves.png")
        report = measure(tmp / "model.safetensors", data / "test_eval.jsonl", n_items=n_items, nfe=nfe)
        free = measure(tmp / "model.safetensors", lists[1], n_items=n_items, nfe=nfe) if len(lists) > 1 else None
        history = [json.loads(ln) for ln in (save_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
        val = [{k: r[k] for k in ("update", "val/cer", "val/sim") if k in r} for r in history if "val/cer" in r]
        info = {"source_checkpoint": src.name, "update": update, "selection_split_cer": selection,
                "recipe": [asdict(st) for st in recipe],
                "dtype": str(dtype).removeprefix("torch."),
                "bytes": (tmp / "model.safetensors").stat().st_size, "measured": asdict(report), "validation": val,
                "measured_free_text": asdict(free) if free else None,
                # approximate time in training steps (validation excluded): each logged row's rate is
                # the mean since that sitting started, applied to the row's log_every updates
                "approx_train_step_seconds": round(sum(cfg.ckpts.log_every / r["updates_per_s"] for r in history
                                                if r.get("updates_per_s")))}
        (tmp / "metrics.json").write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "README.md").write_text(model_card(cfg, info))
        # the folder replaces ``out`` whole: the recipe and the card's template go with it, or exporting
        # into the shipped copy would delete the files that `make demo-base` and the card are built from
        shutil.copy(recipe_file, tmp / "recipe.yaml")
        shutil.copy(CARD_TEMPLATE, tmp / "card.md")
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def write_card(out: Path, notes: str | None = None) -> Path:
    """(Re)write ``out/README.md`` from the exported ``config.yaml`` and ``metrics.json``; ``notes``
    (the run's story: sittings, wall time, what was tried) is kept in ``metrics.json``."""
    from omegaconf import OmegaConf

    info = json.loads((out / "metrics.json").read_text())
    if notes is not None:
        info["notes"] = notes
        atomic_write_text(out / "metrics.json", json.dumps(info, indent=1) + "\n")
    return atomic_write_text(out / "README.md", model_card(OmegaConf.load(out / "config.yaml"), info))


def model_card(cfg, info: dict) -> str:
    """The model card: ``card.md`` beside the shipped model (a template) filled from the exported
    config and ``metrics.json``."""
    m, a = info["measured"], cfg.model.arch
    recipe = info.get("recipe") or []
    stages = "\n".join(f"  {i}. `{st['name']}`: `{st['corpus']}` until update {st['total_updates']}"
                       + (f" ({', '.join(st['overrides'])})" if st["overrides"] else "")
                       for i, st in enumerate(recipe, 1))
    more = [f"stage {i} adds {st['extra_train_sentences']}"
            + (f" and {st['broad_train_sentences']} of common English words in random order"
               if st.get("broad_train_sentences") else "")
            for i, st in enumerate(recipe, 1) if st["extra_train_sentences"] or st.get("broad_train_sentences")]
    flags = "`--extra_train_sentences`" + (", `--broad_train_sentences`" if any(st.get("broad_train_sentences")
                                                                               for st in recipe) else "")
    extra = (f"\n  Train-only sentences ({flags}): {', '.join(more)};\n"
             "  the held-out split and test lists are unchanged.") if more else ""
    free = info.get("measured_free_text")
    free_rows = (f"| this model, free-text sentences (`{FREE_LIST}`, {free['items']} items) | {free['cer']:.3f} | "
                 f"{free['wer']:.3f} | {free['sim']:.3f} |\n"
                 f"| ground truth, free-text sentences | {free['ground_truth_cer']:.3f} | | "
                 f"{free['ground_truth_sim']:.3f} |\n") if free else ""
    tok = cfg.model.tokenizer
    fields = {
        **{k: m[k] for k in ("items", "nfe", "cer", "wer", "sim", "ground_truth_cer", "ground_truth_sim",
                             "different_speaker_sim", "median_cer", "closer_to_own_text")},
        "dim": a.dim, "depth": a.depth, "conv_layers": a.conv_layers,
        "text": "average-upsampled text" if a.text_embedding_average_upsampling else "text padded to the audio length",
        "tokens": "IPA phoneme tokens from espeak-ng" if tok == "phoneme" else f"`{tok}` tokens",
        "extra": extra, "free_rows": free_rows, "stages": stages, "learning_rate": cfg.optim.learning_rate,
        "batch_frames": cfg.datasets.batch_size_per_gpu, "ema_beta": cfg.optim.ema_beta,
        "val_every": cfg.ckpts.val_every,
        "source_checkpoint": info["source_checkpoint"], "update": info["update"], "dtype": info["dtype"],
        "megabytes": info["bytes"] / 1e6,
        "sel": ", ".join(f"`{k}` {v:.3f}" for k, v in info["selection_split_cer"].items()) or "a single candidate",
        "curve": ", ".join(f"{v['update']}: {v['val/cer']:.3f}" for v in info["validation"]) or "n/a",
        "run": f"## Run\n\n{info['notes'].strip()}\n\n" if info.get("notes") else "",
    }
    return CARD_TEMPLATE.read_text(encoding="utf-8").format(**fields)


def main(argv: list[str] | None = None) -> None:
    ap = command_parser(__doc__)
    ap.add_argument("--data", default="data/demo_char", type=Path, help="the demo corpus")
    ap.add_argument("--save-dir", default="ckpts/demo_base", type=Path, help="the training run's folder")
    ap.add_argument("--out", default=SHIPPED, type=Path, help="export folder (default: the shipped copy)")
    ap.add_argument("--recipe", default=RECIPE_FILE, type=Path,
                    help="the stages to train (YAML of the shipped recipe.yaml's form); exported beside the model")
    ap.add_argument("--export-only", action="store_true", help="skip training; measure and export the best")
    ap.add_argument("--no-export", action="store_true", help="train only")
    ap.add_argument("--eval-items", type=int, default=24, help="held-out items the model is measured on")
    ap.add_argument("--nfe", type=int, default=32, help="Euler steps of the measurement's synthesis")
    ap.add_argument("--notes", type=Path, help="a text file with the run's notes for the model card")
    ap.add_argument("--card-only", action="store_true", help="only rewrite the model card of --out")
    ap.add_argument("--candidates", nargs="+", default=[],
                    help="checkpoints in --save-dir to choose from on the selection split "
                         "(default: every model_best*.pt and model_last*.pt)")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the trainer (after --)")
    args = ap.parse_args(argv)
    notes = args.notes.read_text() if args.notes else None
    if args.card_only:
        print(f"[card] {write_card(args.out, notes)}")
        return
    if not args.recipe.is_file():
        ap.error(f"--recipe {args.recipe} does not exist; pass a YAML file of stages like {RECIPE_FILE}")
    try:
        recipe = load_recipe(args.recipe)
    except (TypeError, KeyError, ValueError) as e:
        ap.error(f"--recipe {args.recipe} is not a recipe ({e}); see {RECIPE_FILE} for the form")
    ensure_corpus(args.data)
    if not args.export_only and not run_recipe(args.data, args.save_dir, args.overrides, recipe):
        return  # a stage stopped early: export when the recipe is complete (or with --export-only)
    if not args.no_export:
        report = export(args.save_dir, args.out, args.data, args.eval_items, args.nfe, tuple(args.candidates),
                        args.recipe)
        print(json.dumps({k: v for k, v in asdict(report).items() if k != "per_item"}, indent=1))
        if notes is not None:
            write_card(args.out, notes)
        print(f"[export] {args.out}")


if __name__ == "__main__":
    main()

"""Step 5: iterative offline preference optimisation (DESIGN §9).

Round k (folder ``<work_dir>/iter_<k>/``): generate and score every manifest row with the
current policy (``generated/``), build chosen/rejected pairs (``pairs/``), train DPO from the
current policy (``train/``); the next round starts from ``iter_<k>/train/model_last.pt``. Each
step is resumable: finished generations are skipped, existing pairs are reused, and training
resumes from its own ``model_last.pt``.

    python -m f5rl.prefs.iterate --manifest pairs.jsonl --init_ckpt ckpts/.../model_last.pt \
        --work_dir ckpts/dpo_rounds --rounds 2 --group_size 6 -- dpo.beta=500 optim.max_updates=100
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RoundResult:
    round: int
    ckpt: str
    generation: dict
    pairs: dict
    train: dict = field(default_factory=dict)
    val_before: dict = field(default_factory=dict)
    val_after: dict = field(default_factory=dict)


def run_round(k: int, manifest: str, policy_ckpt: str, work_dir: Path, group_size: int, config_name: str,
              overrides: list[str], nfe: int = 16, cer_threshold: float = 1.0, val_size: int = 2,
              max_duration: float = 30.0, asr: str = "whisper_asr", sim: str = "resemblyzer_sim",
              seed: int = 0) -> RoundResult:
    from f5rl.config import compose, validate
    from f5rl.config.schema import DPOTrainConfig
    from f5rl.prefs.create_preference_pairs import create
    from f5rl.prefs.generate import generate
    from f5rl.train.dpo_trainer import DPOTrainer

    d = work_dir / f"iter_{k}"
    gen = generate(manifest, policy_ckpt, str(d / "generated"), nfe=nfe, seed=seed + 1000 * k, asr=asr, sim=sim,
                   progress=False)
    pairs_dir = d / "pairs"
    if not (pairs_dir / "train.jsonl").is_file():
        report = create(str(d / "generated"), str(pairs_dir), group_size, cer_threshold, 0.0, max_duration, val_size,
                        seed=seed)
        (pairs_dir / "report.json").write_text(json.dumps({"train": len(report.train), "val": len(report.val),
                                                           "dropped": dict(report.dropped)}))
    pairs = json.loads((pairs_dir / "report.json").read_text())
    if pairs["train"] == 0:
        raise RuntimeError(f"round {k}: no preference pair survived the filters ({pairs['dropped']}); "
                           "generate more samples per group or relax --cer_threshold")
    over = [f"dpo.train_manifest={pairs_dir / 'train.jsonl'}", f"ckpts.save_dir={d / 'train'}",
            f"ckpts.init_from={policy_ckpt}", f"dpo.ref_model_ckpt={policy_ckpt}"]
    if pairs["val"]:
        over.append(f"dpo.val_manifest={pairs_dir / 'val.jsonl'}")
    trainer = DPOTrainer(validate(compose(config_name, over + list(overrides)), DPOTrainConfig))
    trainer.setup()
    before = trainer.validate()
    summary = trainer.train()
    after = trainer.validate()
    return RoundResult(k, str(d / "train" / "model_last.pt"), gen, pairs,
                       {"updates": summary.updates, "final_loss": summary.final_loss}, before, after)


def iterate(manifest: str, init_ckpt: str, work_dir: str, rounds: int, group_size: int,
            config_name: str = "F5TTS_DPO_tiny", overrides: list[str] | None = None, **kw) -> list[RoundResult]:
    work = Path(work_dir)
    ckpt, results = init_ckpt, []
    for k in range(rounds):
        r = run_round(k, manifest, ckpt, work, group_size, config_name, overrides or [], **kw)
        results.append(r)
        ckpt = r.ckpt
        print(f"[round {k}] generated {r.generation['done']} (mean CER {r.generation['mean_cer']:.3f}, "
              f"SIM {r.generation['mean_sim']:.3f}); pairs {r.pairs['train']} train / {r.pairs['val']} val; "
              f"val accuracy {r.val_before.get('val/dpo/accuracy', float('nan')):.2f} -> "
              f"{r.val_after.get('val/dpo/accuracy', float('nan')):.2f}")
    (work / "rounds.json").write_text(json.dumps([r.__dict__ for r in results], indent=2, default=str))
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--init_ckpt", required=True)
    ap.add_argument("--work_dir", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--group_size", type=int, required=True)
    ap.add_argument("--config_name", default="F5TTS_DPO_tiny")
    ap.add_argument("--nfe", type=int, default=16)
    ap.add_argument("--cer_threshold", type=float, default=1.0)
    ap.add_argument("--val_size", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="config overrides for train_dpo (after --)")
    args = ap.parse_args(argv)
    iterate(args.manifest, args.init_ckpt, args.work_dir, args.rounds, args.group_size, args.config_name,
            args.overrides, nfe=args.nfe, cer_threshold=args.cer_threshold, val_size=args.val_size)


if __name__ == "__main__":
    main()

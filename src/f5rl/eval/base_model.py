"""The shipped demo base model and how a base model is measured on held-out sentences.

* :data:`SHIPPED`: the folder of the shipped demo base (weights in the released F5 layout,
  ``config.yaml``, ``vocab.txt``, model card), rebuilt by ``make demo-base``;
* :func:`check_base` / :func:`base_overrides`: the files a base folder must hold, and the config
  overrides that rebuild its network and tokenizer in any training stage;
* :func:`measure`: prompted synthesis of held-out sentences, scored with Whisper tiny.en (CER/WER)
  and resemblyzer (SIM to the prompt, and the different-speaker level), as :class:`BaseModelReport`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "demo_base"


def check_base(base: Path) -> Path:
    """The weights file of a base model folder; a folder missing a part is refused with the fix."""
    weights = base / "model.safetensors"
    missing = [p.name for p in (weights, base / "config.yaml", base / "vocab.txt") if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the base model folder {base} lacks {', '.join(missing)}; rebuild it with "
                                "`make demo-base` or run the demo with --from-scratch")
    return weights


def base_overrides(base: Path | None) -> list[str]:
    """Config overrides that rebuild the base model's network and tokenizer in every stage: the
    architecture and tokenizer are read from the shipped ``config.yaml``; the vocab is the shipped one."""
    if base is None:
        return []
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(base / "config.yaml").model
    over = [f"model.tokenizer={cfg.tokenizer}", f"model.tokenizer_path={base / 'vocab.txt'}"]
    for key, value in OmegaConf.to_container(cfg.arch).items():
        over.append(f"model.arch.{key}={'null' if value is None else value}")
    return over



@dataclass
class BaseModelReport:
    """Held-out measurement of a base model (prompted synthesis, prompts from other utterances)."""

    items: int
    nfe: int
    cer: float  # Whisper tiny.en on Griffin-Lim audio
    wer: float
    sim: float  # resemblyzer cosine to the prompt
    different_speaker_sim: float  # the prompt against real speech of another speaker
    ground_truth_cer: float
    ground_truth_sim: float
    closer_to_own_text: int  # transcripts nearer (CER) to their own sentence than to any other
    seconds: float
    median_cer: float = math.nan
    per_item: list[dict] = field(default_factory=list)  # utt, text, transcript, cer, sim
    judges: dict[str, dict] = field(default_factory=dict)  # second Whisper judges of the same audio


def _different_speaker_items(items, pool):
    """For each item, the next item of ``pool`` spoken by someone else (the list must name speakers)."""
    if any(it.speaker is None or it.target_wav is None for it in pool):
        raise ValueError("the test list needs `speaker` and `target_wav` on every row (a JSONL test list)")
    out = []
    for it in items:
        i = pool.index(it)
        other = next((o for o in pool[i + 1:] + pool[:i] if o.speaker != it.speaker), None)
        if other is None:
            raise ValueError("the test list has a single speaker; the different-speaker level needs two")
        out.append(other)
    return out


def measure(ckpt: str | Path, test_list: str | Path, n_items: int = 24, nfe: int = 32, seed: int = 0,
            config: str | Path | None = None, start: int = 0, asr_model: str = "embedded:tiny.en",
            second_judges: tuple[str, ...] = ()) -> BaseModelReport:
    """Synthesise ``n_items`` held-out sentences (from item ``start``) with prompts from other
    utterances and score them with Whisper (``asr_model``, CER/WER) and resemblyzer (SIM to the prompt);
    ``second_judges`` (other Whisper models) transcribe the same audio too (``BaseModelReport.judges``)."""
    from f5rl.audio.io import load_audio
    from f5rl.eval.evaluate import read_test_list, score, synthesize_items
    from f5rl.infer.tts import TTS
    from f5rl.rewards.base import RewardBatch
    from f5rl.rewards.registry import build_provider
    from f5rl.rewards.text_metrics import char_error_rate

    pool = read_test_list(test_list)
    if len(pool) < start + n_items:
        raise ValueError(f"{test_list} has {len(pool)} items, {start}+{n_items} asked for")
    items = pool[start:start + n_items]
    others = _different_speaker_items(items, pool)  # checked before any synthesis
    providers = {"asr": build_provider("whisper_asr", {"model": asr_model}), "sim": build_provider("resemblyzer_sim")}
    for p in providers.values():
        p.setup()
    t0 = time.perf_counter()
    tts = TTS.from_checkpoint(ckpt, config=config, device="cpu")
    audios, _ = synthesize_items(tts, items, nfe=nfe, seed=seed)
    rows = score(items, audios, providers)
    truth = score(items, [load_audio(it.target_wav) for it in items], providers)
    diff = providers["sim"](RewardBatch([load_audio(o.target_wav) for o in others], [o.target_text for o in others],
                                        ref_audio=[load_audio(it.prompt_wav) for it in items])).scores
    texts = [it.target_text for it in items]
    closer = sum(
        char_error_rate(t, r["transcript"]) < min(char_error_rate(o, r["transcript"]) for o in texts if o != t)
        for t, r in zip(texts, rows)
    )

    def mean(key: str, rs: list[dict]) -> float:
        return round(sum(r[key] for r in rs) / len(rs), 4)

    judges = {}
    for judge in second_judges:
        asr = {"asr": build_provider("whisper_asr", {"model": judge}), "sim": providers["sim"]}
        rs, gt = score(items, audios, asr), score(items, [load_audio(it.target_wav) for it in items], asr)
        judges[judge] = {"cer": mean("cer", rs), "wer": mean("wer", rs), "ground_truth_cer": mean("cer", gt),
                         "median_cer": round(float(sorted(r["cer"] for r in rs)[len(rs) // 2]), 4)}
    return BaseModelReport(items=len(items), nfe=nfe, cer=mean("cer", rows), wer=mean("wer", rows), judges=judges,
                           sim=mean("sim", rows), different_speaker_sim=round(float(diff.mean()), 4),
                           ground_truth_cer=mean("cer", truth), ground_truth_sim=mean("sim", truth),
                           closer_to_own_text=int(closer), seconds=round(time.perf_counter() - t0, 1),
                           median_cer=round(float(sorted(r["cer"] for r in rows)[len(rows) // 2]), 4),
                           per_item=[{"utt": r["utt"], "text": r["target_text"], "transcript": r["transcript"],
                                      "cer": round(r["cer"], 4), "sim": round(r["sim"], 4)} for r in rows])

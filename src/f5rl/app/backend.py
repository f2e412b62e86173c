"""What the listening page does, without the page: load checkpoints, synthesise and score them side
by side, and read the folders that ``evaluate`` and ``prefs.iterate`` write (no Gradio import here,
so all of it is tested directly; :mod:`f5rl.app.ui` only lays it out)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

SAMPLE_RATE = 24000
MAX_MODELS = 4


class InputProblem(ValueError):
    """Something the user gave the page that it cannot use; the message says what to do instead."""


@dataclass(frozen=True)
class ModelSpec:
    """A checkpoint the page can load: an f5rl ``.pt``/``.safetensors`` with its ``config.yaml`` beside
    it, or released F5 weights with a shipped model config and their ``vocab.txt``."""

    name: str
    ckpt: Path
    model_cfg: str | None = None
    vocab: Path | None = None

    @staticmethod
    def parse(text: str) -> ModelSpec:
        """``PATH`` or ``PATH,model_cfg=F5TTS_v1_Base,vocab=VOCAB`` (the ``--model`` flag and the page's box)."""
        path, *opts = [p.strip() for p in text.split(",") if p.strip()] or [""]
        kw = {}
        for o in opts:
            key, _, value = o.partition("=")
            if key not in ("model_cfg", "vocab", "name") or not value:
                raise InputProblem(f"{o!r} in {text!r}: write PATH or PATH,model_cfg=NAME,vocab=FILE[,name=LABEL]")
            kw[key] = value
        ckpt = Path(path).expanduser()
        if not ckpt.is_file():
            raise InputProblem(f"checkpoint {ckpt} does not exist; give the path of a .pt or .safetensors file")
        if ckpt.suffix not in (".pt", ".safetensors"):
            raise InputProblem(f"{ckpt.name} is not a checkpoint; give a .pt or .safetensors file")
        if "model_cfg" not in kw and not (ckpt.parent / "config.yaml").is_file():
            raise InputProblem(f"no config.yaml beside {ckpt}; for released F5 weights add "
                               f"',model_cfg=F5TTS_v1_Base,vocab=PATH/vocab.txt'")
        if "vocab" in kw and "model_cfg" not in kw:  # a config.yaml names its own vocab
            raise InputProblem(f"vocab= in {text!r} goes with model_cfg= (released F5 weights); drop it or add "
                               "model_cfg=F5TTS_v1_Base")
        vocab = Path(kw["vocab"]).expanduser() if "vocab" in kw else None
        if vocab is not None and not vocab.is_file():
            raise InputProblem(f"vocab {vocab} does not exist")
        name = kw.get("name") or (ckpt.parent.name if ckpt.stem in ("model", "model_last") else ckpt.stem)
        return ModelSpec(name, ckpt, kw.get("model_cfg"), vocab)


def shipped_base() -> ModelSpec:
    from f5rl.eval.base_model import SHIPPED

    return ModelSpec("demo base (shipped)", SHIPPED / "model.safetensors")


@dataclass
class Prompt:
    audio: Tensor  # (samples,) mono 24 kHz
    text: str


def read_prompt(path: str | None, text: str | None, max_seconds: float = 30.0) -> Prompt:
    """The prompt recording and its transcript, checked: readable audio, not silent, not too long."""
    from f5rl.audio.io import load_audio

    if not path:
        raise InputProblem("no prompt audio: upload or record a few seconds of speech, or pick a held-out utterance")
    try:
        audio = load_audio(path)
    except Exception as e:  # soundfile names no format; the user needs to hear what to upload
        raise InputProblem(f"the prompt {Path(path).name} is not audio this page can read ({type(e).__name__}); "
                           "upload a WAV, FLAC or OGG file") from e
    seconds = audio.numel() / SAMPLE_RATE
    if seconds < 0.3 or float(audio.abs().max()) < 1e-4:
        raise InputProblem(f"the prompt is silent or too short ({seconds:.1f} s); use 2-10 s of clear speech")
    if seconds > max_seconds:
        raise InputProblem(f"the prompt is {seconds:.0f} s long; use at most {max_seconds:.0f} s (F5 prompts work "
                           "best at 3-10 s)")
    if not (text or "").strip():
        raise InputProblem("the prompt's transcript is empty: type what the prompt says")
    return Prompt(audio, text.strip())


@dataclass
class Scored:
    """One model's sample of the text, with what the reward providers said of it."""

    model: str
    audio: Tensor
    mel: Tensor  # (frames, n_mels) generated frames
    seed: int
    scores: dict[str, float]  # cer, wer, sim, dnsmos, reward
    transcript: str
    candidates: int = 1  # best of this many seeds
    candidate_rewards: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.audio.numel() / SAMPLE_RATE


class Studio:
    """Loaded models (each once) and the scorers of the page: Whisper CER/WER, speaker SIM and, where
    installed, DNSMOS; best-of-N ranks candidates by (1 - CER) + SIM, the demo's training reward."""

    def __init__(self, models: list[ModelSpec], asr: str = "whisper_asr", sim: str = "resemblyzer_sim",
                 mos: str | None = "dnsmos", max_prompt_seconds: float = 30.0) -> None:
        self.models = {m.name: m for m in models}
        self.asr, self.sim, self.mos = asr, sim, mos
        self.max_prompt_seconds = max_prompt_seconds
        self._tts: dict[str, object] = {}
        self._rewards = None
        self._mos = None

    def add(self, spec: ModelSpec) -> str:
        self.models[spec.name] = spec
        return spec.name

    def tts(self, name: str):
        if name not in self._tts:
            from f5rl.infer.tts import TTS

            m = self.models[name]
            self._tts[name] = TTS.from_checkpoint(m.ckpt, model_cfg=m.model_cfg, vocab=m.vocab)
        return self._tts[name]

    def rewards(self):
        if self._rewards is None:
            from f5rl.rewards.combine import RewardSet

            self._rewards = RewardSet.from_config([{"name": self.asr, "label": "asr"},
                                                   {"name": self.sim, "label": "sim"}])
        return self._rewards

    def mos_provider(self):
        if self._mos is None and self.mos:
            from f5rl.rewards.registry import build_provider

            try:
                self._mos = build_provider(self.mos)
            except ImportError:  # the mos extra is optional: the page shows no DNSMOS column then
                self.mos = None
        return self._mos

    def compare(self, names: list[str], prompt: Prompt, text: str, seed: int = 0, nfe: int = 32, best_of: int = 1,
                progress: Callable[[float, str], None] | None = None) -> list[Scored]:
        """Each named model says ``text`` in the prompt's voice from the same seeds; with ``best_of`` N
        each keeps the best of seeds ``seed … seed+N-1``."""
        from f5rl.infer.best_of_n import rank
        from f5rl.rewards.base import RewardBatch
        from f5rl.rewards.text_metrics import word_error_rate

        if not names:
            raise InputProblem("no model chosen: tick at least one checkpoint")
        if len(names) > MAX_MODELS:
            raise InputProblem(f"{len(names)} models chosen; compare at most {MAX_MODELS} at a time")
        unknown = [n for n in names if n not in self.models]
        if unknown:
            raise InputProblem(f"unknown model {unknown[0]!r}; add its checkpoint first")
        if not text.strip():
            raise InputProblem("the text to say is empty: type a sentence")
        if not 1 <= best_of <= 16:
            raise InputProblem(f"best of {best_of}: choose 1 to 16 candidates")
        out = []
        for i, name in enumerate(names):
            if progress:
                progress(i / len(names), f"{name}: synthesising {best_of} sample(s)")
            tts = self.tts(name)
            try:
                tts.check_text(text)
            except ValueError as e:
                raise InputProblem(f"{name}: {e}") from e
            seeds = [seed + k for k in range(best_of)]
            cands = tts.synthesize_batch([prompt.audio] * best_of, [prompt.text] * best_of, [text] * best_of, seeds,
                                         nfe=nfe)
            if progress:
                progress((i + 0.7) / len(names), f"{name}: scoring")
            idx, scored = rank(self.rewards(), [c.audio for c in cands], text, prompt.audio)
            best = cands[idx]
            asr = self.rewards().providers[0]
            transcript = asr.last_transcripts[idx] if getattr(asr, "last_transcripts", None) else ""
            m = {k: float(v[idx]) for k, v in scored.metrics.items()}
            scores = {"cer": m.get("reward/asr/char_error_rate", math.nan),
                      "wer": word_error_rate(text, transcript) if transcript else math.nan,
                      "sim": m.get("reward/sim", math.nan), "reward": float(scored.reward[idx])}
            mos = self.mos_provider()
            if mos is not None:
                scores["dnsmos"] = float(mos(RewardBatch([best.audio], [text])).scores[0])
            out.append(Scored(name, best.audio, best.mel, best.seed, scores, transcript, best_of,
                              [float(r) for r in scored.reward]))
        if progress:
            progress(1.0, "done")
        return out


def mel_png(mel: Tensor, path: Path, title: str = "") -> Path:
    """The log-mel spectrogram ``(frames, n_mels)`` as a PNG (time across, frequency up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.2))
    ax.imshow(mel.float().T.numpy(), origin="lower", aspect="auto", cmap="magma")
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# folders written by evaluate and prefs.iterate


@dataclass
class Table:
    """Rows to listen to: ``audio`` holds each row's clip (a pair has ``chosen`` and ``rejected``)."""

    name: str
    rows: list[dict]
    audio: list[dict[str, Path]]

    @property
    def metrics(self) -> list[str]:
        keys = self.rows[0].keys() if self.rows else []
        return [k for k in keys if all(isinstance(r.get(k), (int, float)) for r in self.rows)]

    def sorted(self, metric: str, descending: bool = False) -> Table:
        if metric not in self.metrics:
            raise InputProblem(f"{metric!r} is not a number of this table; sort by one of {', '.join(self.metrics)}")

        vals = [float(r[metric]) for r in self.rows]
        known = sorted((i for i, v in enumerate(vals) if not math.isnan(v)), key=vals.__getitem__, reverse=descending)
        order = known + [i for i, v in enumerate(vals) if math.isnan(v)]  # unscorable rows last either way
        return Table(self.name, [self.rows[i] for i in order], [self.audio[i] for i in order])


@dataclass
class Folder:
    kind: str  # evaluate | prefs | run
    tables: dict[str, Table]
    pngs: list[Path]


def open_folder(path: str | Path) -> Folder:
    """An ``evaluate`` output folder (``<system>.csv`` and ``<system>/<utt>.wav``), a ``prefs`` round
    (``generated/`` and ``pairs/``, or a work dir of ``iter_K`` rounds) or a training run
    (``metrics.jsonl``); its PNG plots come along."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InputProblem(f"{root} is not a folder; give an evaluate --out_dir, a prefs round or a run's save dir")
    rounds = sorted(root.glob("iter_*"))
    if (root / "summary.json").is_file() and list(root.glob("*.csv")):
        folder = Folder("evaluate", _evaluate_tables(root), [])
    elif (root / "generated").is_dir() or rounds:
        tables = {}
        for d in rounds or [root]:
            prefix = f"{d.name}/" if rounds else ""
            tables.update({prefix + k: v for k, v in _prefs_tables(d).items()})
        folder = Folder("prefs", tables, [])
    elif (root / "metrics.jsonl").is_file():
        folder = Folder("run", {}, [])
    else:
        raise InputProblem(f"{root} holds no evaluate output (summary.json), prefs round (generated/) or run "
                           "(metrics.jsonl)")
    folder.pngs = sorted(p for p in root.rglob("*.png") if "samples" not in p.parts)[:24]
    return folder


def _evaluate_tables(root: Path) -> dict[str, Table]:
    tables = {}
    for f in sorted(root.glob("*.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(fh)]
        audio = [{"audio": root / f.stem / f"{r['utt']}.wav"} for r in rows]
        keep = [i for i, a in enumerate(audio) if a["audio"].is_file()]  # ground truth rows have no copies
        if keep:
            tables[f.stem] = Table(f.stem, [rows[i] for i in keep], [audio[i] for i in keep])
    return tables


def _prefs_tables(d: Path) -> dict[str, Table]:
    """A round's pairs (chosen against rejected; what DPO trains on) first, then every generated sample."""
    tables = {}
    gen = d / "generated"
    for split in ("train", "val"):
        f = d / "pairs" / f"{split}.jsonl"
        if not f.is_file():
            continue
        rows, audio = [], []
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            p = json.loads(line)
            c, r = p["chosen"], p["rejected"]
            rows.append({"group": p.get("group", c.get("group")), "text": c["text"], "chosen_cer": c["cer"],
                         "rejected_cer": r["cer"], "chosen_sim": c["sim"], "rejected_sim": r["sim"],
                         "cer_gap": r["cer"] - c["cer"]})
            audio.append({"chosen": _sample_path(c, gen), "rejected": _sample_path(r, gen)})
        if rows:
            tables[f"pairs/{split}"] = Table(f"pairs/{split}", rows, audio)
    rows, audio = [], []
    for f in sorted(gen.glob("*.json")) if gen.is_dir() else []:
        r = json.loads(f.read_text())
        rows.append({k: r.get(k) for k in ("id", "text", "transcript", "cer", "wer", "sim", "duration")})
        audio.append({"audio": gen / r.get("audio_path", f"{r['id']}.wav")})
    if rows:
        tables["generated"] = Table("generated", rows, audio)
    return tables


def _sample_path(sample: dict, gen: Path) -> Path:
    p = Path(sample["audio_path"])
    return p if p.is_file() else gen / p.name  # pair files name the clip as the generating run saw it


def _number(v: str):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def held_out_prompts(corpus: str | Path | None) -> dict[str, tuple[Path, str]]:
    """``label -> (wav, transcript)`` of a demo corpus's held-out prompts (its ``test_eval.jsonl``)."""
    from f5rl.eval.evaluate import read_test_list

    if corpus is None:
        return {}
    f = Path(corpus) / "test_eval.jsonl"
    if not f.is_file():
        raise InputProblem(f"--corpus {corpus} has no test_eval.jsonl; build it with python -m f5rl.data.prepare_demo")
    return {f"{it.speaker}: {it.prompt_text}": (Path(it.prompt_wav), it.prompt_text) for it in read_test_list(f)[:50]}


def to_numpy(audio: Tensor):
    """``(sample_rate, int16 array)``, the form Gradio plays."""
    return SAMPLE_RATE, (audio.clamp(-1, 1) * 32767).to(torch.int16).numpy()

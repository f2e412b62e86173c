"""Python inference API: prompt audio + prompt text + text → speech, from any f5rl checkpoint.

    tts = TTS.from_checkpoint("ckpts/demo/stage1_gaussian_nll/model_last.pt")
    out = tts.synthesize(ref_audio, "prompt transcript", "text to say", seed=0)

The model config is read from the ``config.yaml`` a trainer writes beside its checkpoints;
EMA weights are used when present and LoRA adapters are merged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from f5rl.model.cfm import CFM
from f5rl.model.sampling import estimate_duration
from f5rl.text.tokenizer import Tokenizer


@dataclass
class Synthesis:
    audio: Tensor  # (s,) 24 kHz, generated part only
    mel: Tensor  # (frames, m) generated mel
    prompt_frames: int
    total_frames: int
    seed: int
    prompt_mel: Tensor | None = None  # (prompt_frames, m) the conditioning mel (None for joined chunks)


def load_train_config(path: str | os.PathLike):
    """The resolved config a trainer wrote; validated against the stage-0/1 or stage-2 schema."""
    from omegaconf import OmegaConf

    from f5rl.config.loading import validate
    from f5rl.config.schema import DPOTrainConfig, RLTrainConfig, TrainConfig

    raw = OmegaConf.load(path)
    schema = RLTrainConfig if "rl" in raw else DPOTrainConfig if "dpo" in raw else TrainConfig
    return validate(raw, schema)


class TTS:
    def __init__(self, model: CFM, tokenizer: Tokenizer, mel_config, vocoder, device: str = "cpu",
                 precision: str = "no") -> None:
        from f5rl.audio.mel import MelSpectrogram

        self.model = model.to(device).eval()
        self.tokenizer, self.vocoder, self.device, self.precision = tokenizer, vocoder, device, precision
        self.mel = MelSpectrogram(mel_config)

    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike, config: str | os.PathLike | None = None,
                        vocoder: str | None = None, device: str | None = None, precision: str = "auto",
                        use_ema: bool = True, model_cfg: str | None = None, vocab: str | None = None,
                        compile: bool | None = None) -> TTS:
        """``config``: a trainer's ``config.yaml`` (default: beside the checkpoint). For a released
        F5 checkpoint without one, name a shipped config (``model_cfg="F5TTS_v1_Base"``) and its
        ``vocab`` (the released vocab.txt). ``compile``: ``model.compile`` for synthesis (None: the
        config's value)."""
        from f5rl.audio.vocoder import build_vocoder
        from f5rl.data.dataset import resolve_dataset_dir
        from f5rl.model.build import build_cfm, mel_config, tokenizer_for
        from f5rl.model.checkpoint import dit_state_from, load_dit_state, read_weights_file
        from f5rl.model.lora import merge_lora_state
        from f5rl.utils.precision import resolve_precision

        ckpt = Path(ckpt)
        if not ckpt.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
        if model_cfg is not None:
            from f5rl.config.loading import compose, validate
            from f5rl.config.schema import TrainConfig

            over = ["model.tokenizer=custom", f"model.tokenizer_path={vocab}"] if vocab else []
            cfg = validate(compose(model_cfg, over), TrainConfig)
        else:
            config = Path(config) if config else ckpt.parent / "config.yaml"
            if not config.is_file():
                raise FileNotFoundError(f"no config.yaml beside {ckpt}; pass --config (a trainer's config.yaml) or "
                                        "--model_cfg F5TTS_v1_Base --vocab vocab.txt for a released checkpoint")
            cfg = load_train_config(config)
            tp = cfg.model.tokenizer_path
            if tp and not Path(tp).is_absolute() and (config.parent / tp).is_file():
                cfg.model.tokenizer_path = str(config.parent / tp)  # a vocab shipped beside its config
        data_dir = None
        if cfg.model.tokenizer in ("char", "pinyin") and not cfg.model.tokenizer_path:
            data_dir = resolve_dataset_dir(cfg.datasets, cfg.model)
        tok = tokenizer_for(cfg.model, data_dir)
        cfg.model.lora.enabled = False  # adapters are merged into plain weights below
        if compile is not None:
            cfg.model.compile = compile
        model = build_cfm(cfg.model, tok.vocab_size)
        state = dit_state_from(read_weights_file(ckpt), use_ema=use_ema)
        if any(k.endswith("lora_A") for k in state):
            state = merge_lora_state(state)
        load_dit_state(model.transformer, state)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        v = cfg.model.vocoder
        voc = build_vocoder(vocoder or v.name, v.local_path if v.is_local else None, mel_config(cfg.model),
                            v.griffin_lim_iters)
        return cls(model, tok, mel_config(cfg.model), voc, device, resolve_precision(precision, device))

    def check_text(self, text: str) -> None:
        """Empty text or characters outside the model's vocabulary are errors, not silent spaces."""
        if not text.strip():
            raise ValueError("text to synthesise is empty")
        if self.tokenizer.kind == "phoneme":
            if not any(t.strip(" ,.?!;:") for t in self.tokenizer.tokenize(text)):
                raise ValueError(f"espeak-ng reads no sounds in {text!r}; write it in English words")
            unknown = self.tokenizer.unknown(text)
            if unknown:  # only when nothing near these phonemes was ever trained (f5rl.text.inventory)
                raise ValueError(f"phonemes {unknown} have no trained row or trained neighbour in this model; "
                                 "extend its vocabulary (python -m f5rl.scripts.extend_vocab) and train on text "
                                 "that contains them")
            return
        unknown = self.tokenizer.unknown(text)
        if unknown:
            raise ValueError(f"characters not in the model's vocabulary: {''.join(unknown)!r}; "
                             "rewrite them (e.g. spell out digits) or extend the vocabulary")

    def prepare_prompt(self, ref_audio: Tensor) -> Tensor:
        """Mono 24 kHz prompt with quiet audio raised to F5's target RMS; ``(frames, m)`` mel."""
        from f5rl.audio.io import raise_quiet

        audio = raise_quiet(ref_audio)
        with torch.no_grad():
            return self.mel(audio[None])[0].T

    @torch.no_grad()
    def synthesize(self, ref_audio: Tensor, ref_text: str, text: str, *, seed: int = 0, nfe: int = 32,
                   cfg_strength: float = 2.0, sway: float | None = -1.0, speed: float = 1.0,
                   duration: int | None = None) -> Synthesis:
        self.check_text(text)
        prompt = self.prepare_prompt(ref_audio).to(self.device)
        n_prompt = prompt.shape[0]
        full = ref_text.strip() + " " + text.strip()
        total = duration or estimate_duration(n_prompt, ref_text, text, speed, self.tokenizer.length)
        ids = self.tokenizer.encode([full]).to(self.device)
        out = self.model.sample(prompt[None], ids, total, steps=nfe, cfg_strength=cfg_strength,
                                sway_sampling_coef=sway, seed=seed, precision=self.precision)
        gen = out.generated(0).float()
        audio = self.vocoder(gen.T[None].cpu())[0]
        return Synthesis(audio, gen.cpu(), n_prompt, int(out.durations[0]), seed, prompt.cpu())

    @torch.no_grad()
    def synthesize_batch(self, ref_audios: list[Tensor], ref_texts: list[str], texts: list[str], seeds: list[int],
                         *, nfe: int = 32, cfg_strength: float = 2.0, sway: float | None = -1.0,
                         speed: float = 1.0) -> list[Synthesis]:
        """Several syntheses in one batched ODE solve; sample i equals ``synthesize`` with seed i (in
        fp32; under bf16 autocast up to its rounding, which the ODE carries on)."""
        for t in texts:
            self.check_text(t)
        prompts = [self.prepare_prompt(a) for a in ref_audios]
        lens = torch.tensor([p.shape[0] for p in prompts])
        cond = torch.zeros(len(prompts), int(lens.max()), prompts[0].shape[1])
        for i, p in enumerate(prompts):
            cond[i, : p.shape[0]] = p
        totals = torch.tensor([estimate_duration(int(n), r, t, speed, self.tokenizer.length)
                               for n, r, t in zip(lens, ref_texts, texts)])
        ids = self.tokenizer.encode([r.strip() + " " + t.strip() for r, t in zip(ref_texts, texts)])
        out = self.model.sample(cond.to(self.device), ids.to(self.device), totals.to(self.device),
                                lens=lens.to(self.device), steps=nfe, cfg_strength=cfg_strength,
                                sway_sampling_coef=sway, seed=list(seeds), precision=self.precision)
        results = []
        for i in range(len(prompts)):
            gen = out.generated(i).float()
            results.append(Synthesis(self.vocoder(gen.T[None].cpu())[0], gen.cpu(), int(lens[i]),
                                     int(out.durations[i]), seeds[i], prompts[i].cpu()))
        return results

    def synthesize_long(self, ref_audio: Tensor, ref_text: str, text: str, *, seed: int = 0,
                        max_chars: int | None = None, **kw) -> Synthesis:
        """Long text: chunks sized from the prompt's speaking rate (F5's rule), joined by cross-fades."""
        self.check_text(text)
        ref_seconds = ref_audio.numel() / 24000
        if max_chars is None:
            max_chars = max(int(len(ref_text.encode()) / max(ref_seconds, 0.1) * max(22 - ref_seconds, 4)), 20)
        chunks = chunk_text(text, max_chars)
        if len(chunks) == 1:
            return self.synthesize(ref_audio, ref_text, text, seed=seed, **kw)
        parts = [self.synthesize(ref_audio, ref_text, c, seed=seed + i, **kw) for i, c in enumerate(chunks)]
        audio = crossfade([p.audio for p in parts])
        return Synthesis(audio, torch.cat([p.mel for p in parts]), parts[0].prompt_frames,
                         sum(p.total_frames - p.prompt_frames for p in parts) + parts[0].prompt_frames, seed)


def clip_reference(audio: Tensor, sample_rate: int = 24000, max_seconds: float = 12.0, top_db: float = 40.0) -> Tensor:
    """Shorten a prompt to at most ``max_seconds``, cutting in the last silence before the limit
    (frames ``top_db`` below the loudest) so no word is cut in half; hard cut if there is none."""
    limit = int(max_seconds * sample_rate)
    if audio.numel() <= limit:
        return audio
    frame = int(0.02 * sample_rate)
    n = limit // frame
    energy = audio[: n * frame].reshape(n, frame).square().mean(dim=1).clamp_min(1e-12).sqrt()
    quiet = (20 * torch.log10(energy / energy.max()) < -top_db).nonzero().view(-1)
    cut = int(quiet[-1]) * frame if len(quiet) and int(quiet[-1]) * frame > sample_rate else limit
    return audio[:cut]


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Split at sentence punctuation, then pack sentences into chunks of at most ``max_chars``
    bytes (a sentence longer than that is split at commas, then at spaces)."""
    import re

    pieces = [p.strip() for p in re.split(r"(?<=[.!?;。！？])\s+", text.strip()) if p.strip()]
    out: list[str] = []
    for piece in pieces:
        parts = [piece]
        if len(piece.encode()) > max_chars:
            parts = [p.strip() for p in re.split(r"(?<=,)\s+", piece) if p.strip()]
        for part in parts:
            while len(part.encode()) > max_chars and " " in part:
                cut = part.rfind(" ", 0, max_chars)
                cut = cut if cut > 0 else part.find(" ")
                out.append(part[:cut].strip())
                part = part[cut:].strip()
            if out and len((out[-1] + " " + part).encode()) <= max_chars:
                out[-1] = out[-1] + " " + part
            else:
                out.append(part)
    return out


def crossfade(chunks: list[Tensor], sample_rate: int = 24000, seconds: float = 0.15) -> Tensor:
    """Join audio chunks with linear cross-fades."""
    out = chunks[0]
    n = int(seconds * sample_rate)
    for c in chunks[1:]:
        k = min(n, out.numel(), c.numel())
        if k == 0:
            out = torch.cat([out, c])
            continue
        ramp = torch.linspace(0, 1, k)
        out = torch.cat([out[:-k], out[-k:] * (1 - ramp) + c[:k] * ramp, c[k:]])
    return out

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

TARGET_RMS = 0.1  # F5-TTS normalises quiet prompts to this RMS


@dataclass
class Synthesis:
    audio: Tensor  # (s,) 24 kHz, generated part only
    mel: Tensor  # (frames, m) generated mel
    prompt_frames: int
    total_frames: int
    seed: int


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
                        use_ema: bool = True) -> TTS:
        from f5rl.audio.vocoder import build_vocoder
        from f5rl.model.checkpoint import dit_state_from, load_dit_state, read_weights_file
        from f5rl.model.lora import merge_lora_state
        from f5rl.train.build import build_cfm, mel_config, resolve_dataset_dir, tokenizer_for
        from f5rl.utils.precision import resolve_precision

        ckpt = Path(ckpt)
        config = Path(config) if config else ckpt.parent / "config.yaml"
        if not config.is_file():
            raise FileNotFoundError(f"no config.yaml beside {ckpt}; pass the training config with --config")
        cfg = load_train_config(config)
        data_dir = None
        if cfg.model.tokenizer in ("char", "pinyin") and not cfg.model.tokenizer_path:
            data_dir = resolve_dataset_dir(cfg.datasets, cfg.model)
        tok = tokenizer_for(cfg.model, data_dir)
        cfg.model.lora.enabled = False  # adapters are merged into plain weights below
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

    def prepare_prompt(self, ref_audio: Tensor) -> Tensor:
        """Mono 24 kHz prompt with quiet audio raised to F5's target RMS; ``(frames, m)`` mel."""
        audio = ref_audio.float().reshape(-1)
        rms = audio.square().mean().sqrt()
        if 0 < rms < TARGET_RMS:
            audio = audio * (TARGET_RMS / rms)
        with torch.no_grad():
            return self.mel(audio[None])[0].T

    @torch.no_grad()
    def synthesize(self, ref_audio: Tensor, ref_text: str, text: str, *, seed: int = 0, nfe: int = 32,
                   cfg_strength: float = 2.0, sway: float | None = -1.0, speed: float = 1.0,
                   duration: int | None = None) -> Synthesis:
        if not text.strip():
            raise ValueError("text to synthesise is empty")
        prompt = self.prepare_prompt(ref_audio).to(self.device)
        n_prompt = prompt.shape[0]
        full = ref_text.strip() + " " + text.strip()
        total = duration or estimate_duration(n_prompt, ref_text, text, speed)
        ids = self.tokenizer.encode([full]).to(self.device)
        out = self.model.sample(prompt[None], ids, total, steps=nfe, cfg_strength=cfg_strength,
                                sway_sampling_coef=sway, seed=seed, precision=self.precision)
        gen = out.generated(0).float()
        audio = self.vocoder(gen.T[None].cpu())[0]
        return Synthesis(audio, gen.cpu(), n_prompt, int(out.durations[0]), seed)

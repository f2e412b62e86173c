"""Stage-2 prompts in the setting of synthesis: a voice prompt (audio + transcript) and a new text.

Infilling a corpus utterance (stage 2's default: the first 10–30% of an utterance is the prompt,
the model says the rest) is not the task users run. With ``rl.prompts_manifest`` stage 2 instead
rolls out exactly what synthesis does: the whole prompt audio is the condition, the text is the
prompt's transcript followed by the new sentence, and the length is F5's duration rule. The
manifest is the one the offline preference pipeline reads (``prefs.create_text_context_pairs``:
``context_audio``, ``context_text``, ``text`` per row; rows repeating a (prompt, text) pair for
several samples count once) or a test list's ``prompt_wav``, ``prompt_text``, ``target_text``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from f5rl.audio.io import load_audio, raise_quiet
from f5rl.audio.mel import MelConfig, MelSpectrogram
from f5rl.data.collate import Batch
from f5rl.model.sampling import estimate_duration
from f5rl.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class PromptRow:
    audio: str  # the voice prompt's audio file
    prompt_text: str  # its transcript
    text: str  # what to say in that voice


def read_prompt_manifest(path: str | os.PathLike) -> list[PromptRow]:
    """Distinct (prompt, text) rows of a JSONL manifest; a malformed line is named with its number."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rl.prompts_manifest: {path} does not exist")
    rows, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not JSON ({err.msg})") from None
        if not isinstance(r, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object")
        audio = r.get("context_audio") or r.get("prompt_wav")
        prompt_text = r.get("context_text") if "context_audio" in r else r.get("prompt_text")
        text = r.get("text") if "context_audio" in r else r.get("target_text")
        if r.get("context_type") == "text":
            continue  # text-only contexts have no voice to prompt an F5 model with
        missing = [k for k, v in (("context_audio", audio), ("context_text", prompt_text), ("text", text)) if not v]
        if missing:
            raise ValueError(f"{path}:{n}: missing {', '.join(missing)} (or prompt_wav, prompt_text, target_text)")
        audio_path = Path(audio)
        if not audio_path.is_absolute() and not audio_path.is_file():
            audio_path = path.parent / audio_path  # relative to the manifest when not to the working dir
        row = PromptRow(str(audio_path), prompt_text.strip(), text.strip())
        if row not in seen:
            seen.add(row)
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} has no audio-prompt rows")
    return rows


class PromptSet:
    """Turns prompt rows into stage-2 batches: the prompt's mel followed by empty frames up to the
    estimated total, the full text (prompt transcript + new text), and the prompt frames per row."""

    def __init__(self, rows: list[PromptRow], tokenizer: Tokenizer, mel: MelConfig | None = None) -> None:
        self.rows, self.tokenizer = rows, tokenizer
        self.mel = MelSpectrogram(mel)
        for r in rows:  # refused before any rollout, not at the update that draws the row
            unknown = tokenizer.unknown(r.prompt_text + " " + r.text)
            if unknown:
                raise ValueError(f"rl.prompts_manifest: {r.text!r} needs {unknown}, which this model's vocabulary "
                                 "lacks; drop the row or extend the vocabulary (python -m f5rl.scripts.extend_vocab)")
        self._mels: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def prompt_mel(self, audio: str) -> torch.Tensor:
        """``(frames, m)`` mel of a prompt (F5's quiet-prompt rule), computed once per file."""
        if audio not in self._mels:
            wav = raise_quiet(load_audio(audio, self.mel.config.sample_rate))
            with torch.no_grad():
                self._mels[audio] = self.mel(wav[None])[0].T
        return self._mels[audio]

    def batch(self, idx: list[int]) -> tuple[Batch, torch.Tensor]:
        """The batch of rows ``idx`` and its prompt frames ``(b,)``."""
        rows = [self.rows[i] for i in idx]
        prompts = [self.prompt_mel(r.audio) for r in rows]
        n_prompt = torch.tensor([p.shape[0] for p in prompts])
        totals = torch.tensor([estimate_duration(p.shape[0], r.prompt_text, r.text, 1.0, self.tokenizer.length)
                               for p, r in zip(prompts, rows)])
        mel = torch.zeros(len(rows), int(totals.max()), prompts[0].shape[1])
        for i, p in enumerate(prompts):
            mel[i, : p.shape[0]] = p
        texts = [f"{r.prompt_text} {r.text}" for r in rows]
        batch = Batch(mel, totals, self.tokenizer.encode(texts), texts, [r.audio for r in rows], ref_lengths=n_prompt,
                      target_texts=[r.text for r in rows])
        return batch, n_prompt

"""Preference pairs as training batches: prompt (context) mel + chosen/rejected generated mel.

Pairs from ``f5rl.prefs.generate`` carry the mels the model produced (``chosen_mel``/``rejected_mel``,
prompt frames first): those are used as they are, so DPO scores the exact samples that were ranked.
Pairs made elsewhere (audio only) are analysed from their wavs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from f5rl.audio.io import load_audio
from f5rl.audio.mel import MelConfig, MelSpectrogram
from f5rl.data.collate import pad_frames
from f5rl.text.tokenizer import Tokenizer


@dataclass
class PairItem:
    chosen: Tensor  # (n, m) context + chosen generation
    rejected: Tensor  # (n, m) context + rejected generation, same n
    prompt_len: int
    text: str  # context text + target text
    reward_gap: float


class PairDataset(Dataset):
    def __init__(self, manifest: str, mel: MelConfig | None = None) -> None:
        self.rows = read_pair_rows(manifest)
        if not self.rows:
            raise ValueError(f"{manifest} holds no pairs")
        self.mel = MelSpectrogram(mel)
        import soundfile as sf

        fr = self.mel.config.frame_rate
        self.frame_lens = [np.load(r["chosen_mel"], mmap_mode="r").shape[0] if "chosen_mel" in r else
                           int((sf.info(r["chosen_audio"]).duration + sf.info(r["context_audio"]).duration) * fr) + 2
                           for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @torch.no_grad()
    def _mel(self, path: str) -> Tensor:
        return self.mel(load_audio(path, self.mel.config.sample_rate)[None])[0].T

    def __getitem__(self, i: int) -> PairItem:
        r = self.rows[i]
        gap = (r["rejected_cer"] - r["chosen_cer"]) + (r["chosen_sim"] - r["rejected_sim"])
        text = r["context_text"].strip() + " " + r["text"].strip()
        if "chosen_mel" in r:
            w, l = (torch.from_numpy(np.load(r[k])).float() for k in ("chosen_mel", "rejected_mel"))
            n = min(w.shape[0], l.shape[0])  # same prompt and text, so the same length
            return PairItem(w[:n], l[:n], int(r["prompt_frames"]), text, float(gap))
        ctx = self._mel(r["context_audio"])
        w, l = self._mel(r["chosen_audio"]), self._mel(r["rejected_audio"])
        n = min(w.shape[0], l.shape[0])  # same duration by construction; guard rounding
        return PairItem(torch.cat([ctx, w[:n]]), torch.cat([ctx, l[:n]]), ctx.shape[0], text, float(gap))


def read_pair_rows(path: str) -> list[dict]:
    """Rows of a pair file (``create_preference_pairs``'s train/val JSONL), each with the fields DPO reads;
    a bad line or a missing field is named with the file and line (:func:`f5rl.data.rows.read_rows`)."""
    from f5rl.data.rows import read_rows

    return read_rows(path, ("context_audio", "chosen_audio", "rejected_audio", "text", "context_text"),
                     "pair file (from f5rl.prefs.create_preference_pairs)")


@dataclass
class PairBatch:
    mel: Tensor  # (b, n, m) chosen (named mel so sample logging treats it as the reference)
    rejected: Tensor  # (b, n, m)
    mel_lengths: Tensor  # (b,)
    prompt_lens: Tensor  # (b,)
    text: Tensor  # (b, t)
    texts: list[str]
    reward_gap: Tensor  # (b,)

    def to(self, device) -> PairBatch:
        return PairBatch(self.mel.to(device), self.rejected.to(device), self.mel_lengths.to(device),
                         self.prompt_lens.to(device), self.text.to(device), self.texts, self.reward_gap.to(device))

    def __len__(self) -> int:
        return self.mel.shape[0]


class PairCollate:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, items: list[PairItem]) -> PairBatch:
        w, lens = pad_frames([it.chosen for it in items])
        l, _ = pad_frames([it.rejected for it in items])  # same lengths as the chosen by construction
        texts = [it.text for it in items]
        return PairBatch(w, l, lens, torch.tensor([it.prompt_len for it in items]), self.tokenizer.encode(texts), texts,
                         torch.tensor([it.reward_gap for it in items]))

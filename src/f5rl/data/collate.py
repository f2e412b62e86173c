"""Padding a list of dataset items into a batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from f5rl.data.dataset import Item
from f5rl.text.tokenizer import Tokenizer


@dataclass
class Batch:
    mel: Tensor  # (b, n, m) zero padded
    mel_lengths: Tensor  # (b,)
    text: Tensor  # (b, t) ids, −1 padded
    texts: list[str]
    audio_paths: list[str]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.mel.to(device), self.mel_lengths.to(device), self.text.to(device), self.texts,
                     self.audio_paths)

    def __len__(self) -> int:
        return self.mel.shape[0]


class Collate:
    """Picklable collate function (works with DataLoader workers)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, items: list[Item]) -> Batch:
        lens = torch.tensor([it.mel.shape[0] for it in items], dtype=torch.long)
        n, m = int(lens.max()), items[0].mel.shape[1]
        mel = torch.zeros(len(items), n, m)
        for i, it in enumerate(items):
            mel[i, : it.mel.shape[0]] = it.mel
        texts = [it.text for it in items]
        return Batch(mel, lens, self.tokenizer.encode(texts), texts, [it.audio_path for it in items])

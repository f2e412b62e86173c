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
    # frames of real audio per row, the speaker reference (a synthesis prompt: its prompt frames);
    # None: all of mel_lengths (a corpus utterance)
    ref_lengths: Tensor | None = None
    # a synthesis prompt's new text alone (``texts`` holds prompt transcript + new text); None: a corpus utterance
    target_texts: list[str] | None = None

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.mel.to(device), self.mel_lengths.to(device), self.text.to(device), self.texts,
                     self.audio_paths, None if self.ref_lengths is None else self.ref_lengths.to(device),
                     self.target_texts)

    @property
    def reference_lengths(self) -> Tensor:
        return self.mel_lengths if self.ref_lengths is None else self.ref_lengths

    def __len__(self) -> int:
        return self.mel.shape[0]

    def rows(self, idx: Tensor | slice) -> Batch:
        """The batch of the rows ``idx`` (a slice, or an index tensor that may repeat rows)."""
        keep = range(len(self))[idx] if isinstance(idx, slice) else idx.tolist()
        return Batch(self.mel[idx], self.mel_lengths[idx], self.text[idx], [self.texts[i] for i in keep],
                     [self.audio_paths[i] for i in keep], None if self.ref_lengths is None else self.ref_lengths[idx],
                     None if self.target_texts is None else [self.target_texts[i] for i in keep])


def pad_frames(mels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``(b, n, m)`` zero-padded stack of ``(n_i, m)`` mels and their lengths ``(b,)``."""
    lens = torch.tensor([x.shape[0] for x in mels], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(mels, batch_first=True), lens


class Collate:
    """Picklable collate function (works with DataLoader workers)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, items: list[Item]) -> Batch:
        mel, lens = pad_frames([it.mel for it in items])
        texts = [it.text for it in items]
        return Batch(mel, lens, self.tokenizer.encode(texts), texts, [it.audio_path for it in items])

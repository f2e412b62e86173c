"""Training datasets in F5-TTS's layout.

``data/<name>_<tokenizer>/`` holds ``raw/`` (a Hugging Face ``datasets`` table saved with
``save_to_disk``; rows ``audio_path``, ``text``, ``duration`` in seconds), ``duration.json``
(``{"duration": [...]}``, read by the batch sampler without touching the table) and, for char
tokenizers, ``vocab.txt``. Relative audio paths are resolved against the dataset folder, so a
prepared corpus can be moved. Items outside ``[min_duration, max_duration]`` are skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from f5rl.audio.io import load_audio
from f5rl.audio.mel import MelConfig, MelSpectrogram


def resolve_dataset_dir(datasets, model) -> Path:
    """The dataset folder of a config's ``datasets`` and ``model`` sections."""
    return dataset_dir(datasets.name, model.tokenizer, datasets.data_root, datasets.path)


def dataset_dir(name: str, tokenizer: str, data_root: str | os.PathLike = "data", path: str | None = None) -> Path:
    """``path`` when given, else ``<data_root>/<name>_<tokenizer>``; raises if it is not a dataset."""
    folder = Path(path) if path else Path(data_root) / f"{name}_{tokenizer}"
    if not (folder / "raw").is_dir():
        hint = "python -m f5rl.data.prepare --help" if name != "demo" else "python -m f5rl.data.prepare_demo"
        raise FileNotFoundError(
            f"no dataset at {folder} (expected {folder}/raw from datasets.save_to_disk and duration.json); "
            f"prepare one with `{hint}` or set datasets.name/datasets.path"
        )
    return folder


@dataclass
class Item:
    mel: Tensor  # (n, m) log-mel
    text: str
    audio_path: str
    duration: float


class TTSDataset(Dataset):
    """Loads audio, computes the log-mel on the fly (deterministic, so worker count does not
    change results) and returns :class:`Item` rows."""

    def __init__(self, folder: str | os.PathLike, mel: MelConfig | None = None, min_duration: float = 0.3,
                 max_duration: float = 30.0) -> None:
        from datasets import load_from_disk

        self.folder = Path(folder)
        self.table = load_from_disk(str(self.folder / "raw"))
        missing = {"audio_path", "text"} - set(self.table.column_names)
        if missing:
            raise ValueError(f"{self.folder}/raw lacks columns {sorted(missing)}")
        dur_file = self.folder / "duration.json"
        if dur_file.is_file():
            durations = json.loads(dur_file.read_text())["duration"]
        else:
            durations = self.table["duration"]
        if len(durations) != len(self.table):
            raise ValueError(f"{dur_file} has {len(durations)} durations for {len(self.table)} rows")
        self.mel_config = mel or MelConfig()
        self.mel = MelSpectrogram(self.mel_config)
        # keep only items within the duration bounds; the sampler sees their frame counts
        self.index = [i for i, d in enumerate(durations) if min_duration <= d <= max_duration]
        if not self.index:
            raise ValueError(f"no item of {self.folder} lies within {min_duration}-{max_duration} s")
        fr = self.mel_config.frame_rate
        self.frame_lens = [int(durations[i] * fr) + 1 for i in self.index]
        self.durations = [float(durations[i]) for i in self.index]
        self.check_audio()

    def __len__(self) -> int:
        return len(self.index)

    def resolve(self, audio_path: str) -> Path:
        """A relative ``audio_path`` is looked up in the dataset folder (f5rl's ``prepare`` writes it so),
        then, as F5-TTS reads it, from the working directory (the F5-TTS RL README's option A/B scripts
        save ``data/mini_rl_custom/wavs/...``)."""
        p = Path(audio_path)
        if p.is_absolute():
            return p
        inside = self.folder / p
        if inside.is_file() or not p.is_file():
            return inside
        return p

    def check_audio(self) -> None:
        """The first kept row's audio file exists (a wrong layout fails here, not at the first batch)."""
        path = self.table[self.index[0]]["audio_path"]
        if not self.resolve(path).is_file():
            raise FileNotFoundError(
                f"{self.folder}/raw: audio_path {path!r} is neither in {self.folder} nor under the working "
                f"directory {Path.cwd()}; run from the folder the paths are relative to, or rewrite them")

    def __getitem__(self, i: int) -> Item:
        row = self.table[self.index[i]]
        audio = load_audio(self.resolve(row["audio_path"]), self.mel_config.sample_rate)
        with torch.no_grad():
            mel = self.mel(audio.unsqueeze(0))[0].T.contiguous()  # (n, m)
        return Item(mel, row["text"], row["audio_path"], self.durations[i])

"""Data: datasets in F5-TTS's layout, batch sampling, collation and corpus preparation."""

from f5rl.data.collate import Batch, Collate
from f5rl.data.dataset import Item, TTSDataset, dataset_dir
from f5rl.data.sampler import DynamicBatchSampler

__all__ = ["Batch", "Collate", "DynamicBatchSampler", "Item", "TTSDataset", "dataset_dir"]

"""Batch sampling by frames or samples, deterministic per epoch so a resumed run sees the same
batches in the same order.

* ``frame``: indices sorted by length are packed greedily into batches of at most
  ``batch_size`` frames and ``max_samples`` items (F5-TTS's dynamic batching); the order of the
  batches is shuffled each epoch with ``seed + epoch``.
* ``sample``: indices are shuffled each epoch and cut into batches of ``batch_size`` items.

``mini_repeat_count`` repeats every index of a batch consecutively (``[a, a, b, b]``) and
``repeat_count`` yields each batch that many times in a row (TRL's RepeatSampler layout, used to
form GRPO groups). With several processes each rank takes every ``num_replicas``-th batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class DynamicBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        frame_lens: Sequence[int],
        batch_size: int,
        batch_type: str = "frame",
        max_samples: int = 64,
        seed: int = 0,
        shuffle: bool = True,
        drop_residual: bool = False,
        repeat_count: int = 1,
        mini_repeat_count: int = 1,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_type not in ("frame", "sample"):
            raise ValueError(f"batch_size_type={batch_type!r}; use frame or sample")
        if repeat_count < 1 or mini_repeat_count < 1:
            raise ValueError("repeat_count and mini_repeat_count must be >= 1")
        self.frame_lens = list(frame_lens)
        self.batch_size, self.batch_type, self.max_samples = batch_size, batch_type, max_samples
        self.seed, self.shuffle, self.drop_residual = seed, shuffle, drop_residual
        self.repeat_count, self.mini_repeat_count = repeat_count, mini_repeat_count
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.skip = 0
        if batch_type == "frame":
            too_long = [n for n in self.frame_lens if n > batch_size]
            if len(too_long) == len(self.frame_lens):
                raise ValueError(
                    f"every item is longer than datasets.batch_size_per_gpu={batch_size} frames; raise it "
                    f"(longest item {max(self.frame_lens)} frames) or use batch_size_type=sample"
                )
            self._frame_batches = self._pack()

    def _pack(self) -> list[list[int]]:
        order = sorted(range(len(self.frame_lens)), key=lambda i: self.frame_lens[i])
        batches, cur, frames = [], [], 0
        for i in order:
            n = self.frame_lens[i]
            if n > self.batch_size:
                continue  # cannot fit alone; F5 drops these as well
            if cur and (frames + n > self.batch_size or len(cur) == self.max_samples):
                batches.append(cur)
                cur, frames = [], 0
            cur.append(i)
            frames += n
        if cur and not self.drop_residual:
            batches.append(cur)
        return batches

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` for this rank, before repeats."""
        rng = random.Random(self.seed + epoch)
        if self.batch_type == "frame":
            batches = [list(b) for b in self._frame_batches]
            if self.shuffle:
                rng.shuffle(batches)
        else:
            idx = list(range(len(self.frame_lens)))
            if self.shuffle:
                rng.shuffle(idx)
            batches = [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
            if self.drop_residual and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
        per_rank = len(batches) // self.num_replicas if self.num_replicas > 1 else len(batches)
        return batches[self.rank::self.num_replicas][:per_rank]

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Select the epoch; ``skip_batches`` yielded batches are skipped once (resume)."""
        self.epoch, self.skip = epoch, skip_batches

    def _expanded(self) -> Iterator[list[int]]:
        for batch in self.epoch_batches(self.epoch):
            batch = [i for i in batch for _ in range(self.mini_repeat_count)]
            for _ in range(self.repeat_count):
                yield batch

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for k, batch in enumerate(self._expanded()):
            if k >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.epoch_batches(self.epoch)) * self.repeat_count


def build_loader(dataset, collate, datasets, seed: int, num_replicas: int = 1, rank: int = 0):
    """The sampler (deterministic per epoch, sharded over ``num_replicas``) and the data loader of a
    dataset, from the config's ``datasets`` section. The loader draws from its own generator, so
    loading never touches the global RNG."""
    from torch.utils.data import DataLoader

    sampler = DynamicBatchSampler(dataset.frame_lens, datasets.batch_size_per_gpu, datasets.batch_size_type,
                                  datasets.max_samples, seed=seed, num_replicas=num_replicas, rank=rank)
    if len(sampler) == 0:
        raise ValueError("the batch sampler yields no batch: lower datasets.batch_size_per_gpu or add data")
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=datasets.num_workers,
                        generator=torch.Generator())
    return sampler, loader


def endless_batches(loader, sampler: DynamicBatchSampler, micro: int, device):
    """Batches from micro-batch ``micro`` on, epoch after epoch, on ``device``: where a resumed run
    continues (the sampler is deterministic per epoch and skips the batches already seen)."""
    n = len(sampler)
    while True:
        epoch, skip = divmod(micro, n)
        sampler.set_epoch(epoch, skip)
        for batch in loader:
            micro += 1
            yield batch.to(device)

"""Batches: the aspect-ratio grouped batch sampler and the train and eval loaders."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler

from studio.ml.data.dataset import SnapshotDataset


def collate(batch: list[tuple[Any, Any]]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Lists of images and targets: detection models take images of different sizes."""
    return tuple(zip(*batch, strict=True))  # type: ignore[return-value]


def aspect_ratio_groups(aspect_ratios: Sequence[float], k: int = 3) -> list[int]:
    """Group id per image: bins of width/height at 2**linspace(-1, 1, 2k+1), as in
    torchvision's references/detection/group_by_aspect_ratio.py."""
    bins = (2 ** np.linspace(-1, 1, 2 * k + 1)).tolist()
    return [bisect.bisect_right(bins, r) for r in aspect_ratios]


class GroupedBatchSampler(BatchSampler):
    """Batches whose images share an aspect-ratio group, so padding wastes little.

    Same idea as torchvision's references/detection GroupedBatchSampler, but every
    index of the base sampler is used once per epoch: after the full per-group batches,
    the leftovers are batched together. An epoch therefore has exactly
    ceil(len(sampler) / batch_size) batches, the same on every DDP rank, and the order
    depends only on the base sampler's epoch, so `skip(n)` can resume mid-epoch.

    With a `seed`, each index comes as (index, augmentation seed), the seed a function of
    `seed`, the epoch and the index only (`augmentation_seed`): SnapshotDataset then draws
    that image's augmentation from it, so that it does not depend on which DataLoader
    worker loads the image, nor on a resume, which restarts the workers.
    """

    def __init__(
        self,
        sampler: Sampler[int],
        group_ids: Sequence[int],
        batch_size: int,
        seed: int | None = None,
    ):
        self.sampler = sampler
        self.group_ids = list(group_ids)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def skip(self, n: int) -> None:
        """Leave out the first `n` batches of the next pass (they were trained on)."""
        self._skip = max(0, n)

    def full_len(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return max(0, self.full_len() - self._skip)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        for i, batch in enumerate(self._batches()):
            if i < skip:
                continue
            if self.seed is None:
                yield batch
            else:
                yield [(j, augmentation_seed(self.seed, self.epoch, j)) for j in batch]

    def _batches(self) -> Iterator[list[int]]:
        buffers: dict[int, list[int]] = defaultdict(list)
        for idx in self.sampler:
            g = self.group_ids[idx]
            buffers[g].append(idx)
            if len(buffers[g]) == self.batch_size:
                yield buffers.pop(g)
        rest = [i for g in sorted(buffers) for i in buffers[g]]
        for k in range(0, len(rest), self.batch_size):
            yield rest[k : k + self.batch_size]


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of image `index`'s augmentation in `epoch` of a run seeded with `seed`:
    distinct for every (seed, epoch, index) that a run can meet, and the same in every
    process."""
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % 2**63


def build_train_loader(
    dataset: SnapshotDataset,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    grouping: bool = True,
) -> tuple[DataLoader, GroupedBatchSampler]:
    """Shuffled, aspect-grouped loader. DistributedSampler shards the images across DDP
    ranks (with one rank it is just a seeded shuffle that `set_epoch` re-seeds)."""
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
    )
    groups = aspect_ratio_groups(dataset.aspect_ratios()) if grouping else [0] * len(dataset)
    batch_sampler = GroupedBatchSampler(sampler, groups, batch_size, seed=seed)
    loader = DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )
    return loader, batch_sampler


def same_size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices in batches of up to `batch_size` images of one size (w, h): the sizes in
    the order they first appear, each size's images in their order.

    torchvision's detectors pad a batch to its largest image, and what the network sees in
    the padding changes its output near an image's right and bottom edges: an image's
    predictions and AP would depend on which images it was batched with, and on the batch
    size. Batched only with images of its own size, an image gets the same output in any
    batch; grouped over the whole list (not only neighbours), mixed sizes still fill
    batches. Callers key outputs by image id."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(tuple(size), []).append(i)
    return [
        idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)
    ]


def build_eval_loader(
    dataset: SnapshotDataset, *, batch_size: int, workers: int, pin_memory: bool = False
) -> DataLoader:
    sizes = [(s.width, s.height) for s in dataset.samples]
    return DataLoader(
        dataset,
        batch_sampler=same_size_batches(sizes, max(batch_size, 1)),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
    )

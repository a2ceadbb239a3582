"""A plain torchvision detection training loop, the baseline of bench_train.py.

The essentials of torchvision's references/detection (engine.py `train_one_epoch`,
utils.py `MetricLogger.log_every`, presets.py `DetectionPresetTrain` with
data_augmentation="hflip", train.py's SGD): SGD with momentum 0.9, a linear warmup
(LambdaLR) in the first epoch, ``loss_dict = model(images, targets)``, sum, backward,
step; AMP (GradScaler) only when asked for on CUDA. Its own dataset (PIL decode, then
transforms v2) and a plain DataLoader with ``collate_fn=lambda b: tuple(zip(*b))``.

Two things are the benchmark's, not the reference's: `train_one_epoch` stops after
`max_iters` iterations and returns each iteration's time as log_every measures it (end
of the previous iteration to the end of this one, data loading included); and the
DataLoader's sampler is a one-replica DistributedSampler (a seeded shuffle, what the
references use under torchrun) so that its batches are the same as Studio's when fed
the same image list and seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import tv_tensors
from torchvision.transforms import v2 as T


@dataclass(slots=True)
class Item:
    """One training image: file, boxes xyxy in its pixels, labels 1..K."""

    image_id: int
    path: str
    boxes: list[list[float]]
    labels: list[int]


class DetectionDataset(Dataset):
    """As references/detection's CocoDetection + ConvertCocoPolysToMask: a PIL image and
    a target {"boxes", "labels", "image_id"}, then the transforms."""

    def __init__(self, items: Sequence[Item], transforms: Any = None):
        self.items = list(items)
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        it = self.items[index]
        img = Image.open(it.path).convert("RGB")
        w, h = img.size
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.as_tensor(it.boxes, dtype=torch.float32).reshape(-1, 4),
                format="XYXY",
                canvas_size=(h, w),
            ),
            "labels": torch.as_tensor(it.labels, dtype=torch.int64),
            "image_id": it.image_id,
        }
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target


def get_transform(train: bool, hflip_prob: float = 0.5) -> T.Compose:
    """presets.DetectionPresetTrain(data_augmentation="hflip", use_v2=True) for training,
    DetectionPresetEval otherwise."""
    ops: list[Any] = []
    if train and hflip_prob > 0:
        ops.append(T.RandomHorizontalFlip(p=hflip_prob))
    ops += [T.ToImage(), T.ToDtype(torch.float, scale=True)]
    if train:
        ops += [
            T.ConvertBoundingBoxFormat(tv_tensors.BoundingBoxFormat.XYXY),
            T.SanitizeBoundingBoxes(),
        ]
    ops.append(T.ToPureTensor())
    return T.Compose(ops)


def build_loader(
    dataset: Dataset, batch_size: int, workers: int, seed: int = 0
) -> tuple[DataLoader, DistributedSampler]:
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=lambda b: tuple(zip(*b)),  # noqa: B905 (as the references)
    )
    return loader, sampler


def make_optimizer(
    model: torch.nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 1e-4
) -> torch.optim.SGD:
    """train.py: SGD over the parameters that require grad (norm_weight_decay None)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def warmup_lr_scheduler(
    optimizer: torch.optim.Optimizer, warmup_iters: int, warmup_factor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    def f(x: int) -> float:
        if x >= warmup_iters:
            return 1.0
        alpha = float(x) / warmup_iters
        return warmup_factor * (1 - alpha) + alpha

    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)


@dataclass(slots=True)
class EpochLog:
    """Per iteration: images in the batch, seconds (log_every's iter_time), total loss."""

    images: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader,
    device: torch.device,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    max_iters: int | None = None,
) -> EpochLog:
    model.train()
    log = EpochLog()
    lr_scheduler = None
    if epoch == 0:
        warmup_factor = 1.0 / 1000
        warmup_iters = min(1000, len(data_loader) - 1)
        lr_scheduler = warmup_lr_scheduler(optimizer, max(1, warmup_iters), warmup_factor)

    end = time.perf_counter()
    for images, targets in data_loader:
        images = list(image.to(device) for image in images)
        targets = [
            {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()}
            for t in targets
        ]
        with torch.autocast(device.type, enabled=scaler is not None):
            loss_dict = model(images, targets)
            losses = sum(loss for loss in loss_dict.values())

        # (utils.reduce_dict is the identity in a single process.)
        loss_value = losses.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"Loss is {loss_value}, stopping training")

        optimizer.zero_grad()
        if scaler is not None:
            scaler.scale(losses).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            losses.backward()
            optimizer.step()

        if lr_scheduler is not None:
            lr_scheduler.step()

        # metric_logger.update(loss=..., **loss_dict_reduced): one .item() per term.
        _ = {k: v.item() for k, v in loss_dict.items()}
        _ = optimizer.param_groups[0]["lr"]

        now = time.perf_counter()
        log.images.append(len(images))
        log.seconds.append(now - end)
        log.losses.append(loss_value)
        end = now
        if max_iters is not None and len(log.seconds) >= max_iters:
            break
    return log


def make_adamw(model: torch.nn.Module, lr: float = 1e-3) -> torch.optim.AdamW:
    """The textbook fine-tuning optimizer: AdamW at PyTorch's defaults (lr 1e-3, weight
    decay 0.01) over the parameters that require grad; no schedule, no warmup."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)


def train_for(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    sampler: DistributedSampler,
    device: torch.device,
    marks: Sequence[float],
    at_mark: Any,
) -> int:
    """A plain loop (no schedule) that calls `at_mark(seconds, iterations)` each time its
    training time passes one of `marks` (seconds, ascending) and returns after the last.
    Only training counts: the time `at_mark` takes (evaluation) is not on the clock.
    Returns the iterations done."""
    marks = sorted(marks)
    trained, iters, epoch = 0.0, 0, 0
    while marks:
        sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        for images, targets in loader:
            images = [im.to(device) for im in images]
            targets = [
                {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()}
                for t in targets
            ]
            loss = sum(model(images, targets).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            iters += 1
            now = time.perf_counter()
            trained += now - t0
            t0 = now
            while marks and trained >= marks[0]:
                at_mark(marks.pop(0), iters)
                model.train()
                t0 = time.perf_counter()
            if not marks:
                break
        epoch += 1
    return iters

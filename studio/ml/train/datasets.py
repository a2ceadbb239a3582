"""A run's training and validation data: the snapshot's splits as datasets and loaders."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.utils.data import DataLoader

from studio.ml.data.dataset import SnapshotDataset, cache_fits
from studio.ml.data.loaders import GroupedBatchSampler, build_eval_loader, build_train_loader
from studio.ml.data.snapshot import DataReport, Snapshot
from studio.ml.data.transforms import build_transforms, load_max_side
from studio.ml.train.config import TrainConfig, default_workers
from studio.ml.train.distributed import DistInfo
from studio.ml.train.state import TrainingError


@dataclass(slots=True)
class TrainData:
    train_set: SnapshotDataset
    val_set: SnapshotDataset
    val_ids: list[int]  # database ids of the images evaluated after each epoch
    train_loader: DataLoader
    batch_sampler: GroupedBatchSampler  # set_epoch / skip for a mid-epoch resume
    val_loader: DataLoader
    report: DataReport
    warnings: list[str] = field(default_factory=list)

    @property
    def iters_per_epoch(self) -> int:
        return self.batch_sampler.full_len()


def prepare_data(snap: Snapshot, cfg: TrainConfig, task: str, dist: DistInfo) -> TrainData:
    """Datasets and loaders of resolved `cfg` for `task`, this rank's shard of the train
    images. Raises TrainingError when no train image is usable."""
    report = DataReport()
    warnings: list[str] = []
    train_ids, val_ids, note = snap.train_val_ids(cfg.val_fraction, cfg.seed)
    if note:
        warnings.append(note)
    train_samples = snap.samples(train_ids, task, report, training=True)
    val_samples = snap.samples(val_ids, task, report, training=False)
    if not train_samples:
        raise TrainingError(
            "no training images: put labelled images in the train split (images without "
            f"shapes count only when marked done){report.missing_note()}"
        )
    warnings += report.warnings()
    train_tf = build_transforms(
        task,
        True,
        image_size=cfg.image_size,
        scale_range=cfg.scale_range,
        hflip=cfg.hflip,
        color_jitter=cfg.color_jitter,
        hue=cfg.hue_jitter if cfg.hue_jitter is not None else dist.device.type == "cuda",
    )
    max_side = load_max_side(cfg.image_size, cfg.scale_range[1])
    train_set = SnapshotDataset(train_samples, task, train_tf, max_side)
    val_set = SnapshotDataset(
        val_samples, task, build_transforms(task, False), load_max_side(cfg.image_size)
    )
    cached = cfg.cache_images and cache_fits(train_set.decoded_bytes() + val_set.decoded_bytes())
    if cached:
        train_set.enable_cache()
        val_set.enable_cache()
    pin = dist.device.type == "cuda"
    workers = loader_workers(cfg.workers, dist.device.type, cached)
    train_loader, batch_sampler = build_train_loader(
        train_set,
        batch_size=cfg.batch_size,
        workers=workers,
        seed=cfg.seed,
        rank=dist.rank,
        world_size=dist.world_size,
        pin_memory=pin,
        grouping=cfg.aspect_ratio_grouping,
    )
    val_loader = build_eval_loader(
        val_set, batch_size=cfg.batch_size, workers=workers, pin_memory=pin
    )
    val_ids_kept = [s.image_id for s in val_samples]
    return TrainData(
        train_set, val_set, val_ids_kept, train_loader, batch_sampler, val_loader, report, warnings
    )


def loader_workers(asked: int | None, device_type: str, cached: bool) -> int:
    """DataLoader worker processes: as asked, else where they help. On a CPU, workers
    take cores from the training step itself, and with the images cached in memory a
    batch costs only its augmentation, so none; with a GPU the CPU is free to prepare
    batches ahead."""
    if asked is not None:
        return int(asked)
    if device_type == "cpu" and cached:
        return 0
    return default_workers()

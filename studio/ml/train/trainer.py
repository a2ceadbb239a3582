"""The training loop: one run folder in, checkpoints and messages out.

`train_run(run_dir)` reads only the run folder's ``config.json`` (a `TrainConfig`) and
``dataset.json`` (the frozen COCO snapshot), trains, evaluates after every epoch, and
writes ``last.pt`` / ``best.pt`` there. It reports through an `emit(message)` callback
(see messages.py) and asks `should_stop()` before every batch; it never prints and never
exits the process: problems are raised (`TrainingError` and other `StudioError`s for
the user, anything else is a bug).

The recipe follows torchvision's references/detection: AdamW (or SGD with momentum),
linear warmup then cosine decay per iteration, aspect-ratio grouped batches, gradient
clipping, AMP with GradScaler and channels_last on CUDA, and DistributedDataParallel when
started by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA, rank 0 evaluates,
writes checkpoints and emits messages.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from studio.core.errors import StudioError
from studio.ml.data.dataset import (
    SNAPSHOT_NAME,
    DataReport,
    Snapshot,
    SnapshotDataset,
    build_eval_loader,
    build_train_loader,
    build_transforms,
    load_max_side,
)
from studio.ml.evaluation.coco import evaluate_outputs, flatten_metrics, primary_metric, run_model
from studio.ml.models import build_model, param_groups
from studio.ml.train.config import CONFIG_NAME, TrainConfig
from studio.ml.train.messages import (
    CheckpointSaved,
    EpochMetrics,
    Finished,
    Iteration,
    Message,
    Notice,
    Started,
    Stopped,
)

LAST = "last.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = 1
Emit = Callable[[Message], None]


class TrainingError(StudioError):
    """Training cannot go on: diverged, no data, bad checkpoint."""


@dataclass(slots=True)
class TrainResult:
    status: str  # "finished" | "stopped"
    epoch: int  # epochs completed
    iteration: int
    best_metric: float | None
    best_metric_name: str | None
    reason: str = "completed"  # finished: "completed" | "time_budget" | "early_stopping"
    checkpoint: Path | None = None


# --- devices and processes -------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto": CUDA if available, else Apple's MPS, else the CPU. Raises StudioError when a
    named device is not available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StudioError("device cuda was asked for but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise StudioError("device mps was asked for but Apple's MPS is not available")
    return dev


@dataclass(frozen=True, slots=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False  # we created the process group, so we destroy it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join torchrun's process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA, each
    rank on GPU LOCAL_RANK); a plain single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=resolve_device(device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif dev.type == "mps":
        dev = torch.device("cpu")  # no MPS backend for collectives
    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        # Generous: rank 0 evaluates alone while the others wait at a barrier.
        dist.init_process_group(backend=backend, timeout=timedelta(hours=2))
        created = True
    return DistInfo(rank, world, local_rank, dev, created)


# --- models ----------------------------------------------------------------------------


@dataclass(slots=True)
class ModelBundle:
    """A built model and what training needs to know about it."""

    model: nn.Module
    task: str
    image_size: int | None
    groups: dict[str, list[nn.Parameter]]  # "backbone" / "neck" / "head"
    warnings: list[str]


def build_for_config(cfg: TrainConfig, num_classes: int, *, pretrained: bool = True) -> ModelBundle:
    """Build cfg.model for `num_classes` classes through the model registry, or through
    a "package.module:function" factory called like `build_model` (returning a
    BuiltModel, or a bare module when cfg.task names the task). `pretrained=False` skips
    the weights (a checkpoint's state dict is loaded over the model right after)."""
    weights = cfg.weights if pretrained else "none"
    backbone = cfg.backbone_weights if pretrained else "none"
    factory = build_model
    if ":" in cfg.model:
        mod_name, _, fn_name = cfg.model.partition(":")
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise StudioError(f"cannot import model factory {cfg.model!r}: {e}") from None
        name_args: tuple[Any, ...] = ()
    else:
        name_args = (cfg.model,)
    built = factory(
        *name_args,
        num_classes,
        weights=weights,
        backbone_weights=backbone,
        image_size=cfg.image_size,
        **dict(cfg.model_options),
    )
    if isinstance(built, nn.Module):
        if not cfg.task:
            raise StudioError(f"model factory {cfg.model!r} returns a bare module; set task")
        return ModelBundle(built, cfg.task, cfg.image_size, param_groups(built), [])
    size = getattr(built, "image_size", None) or cfg.image_size
    return ModelBundle(
        built.model, built.spec.task, size, param_groups(built.model), list(built.warnings)
    )


def build_with_state(
    cfg: TrainConfig, num_classes: int, state: dict[str, torch.Tensor]
) -> ModelBundle:
    """Rebuild a checkpoint's model and load its weights.

    Built as for training first (with the pretrained weights, which fixes details such as
    frozen BatchNorm layers), so the architecture matches exactly. If those weights are
    no longer available the model is built without them and loaded leniently: only
    BatchNorm's num_batches_tracked counters may differ."""
    try:
        bundle = build_for_config(cfg, num_classes, pretrained=True)
        bundle.model.load_state_dict(state)
        return bundle
    except (StudioError, RuntimeError):
        pass
    bundle = build_for_config(cfg, num_classes, pretrained=False)
    missing, unexpected = bundle.model.load_state_dict(state, strict=False)
    bad = [k for k in [*missing, *unexpected] if not k.endswith("num_batches_tracked")]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise StudioError(f"the checkpoint does not fit model {cfg.model}: {shown}")
    return bundle


# --- optimisation ----------------------------------------------------------------------


def make_param_groups(
    groups: dict[str, list[nn.Parameter]], lr: float, backbone_mult: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Optimizer groups per part (backbone at lr * backbone_mult, neck and head at lr),
    each split into decayed weights and undecayed biases / norm parameters (ndim <= 1),
    as torchvision's references do with --norm-weight-decay 0."""
    out = []
    seen: set[int] = set()
    for part in ("backbone", "neck", "head"):
        params = [p for p in groups.get(part, []) if id(p) not in seen]
        seen.update(id(p) for p in params)
        part_lr = lr * backbone_mult if part == "backbone" else lr
        for decay in (True, False):
            ps = [p for p in params if (p.ndim > 1) == decay]
            if ps:
                out.append(
                    {
                        "params": ps,
                        "lr": part_lr,
                        "initial_lr": part_lr,
                        "weight_decay": weight_decay if decay else 0.0,
                        "part": part,
                    }
                )
    return out


def make_optimizer(cfg: TrainConfig, param_groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(param_groups, lr=cfg.lr)


class WarmupCosine:
    """Per-iteration learning rate: linear warmup from `warmup_factor` x to 1 x over
    `warmup_iters`, then cosine decay to `min_ratio` x as `progress` goes 0 -> 1.

    Progress is given by the caller (fraction of planned iterations, or of the time
    budget), which a LambdaLR of the step count cannot express. Each group's base rate
    is its "initial_lr"."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_iters: int,
        warmup_factor: float,
        min_ratio: float = 0.0,
    ):
        self.optimizer = optimizer
        self.warmup_iters = max(0, warmup_iters)
        self.warmup_factor = warmup_factor
        self.min_ratio = min_ratio
        self.factor = 1.0
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])

    def factor_at(self, iteration: int, progress: float) -> float:
        if iteration < self.warmup_iters:
            a = iteration / self.warmup_iters
            return self.warmup_factor * (1 - a) + a
        p = min(max(progress, 0.0), 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * p))

    def step(self, iteration: int, progress: float) -> None:
        """Set the rates for optimizer step number `iteration` (0-based)."""
        self.factor = self.factor_at(iteration, progress)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.factor

    def state_dict(self) -> dict[str, Any]:
        return {
            "warmup_iters": self.warmup_iters,
            "warmup_factor": self.warmup_factor,
            "min_ratio": self.min_ratio,
            "factor": self.factor,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warmup_iters = int(state["warmup_iters"])
        self.warmup_factor = float(state["warmup_factor"])
        self.min_ratio = float(state["min_ratio"])
        self.factor = float(state["factor"])


# --- checkpoints -----------------------------------------------------------------------


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then os.replace: a crash mid-write leaves the
    previous checkpoint intact."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def copy_checkpoint(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a Studio checkpoint on the CPU, tensors and plain data only (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise StudioError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StudioError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise StudioError(f"{path}: not a Studio checkpoint")
    return ckpt


# --- the loop --------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _to_device(targets: Any, device: torch.device) -> list[dict[str, Any]]:
    return [
        {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
        for t in targets
    ]


def _set_frozen(params: list[nn.Parameter], frozen: bool) -> None:
    for p in params:
        p.requires_grad_(not frozen)


class _Trainer:
    """State of one training process; `train_run` is the public entry point."""

    def __init__(
        self,
        run_dir: Path,
        run_id: int,
        resume: bool,
        emit: Emit | None,
        should_stop: Callable[[], bool] | None,
    ):
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.resume = resume
        self._emit = emit
        self._should_stop = should_stop or (lambda: False)

    # --- helpers -------------------------------------------------------------------------

    def emit(self, msg: Message) -> None:
        if self._emit is not None and self.d.is_main:
            self._emit(msg)

    def _reduce_flags(self, *values: float) -> list[float]:
        """Sum over ranks (one collective per step: stop / non-finite / losses)."""
        if not self.d.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return t.tolist()

    def _agree(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (decisions taken from rank 0's evaluation)."""
        if not self.d.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _barrier(self) -> None:
        if self.d.distributed:
            dist.barrier()

    # --- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        cfg = TrainConfig.load(self.run_dir / CONFIG_NAME)
        cfg.validate()
        self.d = setup_distributed(cfg.device)
        self.device = self.d.device
        self.comm_device = self.device if self.device.type == "cuda" else torch.device("cpu")
        _seed_everything(cfg.seed + self.d.rank)

        snap = Snapshot.load(self.run_dir / SNAPSHOT_NAME)
        if snap.num_classes == 0:
            raise TrainingError("the project has no classes: add classes and label some images")
        self.snapshot = snap
        self.ckpt: dict[str, Any] | None = None
        last = self.run_dir / LAST
        warnings: list[str] = []
        if self.resume:
            if last.is_file():
                self.ckpt = load_checkpoint(last)
            else:
                warnings.append("no checkpoint to resume from: training starts over")

        if self.ckpt is not None:
            bundle = build_with_state(cfg, snap.num_classes, self.ckpt["model"])
        else:
            bundle = build_for_config(cfg, snap.num_classes)
        if cfg.task and cfg.task != bundle.task:
            raise TrainingError(f"model {cfg.model} is for {bundle.task}, not {cfg.task}")
        task = bundle.task
        if task != "detection" and not snap.has_masks():
            warnings.append(
                f"{cfg.model} learns masks but the dataset has only boxes: they are used as "
                "rectangular masks"
            )
        cfg = replace(cfg, task=task, image_size=bundle.image_size or cfg.image_size).resolved()
        self.cfg = cfg
        self.task = task
        warnings += bundle.warnings

        # --- data
        report = DataReport()
        train_ids, val_ids, note = snap.train_val_ids(cfg.val_fraction, cfg.seed)
        if note:
            warnings.append(note)
        train_samples = snap.samples(train_ids, task, report, training=True)
        val_samples = snap.samples(val_ids, task, report, training=False)
        if not train_samples:
            raise TrainingError(
                "no training images: put labelled images in the train split (images without "
                "shapes count only when marked done)"
            )
        self.report = report
        warnings += report.warnings()
        self.warnings = warnings
        max_side = load_max_side(cfg.image_size, cfg.scale_range[1])
        train_tf = build_transforms(
            task,
            True,
            image_size=cfg.image_size,
            scale_range=cfg.scale_range,
            hflip=cfg.hflip,
            color_jitter=cfg.color_jitter,
        )
        self.train_set = SnapshotDataset(train_samples, task, train_tf, max_side)
        self.val_set = SnapshotDataset(
            val_samples, task, build_transforms(task, False), load_max_side(cfg.image_size)
        )
        self.val_ids = [s.image_id for s in val_samples]
        pin = self.device.type == "cuda"
        workers = int(cfg.workers or 0)
        self.train_loader, self.batch_sampler = build_train_loader(
            self.train_set,
            batch_size=cfg.batch_size,
            workers=workers,
            seed=cfg.seed,
            rank=self.d.rank,
            world_size=self.d.world_size,
            pin_memory=pin,
            grouping=cfg.aspect_ratio_grouping,
        )
        self.val_loader = build_eval_loader(
            self.val_set, batch_size=cfg.batch_size, workers=workers, pin_memory=pin
        )
        self.iters_per_epoch = self.batch_sampler.full_len()

        # --- model and optimisation
        model = bundle.model
        model.to(self.device)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        if cfg.channels_last and self.device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        self.model = model
        # Only what was trainable as built gets frozen and unfrozen: torchvision freezes
        # some pretrained layers on purpose (trainable_backbone_layers).
        self.freezable = [p for p in bundle.groups.get("backbone", []) if p.requires_grad]
        ids = {id(p) for p in self.freezable}
        # BatchNorm layers of the backbone: frozen means their running statistics too.
        self.frozen_norms = [
            m
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and any(True for _ in m.parameters(recurse=False))
            and all(id(p) in ids for p in m.parameters(recurse=False))
        ]
        groups = make_param_groups(bundle.groups, cfg.lr, cfg.backbone_lr_mult, cfg.weight_decay)
        self.optimizer = make_optimizer(cfg, groups)
        self.head_group = next(
            (i for i, g in enumerate(self.optimizer.param_groups) if g["part"] == "head"), 0
        )
        total = cfg.epochs * self.iters_per_epoch if cfg.epochs else None
        warmup = cfg.warmup_iters
        warmup = min(warmup, total // 3) if total else min(warmup, self.iters_per_epoch)
        self.total_iters = total
        self.scheduler = WarmupCosine(self.optimizer, warmup, cfg.warmup_factor, cfg.min_lr_ratio)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

        # --- progress counters
        self.epoch = 0  # epoch in progress (0-based) == epochs completed before it
        self.epoch_step = 0  # batches of self.epoch already trained (mid-epoch resume)
        self.iteration = 0
        self.elapsed_before = 0.0  # seconds of earlier sessions of this run
        self.t0 = time.perf_counter()
        self.reason = ""  # why the run finished, once it has
        self.best_metric: float | None = None
        self.best_epoch = -1
        self.bad_epochs = 0
        self.metric_name = primary_metric(task)
        self.resumed_status = self.resumed_reason = ""
        if self.ckpt is not None:
            self._restore(self.ckpt)
            self.resumed_status = str(self.ckpt.get("status", ""))
            self.resumed_reason = str(self.ckpt.get("reason", ""))
            self.ckpt = None  # the state dicts are loaded: do not hold a second copy
        self.ddp: nn.Module = model

    def _restore(self, ckpt: dict[str, Any]) -> None:
        if ckpt.get("class_names") != self.snapshot.class_names:
            raise TrainingError("the checkpoint was trained on other classes than the dataset")
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as e:
            raise TrainingError(f"cannot resume: optimizer state does not fit ({e})") from e
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.epoch_step = int(ckpt.get("epoch_step", 0))
        self.iteration = int(ckpt["iteration"])
        self.elapsed_before = float(ckpt.get("elapsed", 0.0))
        self.reason = str(ckpt.get("reason", ""))
        self.best_metric = ckpt.get("best_metric")
        self.best_epoch = int(ckpt.get("best_epoch", -1))
        self.bad_epochs = int(ckpt.get("bad_epochs", 0))
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"])

    def _wrap(self) -> None:
        """(Re)wrap in DDP: it registers hooks for the parameters that require grad at
        wrap time, so unfreezing the backbone needs a new wrapper."""
        if not self.d.distributed:
            self.ddp = self.model
            return
        # The old wrapper's reducer must be gone (its destructor removes its autograd
        # hooks) before a new one hooks the same parameters.
        self.ddp = self.model
        gc.collect()
        ids = [self.d.local_rank] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # --- checkpoints ---------------------------------------------------------------------

    def _state(self, status: str) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else {},
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "status": status,
            "reason": self.reason,
            "best_metric": self.best_metric,
            "best_metric_name": self.metric_name,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "task": self.task,
            "image_size": self.cfg.image_size,
            "num_classes": self.snapshot.num_classes,
            "class_names": list(self.snapshot.class_names),
            "category_ids": list(self.snapshot.category_ids),
            "rng": torch.get_rng_state(),
        }

    def save(self, status: str, is_best: bool = False) -> Path:
        """Write last.pt (rank 0), and best.pt as its copy when this is the best."""
        last = self.run_dir / LAST
        if self.d.is_main:
            save_checkpoint(self._state(status), last)
            if is_best:
                copy_checkpoint(last, self.run_dir / BEST)
            self.emit(CheckpointSaved(str(last), self.epoch, is_best))
        return last

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Metrics on the val images (rank 0 only; the others wait)."""
        metrics: dict[str, float] = {}
        if self.d.is_main and len(self.val_set):
            pairs = run_model(self.model, self.val_loader, self.device, autocast=self.use_amp)
            res = evaluate_outputs(pairs, self.task, self.snapshot, self.val_ids)
            metrics = flatten_metrics(res.metrics)
        self._barrier()
        return metrics

    # --- training ------------------------------------------------------------------------

    def progress(self) -> float:
        """Fraction of the run done, for the cosine schedule (after warmup)."""
        p = 0.0
        w = self.scheduler.warmup_iters
        if self.total_iters:
            p = (self.iteration - w) / max(1, self.total_iters - w)
        if self.cfg.time_budget:
            p = max(p, self.elapsed / self.cfg.time_budget)
        return p

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds of this run so far, across resumes (for the time budget)."""
        return self.elapsed_before + time.perf_counter() - self.t0

    def _already_done(self) -> bool:
        """A resumed checkpoint that finished, and nothing asks for more epochs."""
        if self.resumed_status != "finished":
            return False
        epochs = self.cfg.epochs
        more = self.resumed_reason == "completed" and epochs is not None and self.epoch < epochs
        return not more

    def run(self) -> TrainResult:
        cfg = self.cfg
        self.t0 = time.perf_counter()
        self.emit(
            Started(
                run_id=self.run_id,
                num_train=len(self.train_set),
                num_val=len(self.val_set),
                warnings=list(self.warnings),
                data_report=self.report.to_dict(),
                epoch=self.epoch,
                iteration=self.iteration,
                epochs=cfg.epochs,
                iters_per_epoch=self.iters_per_epoch,
                device=str(self.device),
                model=cfg.model,
                task=self.task,
            )
        )
        if self._already_done():
            return self._finish(self.resumed_reason or "completed", saved=True)
        frozen = None
        nonfinite = 0
        while True:
            want_frozen = self.epoch < (cfg.freeze_epochs or 0) and bool(self.freezable)
            if want_frozen != frozen:
                _set_frozen(self.freezable, want_frozen)
                frozen = want_frozen
                self._wrap()
            self.batch_sampler.set_epoch(self.epoch)
            self.batch_sampler.skip(self.epoch_step)
            sums: dict[str, float] = {}
            n_sum = 0
            stop = out_of_time = False
            t_last = time.perf_counter()
            self.model.train()
            if frozen:
                for m in self.frozen_norms:
                    m.eval()
            for images, targets in self.train_loader:
                # One collective tells every rank about a stop request or the time budget,
                # so all ranks leave the loop at the same batch.
                local_stop = self._should_stop()
                local_time = bool(cfg.time_budget) and self.elapsed >= cfg.time_budget
                s, t = self._reduce_flags(float(local_stop), float(local_time))
                if s > 0:
                    stop = True
                    break
                if t > 0:
                    out_of_time = True
                    break
                losses = self._step(images, targets)
                now = time.perf_counter()
                dt = max(now - t_last, 1e-9)
                t_last = now
                self.epoch_step += 1
                if losses is None:
                    nonfinite += 1
                    self._nonfinite(nonfinite)
                    continue
                nonfinite = 0
                self.iteration += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                n_sum += 1
                self.emit(
                    Iteration(
                        epoch=self.epoch,
                        iteration=self.iteration,
                        losses=losses,
                        lr=float(self.optimizer.param_groups[self.head_group]["lr"]),
                        images_per_s=len(images) * self.d.world_size / dt,
                        step_in_epoch=self.epoch_step,
                        iters_per_epoch=self.iters_per_epoch,
                        gpu_memory_mb=(
                            torch.cuda.max_memory_allocated(self.device) / 2**20
                            if self.device.type == "cuda"
                            else None
                        ),
                    )
                )
            if stop:
                self.save("stopped")
                self.emit(Stopped(self.epoch, self.iteration))
                return self._result("stopped", "stopped")
            # The epoch is over (or the time budget ran out): evaluate and checkpoint.
            self.epoch += 1
            self.epoch_step = 0
            metrics = {f"train/{k}": v / n_sum for k, v in sums.items()} if n_sum else {}
            is_best = False
            last_epoch = out_of_time or (cfg.epochs is not None and self.epoch >= cfg.epochs)
            if len(self.val_set) and (self.epoch % cfg.eval_every == 0 or last_epoch):
                val = self.evaluate()
                metrics.update(val)
                value = val.get(self.metric_name)
                if value is not None and value >= 0:  # COCOeval gives -1 when undefined
                    if self.best_metric is None or value > self.best_metric + cfg.min_delta:
                        self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
                        is_best = True
                    else:
                        self.bad_epochs += 1
            name = self.metric_name if len(self.val_set) else None
            self.emit(EpochMetrics(self.epoch - 1, metrics, name, is_best))
            reason = None
            if out_of_time:
                reason = "time_budget"
            elif cfg.epochs is not None and self.epoch >= cfg.epochs:
                reason = "completed"
            elif cfg.patience is not None and self.bad_epochs >= cfg.patience:
                reason = "early_stopping"
            reason = self._agree(reason)  # only rank 0 evaluated
            self.reason = reason or ""
            self.save("finished" if reason else "running", is_best)
            if reason:
                return self._finish(reason, saved=True)

    def _nonfinite(self, count: int) -> None:
        """Report a skipped step; fail the run after cfg.max_nonfinite in a row."""
        self.emit(
            Notice(
                f"non-finite loss or gradient at epoch {self.epoch + 1}, iteration "
                f"{self.iteration + 1}: step skipped ({count} in a row)",
                self.epoch,
                self.iteration,
            )
        )
        if count >= self.cfg.max_nonfinite:
            raise TrainingError(
                f"the loss was not finite (nan or inf) for {count} iterations in a row "
                f"(epoch {self.epoch + 1}, iteration {self.iteration + 1}): training diverged. "
                "Lower the learning rate, check the labels for broken boxes, or start from "
                "pretrained weights."
            )

    def _finish(self, reason: str, saved: bool) -> TrainResult:
        best = self.run_dir / BEST
        if self.d.is_main:
            if not saved:
                self.reason = reason
                save_checkpoint(self._state("finished"), self.run_dir / LAST)
            if not best.is_file():  # no validation: the final weights are the result
                copy_checkpoint(self.run_dir / LAST, best)
        self._barrier()
        self.emit(
            Finished(
                self.best_metric,
                self.metric_name if self.best_metric is not None else None,
                self.epoch,
                reason,
                str(best),
            )
        )
        return self._result("finished", reason)

    def _result(self, status: str, reason: str) -> TrainResult:
        ckpt = self.run_dir / (BEST if status == "finished" else LAST)
        return TrainResult(
            status,
            self.epoch,
            self.iteration,
            self.best_metric,
            self.metric_name if self.best_metric is not None else None,
            reason,
            ckpt,
        )

    def _step(self, images: Any, targets: Any) -> dict[str, float] | None:
        """One optimizer step; the loss terms (averaged over ranks), or None when the loss
        was not finite on some rank and every rank skipped the step."""
        images = [im.to(self.device, non_blocking=True) for im in images]
        targets = _to_device(targets, self.device)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            loss_dict = self.ddp(images, targets)
        loss = sum(loss_dict.values())
        names = sorted(loss_dict)
        # One device-to-host copy for all terms and the total.
        values = torch.stack(
            [loss_dict[k].detach().float() for k in names] + [loss.detach().float()]
        )
        values = values.tolist()
        bad_local = not math.isfinite(values.pop())
        reduced = self._reduce_flags(float(bad_local), *values)
        bad = reduced[0] > 0
        self.optimizer.zero_grad(set_to_none=True)
        if bad:
            return None
        self.scheduler.step(self.iteration, self.progress())
        self.scaler.scale(loss).backward()
        if self.cfg.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad_norm)
            # A finite loss can still overflow in backward. With AMP, GradScaler skips
            # such steps itself (and lowers its scale: normal, not reported); without,
            # stepping would write inf/nan into the weights. DDP has averaged the
            # gradients, so every rank sees the same norm and decides alike.
            if not self.use_amp and not math.isfinite(float(norm)):
                self.optimizer.zero_grad(set_to_none=True)
                return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        n = self.d.world_size
        out = {k: v / n for k, v in zip(names, reduced[1:], strict=True)}
        out["loss"] = sum(out.values())
        return out

    def close(self) -> None:
        if getattr(self, "d", None) is not None and self.d.initialized_here:
            if dist.is_initialized():
                dist.destroy_process_group()


def train_run(
    run_dir: Path,
    *,
    run_id: int = 0,
    resume: bool = False,
    emit: Emit | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the run in `run_dir` (config.json + dataset.json) to the end, a stop request,
    the time budget or early stopping.

    emit: receives every `messages` message (rank 0 only under DDP).
    should_stop: polled before every batch; True saves last.pt and returns "stopped".
    resume: continue from last.pt (the same epoch and batch, optimizer and schedule).
    Raises TrainingError / StudioError for problems the user can fix.
    """
    trainer = _Trainer(Path(run_dir), run_id, resume, emit, should_stop)
    try:
        trainer.setup()
        return trainer.run()
    finally:
        trainer.close()

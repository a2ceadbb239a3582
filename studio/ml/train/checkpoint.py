"""Checkpoints: writing and reading a run's ``last.pt`` / ``best.pt``, rebuilding their model.

A checkpoint is a plain dict of tensors and built-in types (read back with
``weights_only=True``): the model, optimizer, scheduler and scaler states, the progress
counters (`TrainState`), the resolved config and the classes, so that a run resumes at
the same batch and a model can be used without the project.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import StudioError
from studio.ml.train.build import ModelBundle, build_for_config
from studio.ml.train.config import TrainConfig

if TYPE_CHECKING:
    from studio.ml.train.trainer import Trainer

LAST = "last.pt"
BEST = "best.pt"
CHECKPOINT_FORMAT = 1


class EvaluationAborted(Exception):
    """Raised through an evaluation that a callback aborted (Stop, the time budget)."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then os.replace: a crash mid-write leaves the
    previous checkpoint intact, and a failed write (disk full) leaves no .tmp behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as e:  # disk full, folder gone or read-only: say which file, in one line
        tmp.unlink(missing_ok=True)
        raise StudioError(f"{path}: cannot write the checkpoint: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy `src` to `dst` atomically (temporary file, then os.replace)."""
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StudioError(f"{dst}: cannot write the checkpoint: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def checkpoint_state(trainer: Trainer, status: str) -> dict[str, Any]:
    """Everything a checkpoint of `trainer`'s run holds, as built-in types and tensors."""
    opt, snap = trainer.opt, trainer.snapshot
    return {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.model.state_dict(),
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "scaler": opt.scaler.state_dict() if trainer.use_amp else {},
        **trainer.state.to_checkpoint(),
        "status": str(status),
        "best_metric_name": trainer.metric_name,
        "config": trainer.cfg.to_dict(),
        "model_name": trainer.cfg.model,
        "task": trainer.task,
        "image_size": trainer.cfg.image_size,
        "num_classes": snap.num_classes,
        "class_names": list(snap.class_names),
        "category_ids": list(snap.category_ids),
        "rng": torch.get_rng_state(),
    }

"""Checkpoints: writing and reading a run's ``last.pt`` / ``best.pt``, rebuilding their model.

A checkpoint is a plain dict of tensors and built-in types (read back with
``weights_only=True``): the model, optimizer, scheduler and scaler states, the progress
counters (`TrainState`), the resolved config and the classes, so that a run resumes at
the same batch and a model can be used without the project.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.ml.models.weights import load_failure
from studio.ml.train.build import ModelBundle, build_for_config
from studio.ml.train.config import TrainConfig
from studio.ml.train.state import TrainingError

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
    except RuntimeError as e:  # torch's zip writer says the same as a RuntimeError
        tmp.unlink(missing_ok=True)
        raise StudioError(f"{path}: cannot write the checkpoint: {_write_failure(e)}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_failure(exc: RuntimeError) -> str:
    """Why torch's zip writer failed, in words: "[enforce fail at inline_container.cc:747]
    . open file failed with strerror: Operation not permitted" (a read-only folder) or
    "unexpected pos 21433730 vs 21433684" (the disk filled up mid-write)."""
    text = str(exc)
    said = re.search(r"strerror:\s*(.+)", text)
    if said:
        return said.group(1).strip()
    if "unexpected pos" in text or "file write failed" in text:
        return "the write was cut short (is the disk full?)"
    return text.splitlines()[0] if text else type(exc).__name__


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
        raise StudioError(load_failure(path, e, "checkpoint")) from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise StudioError(f"{path}: not a Studio checkpoint")
    return ckpt


def checkpoint_image_size(path: Path) -> int | None:
    """The input size a checkpoint's model trained at, read without loading its tensors
    (memory-mapped); None when it records none. A damaged file is a StudioError (an
    analysis at another size would describe a model that was never trained)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise StudioError(load_failure(Path(path), e, "checkpoint")) from None
    size = ckpt.get("image_size") if isinstance(ckpt, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else None


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
        # With a weight average (ema.py), "model" is the average: what best.pt is used
        # for; the raw weights are what a resume trains on.
        "model": trainer.eval_model.state_dict(),
        **({"train_model": trainer.model.state_dict()} if trainer.ema is not None else {}),
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "scaler": opt.scaler.state_dict() if opt.scaler.is_enabled() else {},
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
        # Stopped mid-epoch: the state before the batch it did not train on.
        "rng": torch.get_rng_state()
        if status != RunStatus.STOPPED or trainer.batch_rng is None
        else trainer.batch_rng,
    }


def restore_trainer(trainer: Trainer, ckpt: dict[str, Any]) -> None:
    """Load `ckpt`'s optimizer, schedule, counters and weight average into `trainer`,
    whose model was rebuilt from it (`train_model` when it was averaged)."""
    if ckpt.get("class_names") != trainer.snapshot.class_names:
        raise TrainingError("the checkpoint was trained on other classes than the dataset")
    opt = trainer.opt
    try:
        opt.optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError) as e:
        raise TrainingError(f"cannot resume: optimizer state does not fit ({e})") from e
    opt.scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        opt.scaler.load_state_dict(ckpt["scaler"])
    trainer.state.restore(ckpt)
    if trainer.ema is not None and "train_model" in ckpt:
        trainer.ema.load_state_dict(ckpt["model"], trainer.state.iteration)
    # Set once the epoch's batch iterator exists (trainer.train_epoch): creating it draws
    # from torch's generator, which the interrupted run had done before this state.
    trainer.resume_rng = ckpt.get("rng")
    trainer.resumed_status = str(ckpt.get("status", ""))
    trainer.resumed_reason = str(ckpt.get("reason", ""))

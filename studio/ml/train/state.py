"""Where a training run stands: the counters a checkpoint keeps and the result it ends with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus


class TrainingError(StudioError):
    """Training cannot go on: diverged, no data, bad checkpoint."""


class FinishReason(StrEnum):
    """Why a run finished (the `reason` of `TrainResult`, `Finished` and checkpoints)."""

    COMPLETED = "completed"  # the planned epochs are done
    TIME_BUDGET = "time_budget"
    EARLY_STOPPING = "early_stopping"
    STOPPED = "stopped"  # not finished: stopped on request (status "stopped")


@dataclass(slots=True)
class TrainState:
    """Progress of a run, saved in every checkpoint and restored on resume."""

    epoch: int = 0  # epoch in progress (0-based) == epochs completed before it
    epoch_step: int = 0  # batches of `epoch` already trained (mid-epoch resume)
    iteration: int = 0  # optimizer steps done
    elapsed_before: float = 0.0  # seconds of earlier sessions of this run
    started_at: float = field(default_factory=time.perf_counter)  # this session, perf_counter
    reason: str = ""  # why the run finished, once it has (a FinishReason)
    best_metric: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0  # validations since the best one without enough improvement
    validation_owed: bool = False  # a Stop abandoned the last epoch's: a resume makes it

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds of this run so far, across resumes (for the time budget)."""
        return self.elapsed_before + time.perf_counter() - self.started_at

    def track_best(self, value: float | None, min_delta: float) -> bool:
        """Whether `value` of the primary metric is the best so far (by more than
        `min_delta`); counts the validations without improvement for early stopping."""
        if value is None or value < 0:  # COCOeval gives -1 when undefined
            return False
        if self.best_metric is None or value > self.best_metric + min_delta:
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "reason": str(self.reason),  # checkpoints hold built-in types only
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "validation_owed": self.validation_owed,
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Take the counters of a checkpoint written by `to_checkpoint`."""
        self.epoch = int(ckpt["epoch"])
        self.epoch_step = int(ckpt.get("epoch_step", 0))
        self.iteration = int(ckpt["iteration"])
        self.elapsed_before = float(ckpt.get("elapsed", 0.0))
        self.reason = str(ckpt.get("reason", ""))
        self.best_metric = ckpt.get("best_metric")
        self.best_epoch = int(ckpt.get("best_epoch", -1))
        self.bad_epochs = int(ckpt.get("bad_epochs", 0))
        self.validation_owed = bool(ckpt.get("validation_owed", False))


@dataclass(slots=True)
class TrainResult:
    status: str  # RunStatus.FINISHED | RunStatus.STOPPED
    epoch: int  # epochs completed
    iteration: int
    best_metric: float | None
    best_metric_name: str | None
    reason: str = FinishReason.COMPLETED  # a FinishReason; "stopped" when stopped
    checkpoint: Path | None = None


@dataclass(frozen=True, slots=True)
class EpochEnd:
    """What an epoch ended with, for the callbacks' `on_epoch_end` and `on_checkpoint`."""

    epoch: int  # 0-based index of the epoch that ended
    metrics: dict[str, float]  # "train/<loss>" means, and validation metrics when validated
    metric_name: str | None  # the metric that picks the best checkpoint; None: no validation
    is_best: bool  # validated and the best so far
    finish_reason: str = ""  # set once every rank agreed the run finishes here

    @property
    def status(self) -> RunStatus:
        return RunStatus.FINISHED if self.finish_reason else RunStatus.RUNNING

"""Callbacks: what happens around the training loop, each concern in one class.

The loop in trainer.py only trains, validates and keeps the counters; everything else
hooks in here: the messages a watcher sees (`ProgressMessages`), checkpoints
(`Checkpointing`), a fixed backbone freezing schedule (`FreezeBackbone`), early
stopping and stop requests; the time budget and the planned schedule are in schedule.py. A new feature (a warmup planned from the expected
iterations, a progressive unfreezing schedule, a time-budget planner) is a new class
passed to `train_run(callbacks=...)`, not an edit of the loop.

Hooks run in list order, on every rank (under DDP, `trainer.dist.is_main` tells rank
0; `trainer.emit` sends on rank 0 only). Order of a run:

    on_fit_start
    per epoch: on_epoch_start; per batch: should_stop, then on_iteration_end (or
        on_step_skipped); allow_validation, on_validation_start, should_abort_evaluation
        per val batch, on_validation_end (when validated); on_epoch_end; on_checkpoint
    on_checkpoint (stopped on request), on_fit_end
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from studio.core.kinds import RunStatus
from studio.ml.train.device import precision_name
from studio.ml.train.messages import (
    CheckpointSaved,
    EpochMetrics,
    Finished,
    Iteration,
    Notice,
    Started,
    Stopped,
)
from studio.ml.train.state import EpochEnd, FinishReason, TrainResult

if TYPE_CHECKING:
    from studio.ml.train.trainer import Trainer


@dataclass(frozen=True, slots=True)
class StopRequest:
    """What a callback's `should_stop` means: `interrupt` stops at once with a checkpoint
    to resume from (status "stopped"); otherwise the epoch ends early, is validated, and
    the run finishes with `reason`."""

    reason: str
    interrupt: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """One optimizer step, for `on_iteration_end`."""

    losses: dict[str, float]  # every loss term and "loss", averaged over ranks
    images: int  # images in this rank's batch
    seconds: float  # wall-clock time since the previous step


class Callback(Protocol):
    """Hooks around the loop; subclass it and override what you need (all are no-ops).

    `should_stop` is read before every batch on every rank; when it is True on any rank,
    every rank stops at the same batch as its `stop_request` says (interrupting requests
    first, then list order). `stop_request` must be the same on every rank."""

    stop_request: StopRequest = StopRequest(FinishReason.STOPPED, interrupt=True)

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def allow_validation(self, trainer: Trainer) -> bool:
        """Whether an evaluation due at this epoch's end may run (rank 0 decides; every
        callback must allow it). A finishing run's last evaluation is always made."""
        return True

    def should_abort_evaluation(self, trainer: Trainer) -> bool:
        """Read before every val batch on rank 0: True aborts the evaluation."""
        return False

    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def should_stop(self, trainer: Trainer) -> bool:
        return False

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None: ...

    def on_step_skipped(self, trainer: Trainer, in_a_row: int) -> None:
        """The loss or gradient was not finite and the step was skipped."""

    def on_validation_start(self, trainer: Trainer) -> None:
        """Before a validation (on rank 0, which alone validates)."""

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """After a validation; `metrics` is empty on ranks other than 0."""

    def on_epoch_end(self, trainer: Trainer, end: EpochEnd) -> None:
        """After training and validation of an epoch; `trainer.request_finish(reason)`
        ends the run here (rank 0's request counts)."""

    def on_checkpoint(self, trainer: Trainer, status: RunStatus, is_best: bool) -> None:
        """Time to save: after every epoch (status running, or finished once every rank
        agreed the run ends) and when stopped on request (status stopped)."""

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None: ...


class StopOnRequest(Callback):
    """Stops at the next batch when `requested()` says so (the Stop button, Ctrl-C)."""

    def __init__(self, requested: Callable[[], bool]):
        self.requested = requested

    def should_stop(self, trainer: Trainer) -> bool:
        return bool(self.requested())

    def should_abort_evaluation(self, trainer: Trainer) -> bool:
        return bool(self.requested())


class EarlyStopping(Callback):
    """Finishes the run once `patience` validations in a row brought no improvement
    larger than the config's min_delta (counted by the trainer as `state.bad_epochs`).
    A model that has found nothing yet (best metric 0) has not stopped improving: it
    has not started, which from scratch takes a while; its run goes on."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, end: EpochEnd) -> None:
        if not trainer.state.best_metric:
            return
        if trainer.state.bad_epochs >= self.patience:
            trainer.request_finish(FinishReason.EARLY_STOPPING)


class Checkpointing(Callback):
    """Writes last.pt at every checkpoint and best.pt as its copy for the best epoch; at
    the end of a run without validation the final weights become best.pt."""

    def on_checkpoint(self, trainer: Trainer, status: RunStatus, is_best: bool) -> None:
        path = trainer.save(status, is_best)
        trainer.emit(CheckpointSaved(str(path), trainer.state.epoch, is_best))

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        if result.status == RunStatus.FINISHED:
            trainer.ensure_best()


class FreezeBackbone(Callback):
    """Keeps the backbone frozen (weights and BatchNorm statistics) for the first
    `epochs` epochs, then trains it. Only what was trainable as built is frozen and
    unfrozen: torchvision freezes some pretrained layers on purpose."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.frozen: bool | None = None
        self.params: list[nn.Parameter] = []
        self.norms: list[nn.Module] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.params = [p for p in trainer.groups.get("backbone", []) if p.requires_grad]
        ids = {id(p) for p in self.params}
        # BatchNorm layers of the backbone: frozen means their running statistics too.
        self.norms = [
            m
            for m in trainer.model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and any(True for _ in m.parameters(recurse=False))
            and all(id(p) in ids for p in m.parameters(recurse=False))
        ]

    def on_epoch_start(self, trainer: Trainer) -> None:
        frozen = trainer.state.epoch < self.epochs and bool(self.params)
        if frozen != self.frozen:
            for p in self.params:
                p.requires_grad_(not frozen)
            self.frozen = frozen
            trainer.parameters_changed()
        if frozen:  # the loop has just put the model in train mode
            for m in self.norms:
                m.eval()


class ProgressMessages(Callback):
    """Turns the run's events into the typed messages of messages.py (rank 0 only)."""

    def on_fit_start(self, trainer: Trainer) -> None:
        cfg, data = trainer.cfg, trainer.data
        trainer.emit(
            Started(
                run_id=trainer.run_id,
                num_train=len(data.train_set),
                num_val=len(data.val_set),
                warnings=list(trainer.warnings),
                data_report=data.report.to_dict(),
                epoch=trainer.state.epoch,
                iteration=trainer.state.iteration,
                epochs=cfg.epochs,
                iters_per_epoch=data.iters_per_epoch,
                device=str(trainer.device),
                model=cfg.model,
                task=trainer.task,
                precision=precision_name(trainer.amp_dtype),
                elapsed=trainer.state.elapsed_before,
            )
        )

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None:
        device = trainer.device
        trainer.emit(
            Iteration(
                epoch=trainer.state.epoch,
                iteration=trainer.state.iteration,
                losses=step.losses,
                lr=trainer.head_lr,
                images_per_s=step.images * trainer.dist.world_size / max(step.seconds, 1e-9),
                step_in_epoch=trainer.state.epoch_step,
                iters_per_epoch=trainer.data.iters_per_epoch,
                gpu_memory_mb=(
                    torch.cuda.max_memory_allocated(device) / 2**20
                    if device.type == "cuda"
                    else None
                ),
            )
        )

    def on_step_skipped(self, trainer: Trainer, in_a_row: int) -> None:
        s = trainer.state
        trainer.emit(
            Notice(
                f"non-finite loss or gradient at epoch {s.epoch + 1}, iteration "
                f"{s.iteration + 1}: step skipped ({in_a_row} in a row)",
                s.epoch,
                s.iteration,
            )
        )

    def on_epoch_end(self, trainer: Trainer, end: EpochEnd) -> None:
        trainer.emit(EpochMetrics(end.epoch, end.metrics, end.metric_name, end.is_best))

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        if result.status == RunStatus.STOPPED:
            trainer.emit(Stopped(result.epoch, result.iteration))
            return
        trainer.emit(
            Finished(
                result.best_metric,
                result.best_metric_name,
                result.epoch,
                str(result.reason),
                str(trainer.best_path),
                result.iteration,
            )
        )

"""The training loop: one run folder in, checkpoints and messages out.

`train_run(run_dir)` reads only the run folder's ``config.json`` (a `TrainConfig`) and
``dataset.json`` (the frozen COCO snapshot), trains, evaluates, writes ``last.pt`` /
``best.pt`` there. It reports through an `emit(message)` callback
(see messages.py) and asks `should_stop()` before every batch; it never prints and never
exits the process: problems are raised (`TrainingError` and other `StudioError`s for
the user, anything else is a bug).

The recipe follows torchvision's references/detection (see optim.py), with AMP and
channels_last on CUDA, and DistributedDataParallel when started by torchrun (see
distributed.py). The model contract is torchvision's detection API: in train mode
``model(images, targets)`` returns a dict of losses, in eval mode a list of dicts.

`Trainer` keeps to the loop: `fit` / `train_epoch` / `validate` / `save`. Messages,
checkpoints, freezing, early stopping, the time budget, stops are callbacks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio.core.kinds import RunStatus
from studio.ml.data.snapshot import SNAPSHOT_NAME, Snapshot
from studio.ml.evaluation.coco import evaluate_outputs, flatten_metrics, primary_metric, run_model
from studio.ml.tasks import Task
from studio.ml.train.build import ModelBundle, build_for_config
from studio.ml.train.callbacks import Callback, Step, StopRequest
from studio.ml.train.checkpoint import (
    BEST,
    LAST,
    EvaluationAborted,
    build_with_state,
    checkpoint_state,
    copy_checkpoint,
    load_checkpoint,
    restore_trainer,
    save_checkpoint,
)
from studio.ml.train.config import CONFIG_NAME, TrainConfig
from studio.ml.train.datasets import prepare_data
from studio.ml.train.device import amp_dtype, resolve_device
from studio.ml.train.distributed import setup_distributed
from studio.ml.train.ema import WeightAverage
from studio.ml.train.messages import Message
from studio.ml.train.optim import build_optimization
from studio.ml.train.schedule import (
    auto_image_size,
    default_callbacks,
    trained_from_scratch,
    whole_model_pretrained,
)
from studio.ml.train.state import EpochEnd, FinishReason, TrainingError, TrainResult, TrainState

Emit = Callable[[Message], None]

__all__ = ["BEST", "LAST", "Trainer", "TrainingError", "TrainResult", "build_with_state",
           "load_checkpoint", "resolve_device", "setup_distributed", "train_run"]  # fmt: skip


def _to_device(targets: Any, device: torch.device) -> list[dict[str, Any]]:
    return [
        {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
        for t in targets
    ]


class Trainer:
    """One training process's run: `setup()`, then `fit()`; `close()` in any case."""

    def __init__(
        self, run_dir: Path, *, run_id: int = 0, resume: bool = False, emit: Emit | None = None
    ):
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.resume = resume
        self._emit = emit
        self.callbacks: list[Callback] = []
        self.state = TrainState()
        self._finish_reason = ""  # requested during the current epoch
        self._needs_wrap = True  # the DDP wrapper must be (re)built before the next batch
        self._nonfinite = 0  # skipped steps in a row
        self._interrupted = False  # a stop request aborted an evaluation
        self.last_validation_s = 0.0  # seconds of the last (or aborted) evaluation
        self.last_save_s = 0.0  # seconds of the last checkpoint write
        self.batch_rng: torch.Tensor | None = None  # torch's RNG before the current batch
        self.resume_rng: torch.Tensor | None = None  # the checkpoint's, set at the next epoch

    # --- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Read the run folder, build the model, the data and the optimizer; restore the
        checkpoint when resuming."""
        cfg = TrainConfig.load(self.run_dir / CONFIG_NAME)
        cfg.validate()
        self.dist = setup_distributed(cfg.device)
        self.device = self.dist.device
        random.seed(cfg.seed + self.dist.rank)
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.snapshot = Snapshot.load(self.run_dir / SNAPSHOT_NAME)
        if self.snapshot.num_classes == 0:
            raise TrainingError("the project has no classes: add classes and label some images")
        ckpt, warnings = self._resume_checkpoint()
        bundle = self._build_model(cfg, ckpt, warnings)
        self.data = prepare_data(self.snapshot, self.cfg, self.task, self.dist)
        self.warnings = warnings + bundle.warnings + self.data.warnings
        self.opt = build_optimization(
            self.cfg, bundle.groups, self.data.iters_per_epoch, self.amp_dtype == torch.float16
        )
        self.metric_name = primary_metric(self.task)
        self.resumed_status = self.resumed_reason = ""
        if ckpt is not None:
            restore_trainer(self, ckpt)  # state dicts loaded: ckpt is dropped after this

    def _resume_checkpoint(self) -> tuple[dict[str, Any] | None, list[str]]:
        last = self.run_dir / LAST
        if not self.resume:
            return None, []
        if last.is_file():
            return load_checkpoint(last), []
        return None, ["no checkpoint to resume from: training starts over"]

    def _build_model(
        self, cfg: TrainConfig, ckpt: dict[str, Any] | None, warnings: list[str]
    ) -> ModelBundle:
        """Build (or rebuild from `ckpt`) the model on the device; sets cfg (resolved) and
        task. Appends to `warnings` what the user should know."""
        n = self.snapshot.num_classes
        if cfg.image_size is None:  # Studio picks it (a resume: as it was picked)
            size = ckpt.get("image_size") if ckpt is not None else None
            size = size or auto_image_size(cfg, self.snapshot, self.device.type)
            cfg = replace(cfg, image_size=size)
        if ckpt is not None:  # the raw weights when they were averaged (ema.py)
            bundle = build_with_state(cfg, n, ckpt.get("train_model", ckpt["model"]))
        else:
            bundle = build_for_config(cfg, n)
        if cfg.task and cfg.task != bundle.task:
            raise TrainingError(f"model {cfg.model} is for {bundle.task}, not {cfg.task}")
        if bundle.task != Task.DETECTION and not self.snapshot.has_masks():
            warnings.append(
                f"{cfg.model} learns masks but the dataset has only boxes: they are used as "
                "rectangular masks"
            )
        # A plain string: the task goes into checkpoints, which hold built-in types only.
        self.task = str(bundle.task)
        size = bundle.image_size or cfg.image_size
        self.cfg = replace(cfg, task=self.task, image_size=size).resolved(
            pretrained_model=whole_model_pretrained(cfg, bundle.model),
            from_scratch=trained_from_scratch(cfg, bundle.model),
        )
        self.model = bundle.model.to(self.device)
        self.groups = bundle.groups
        self.amp_dtype = amp_dtype(self.device, self.cfg.amp)  # None: float32
        if self.cfg.channels_last and self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        self.ddp: nn.Module = self.model
        self.ema = WeightAverage(self.model) if self.cfg.ema else None
        return bundle

    # --- what callbacks use --------------------------------------------------------------

    def emit(self, msg: Message) -> None:
        """Send `msg` to the watcher (rank 0 only)."""
        if self._emit is not None and self.dist.is_main:
            self._emit(msg)

    def request_finish(self, reason: str) -> None:
        """Finish the run at the end of this epoch (the first request's reason counts)."""
        self._finish_reason = self._finish_reason or reason

    def parameters_changed(self) -> None:
        """Parameters were frozen or unfrozen: DDP needs a new wrapper before the next step."""
        self._needs_wrap = True

    @property
    def eval_model(self) -> nn.Module:
        """The weights validation measures and best.pt holds: their average, if kept."""
        return self.model if self.ema is None else self.ema.module

    @property
    def head_lr(self) -> float:
        return float(self.opt.optimizer.param_groups[self.opt.head_group]["lr"])

    @property
    def best_path(self) -> Path:
        return self.run_dir / BEST

    def _hook(self, name: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, name)(self, *args)

    # --- the loop ------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train to the end, a stop request, the time budget or early stopping."""
        # The clock started when the Trainer was made: the time budget counts the setup
        # (building the model, reading the data) too, as the user waits for it.
        self._hook("on_fit_start")
        if self._already_done():
            return self._end(RunStatus.FINISHED, self.resumed_reason or FinishReason.COMPLETED)
        if self.state.validation_owed:  # a Stop abandoned the last epoch's evaluation
            self._end_epoch_owed()
        while not self._interrupted:
            request = self.train_epoch()
            if request is not None and request.interrupt:
                break
            end = self._end_epoch(request)
            if self._interrupted:  # Stop pressed during the evaluation
                break
            self._hook("on_checkpoint", end.status, end.is_best)
            if end.finish_reason:
                return self._end(RunStatus.FINISHED, end.finish_reason)
        self._hook("on_checkpoint", RunStatus.STOPPED, False)
        return self._end(RunStatus.STOPPED, FinishReason.STOPPED)

    def _already_done(self) -> bool:
        """A resumed checkpoint that finished, and nothing asks for more epochs."""
        if self.resumed_status != RunStatus.FINISHED:
            return False
        epochs = self.cfg.epochs or 0  # more epochs asked of a run that completed its own
        return not (self.resumed_reason == FinishReason.COMPLETED and self.state.epoch < epochs)

    def train_epoch(self) -> StopRequest | None:
        """Train the rest of the current epoch; the stop request that cut it short, if any."""
        sampler = self.data.batch_sampler
        sampler.set_epoch(self.state.epoch)
        sampler.skip(self.state.epoch_step)
        self._loss_sums: dict[str, float] = {}
        self._loss_count = 0
        self.model.train()
        self._hook("on_epoch_start")
        if self._needs_wrap:
            self.ddp = self.model  # drop the old wrapper before building the new one
            self.ddp = self.dist.wrap(self.model)
            self._needs_wrap = False
        t_last = time.perf_counter()
        batches = iter(self.data.train_loader)
        if self.resume_rng is not None:  # see checkpoint.restore_trainer
            torch.set_rng_state(self.resume_rng)
            self.resume_rng = None
        while True:
            # The random state before this batch (augmentation has seeds of its own, ADR
            # 0010): a checkpoint at this stop keeps it, to draw this batch the same.
            self.batch_rng = torch.get_rng_state()
            images, targets = next(batches, (None, None))
            if images is None:
                break
            request = self._poll_stop()
            if request is not None:
                return request
            if self._needs_wrap:  # the schedule (un)froze parameters mid-epoch
                self.ddp = self.model
                self.ddp = self.dist.wrap(self.model)
                self._needs_wrap = False
            losses = self._step(images, targets)
            now = time.perf_counter()
            seconds, t_last = now - t_last, now
            self.state.epoch_step += 1
            if losses is None:
                self._skipped()
                continue
            self._nonfinite = 0
            self.state.iteration += 1
            for k, v in losses.items():
                self._loss_sums[k] = self._loss_sums.get(k, 0.0) + v
            self._loss_count += 1
            self._hook("on_iteration_end", Step(losses, len(images), seconds))
        return None

    def _poll_stop(self) -> StopRequest | None:
        """The callbacks' stop requests, agreed by every rank in one collective, so that
        all ranks leave the loop at the same batch."""
        if not self.callbacks:
            return None
        asked = self.dist.sum(*(float(cb.should_stop(self)) for cb in self.callbacks))
        requests = [cb.stop_request for cb, n in zip(self.callbacks, asked, strict=True) if n > 0]
        interrupts = [r for r in requests if r.interrupt]
        return (interrupts or requests or [None])[0]

    def _step(self, images: Any, targets: Any) -> dict[str, float] | None:
        """One optimizer step; the loss terms (averaged over ranks), or None when the loss
        was not finite on some rank and every rank skipped the step."""
        images = [im.to(self.device, non_blocking=True) for im in images]
        targets = _to_device(targets, self.device)
        amp = self.amp_dtype is not None
        with torch.autocast(self.device.type, self.amp_dtype, enabled=amp):
            loss_dict = self.ddp(images, targets)
        loss = sum(loss_dict.values())
        names = sorted(loss_dict)
        # One device-to-host copy for all terms and the total.
        values = torch.stack(
            [loss_dict[k].detach().float() for k in names] + [loss.detach().float()]
        ).tolist()
        bad_local = not math.isfinite(values.pop())
        reduced = self.dist.sum(float(bad_local), *values)
        opt = self.opt
        opt.optimizer.zero_grad(set_to_none=True)
        if reduced[0] > 0:
            return None
        opt.scheduler.step(self.state.iteration, self.progress())
        opt.scaler.scale(loss).backward()
        if self.cfg.clip_grad_norm:
            opt.scaler.unscale_(opt.optimizer)
            params = [p for g in opt.optimizer.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad_norm)
            # A finite loss can still overflow in backward. With float16 AMP, GradScaler
            # skips such steps itself (and lowers its scale: normal, not reported);
            # without it, stepping would write inf/nan into the weights. DDP has averaged
            # the gradients, so every rank sees the same norm and decides alike.
            if not opt.scaler.is_enabled() and not math.isfinite(float(norm)):
                opt.optimizer.zero_grad(set_to_none=True)
                return None
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        n = self.dist.world_size
        out = {k: v / n for k, v in zip(names, reduced[1:], strict=True)}
        out["loss"] = sum(out.values())
        return out

    def _skipped(self) -> None:
        """Report a skipped step; fail the run after cfg.max_nonfinite in a row."""
        self._nonfinite += 1
        count = self._nonfinite
        self._hook("on_step_skipped", count)
        if count >= self.cfg.max_nonfinite:
            s = self.state
            raise TrainingError(
                f"the loss was not finite (nan or inf) for {count} iterations in a row "
                f"(epoch {s.epoch + 1}, iteration {s.iteration + 1}): training diverged. "
                "Lower the learning rate, check the labels for broken boxes, or start from "
                "pretrained weights."
            )

    def progress(self) -> float:
        """Fraction of the run done after the warmup, for the cosine schedule: of the
        planned iterations (schedule.py re-plans them from the time budget), or of the
        time budget when nothing planned them."""
        w = self.opt.scheduler.warmup_iters
        total = self.opt.total_iters
        if total:
            return (self.state.iteration - w) / max(1, total - w)
        if self.cfg.time_budget:
            return self.state.elapsed / self.cfg.time_budget
        return 0.0

    # --- the end of an epoch -------------------------------------------------------------

    def _end_epoch(self, request: StopRequest | None) -> EpochEnd:
        """Close the epoch (also one cut short by a finishing request): validate when due,
        let the callbacks decide, and agree on every rank whether the run finishes."""
        s, cfg = self.state, self.cfg
        s.epoch += 1
        s.epoch_step = 0
        n = self._loss_count
        metrics = {f"train/{k}": v / n for k, v in self._loss_sums.items()} if n else {}
        if request is not None:
            self.request_finish(request.reason)
        if cfg.epochs is not None and s.epoch >= cfg.epochs:
            self.request_finish(FinishReason.COMPLETED)
        has_val = len(self.data.val_set) > 0
        is_best = False
        due = s.epoch % cfg.eval_every == 0 and self._validation_allowed()
        if has_val and (due or self._finish_reason):
            val, is_best = self._validate_epoch()
            metrics.update(val)
        end = EpochEnd(s.epoch - 1, metrics, self.metric_name if has_val else None, is_best)
        self._hook("on_epoch_end", end)
        reason = self.dist.agree(self._finish_reason or None)  # only rank 0 validated
        self._finish_reason = ""
        s.reason = reason or ""
        return replace(end, finish_reason=s.reason)

    def _validate_epoch(self) -> tuple[dict[str, float], bool]:
        """The epoch's metrics ({} when abandoned: owed if a Stop did it), and best?"""
        s = self.state
        val = self.validate()
        s.validation_owed = self._interrupted
        is_best = s.track_best(val.get(self.metric_name), self.cfg.min_delta)
        if val:
            self._hook("on_validation_end", val)
        return val, is_best

    def _end_epoch_owed(self) -> None:
        """Make (if the budget allows) the evaluation a Stop abandoned, as the last epoch's
        end: its AP point, its say on best.pt; abandoned again, it stays owed."""
        if not self._validation_allowed():
            self.state.validation_owed = False
            return
        val, is_best = self._validate_epoch()
        if val:
            end = EpochEnd(self.state.epoch - 1, val, self.metric_name, is_best)
            self._hook("on_epoch_end", end)
        if not self._interrupted:
            self._hook("on_checkpoint", RunStatus.RUNNING, is_best)

    def _validation_allowed(self) -> bool:
        """Whether every callback lets an evaluation due now run (rank 0 decides)."""
        ok = all(getattr(cb, "allow_validation", lambda t: True)(self) for cb in self.callbacks)
        return bool(self.dist.agree(ok))

    def validate(self) -> dict[str, float]:
        """Metrics on the val images (rank 0 only; the others wait and get {}). {} too
        when a callback aborted it (Stop, or a time budget about to be broken)."""
        metrics: dict[str, float] = {}
        t0 = time.perf_counter()
        if self.dist.is_main and len(self.data.val_set):
            self._hook("on_validation_start")
            batches = self._abortable(self.data.val_loader)
            pairs = run_model(self.eval_model, batches, self.device, autocast=self.amp_dtype)
            try:
                res = evaluate_outputs(pairs, self.task, self.snapshot, self.data.val_ids)
                metrics = flatten_metrics(res.metrics)
            except EvaluationAborted:
                metrics = {}
        self.last_validation_s = time.perf_counter() - t0
        self.dist.barrier()
        self._interrupted = bool(self.dist.agree(self._interrupted))
        return metrics

    def _abortable(self, loader: Any) -> Any:
        """`loader`'s batches, asking the callbacks before each whether to abort."""
        for batch in loader:
            for cb in self.callbacks:
                if getattr(cb, "should_abort_evaluation", lambda t: False)(self):
                    self._interrupted = cb.stop_request.interrupt
                    raise EvaluationAborted
            yield batch

    # --- checkpoints ---------------------------------------------------------------------

    def checkpoint_state(self, status: str) -> dict[str, Any]:
        """Everything a checkpoint holds (see checkpoint.py)."""
        return checkpoint_state(self, status)

    def save(self, status: str, is_best: bool = False) -> Path:
        """Write last.pt (rank 0), and best.pt as its copy when this is the best."""
        last = self.run_dir / LAST
        t0 = time.perf_counter()
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_state(status), last)
            if is_best:
                copy_checkpoint(last, self.best_path)
        self.last_save_s = time.perf_counter() - t0
        return last

    def ensure_best(self) -> None:
        """Without validation, the final weights are the result: best.pt = last.pt."""
        if self.dist.is_main and not self.best_path.is_file():
            copy_checkpoint(self.run_dir / LAST, self.best_path)

    def _end(self, status: RunStatus, reason: str) -> TrainResult:
        s = self.state
        has_best = s.best_metric is not None
        ckpt = self.best_path if status == RunStatus.FINISHED else self.run_dir / LAST
        metric = self.metric_name if has_best else None
        result = TrainResult(status, s.epoch, s.iteration, s.best_metric, metric, reason, ckpt)
        self._hook("on_fit_end", result)
        self.dist.barrier()
        return result

    def close(self) -> None:
        dist = getattr(self, "dist", None)  # None when setup failed before joining
        if dist is not None:
            dist.close()


def train_run(
    run_dir: Path,
    *,
    run_id: int = 0,
    resume: bool = False,
    emit: Emit | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train the run in `run_dir` (config.json + dataset.json) to the end, a stop request,
    the time budget or early stopping.

    emit: receives every `messages` message (rank 0 only under DDP).
    should_stop: polled before every batch; True saves last.pt and returns "stopped".
    resume: continue from last.pt (the same epoch and batch, optimizer and schedule).
    callbacks: run after the default ones (see callbacks.py).
    Raises TrainingError / StudioError for problems the user can fix.
    """
    trainer = Trainer(Path(run_dir), run_id=run_id, resume=resume, emit=emit)
    try:
        trainer.setup()
        trainer.callbacks = default_callbacks(trainer, should_stop) + list(callbacks)
        return trainer.fit()
    finally:
        trainer.close()

"""The schedule of a short run: planned from the iterations it is expected to get.

A run given a time budget does not know how many iterations it will get until it has
timed a few. `TimeBudget` times the steps and the evaluations, stops training early
enough for the last evaluation to fit in the budget, skips evaluations the budget cannot
pay for, and aborts one that would break it. `PlannedSchedule` re-plans the warmup, the
cosine decay and the progressive unfreezing of a pretrained backbone from the expected
number of iterations (`plan_schedule`), so that a 30-iteration run is not spent in a
200-iteration warmup with its backbone frozen.

Times are wall-clock seconds of the run (`TrainState.elapsed`, across resumes),
evaluation and checkpoints included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from studio.ml.data.sizing import choose_input_size, coco_object_sides, fits_square
from studio.ml.data.snapshot import Snapshot
from studio.ml.models import get_spec
from studio.ml.tasks import Task
from studio.ml.train.build import is_factory
from studio.ml.train.callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    FreezeBackbone,
    ProgressMessages,
    Step,
    StopOnRequest,
    StopRequest,
)
from studio.ml.train.config import SCRATCH_RESIZE_FROM, TrainConfig
from studio.ml.train.ema import AverageWeights
from studio.ml.train.resize import ProgressiveResize, resizing_transform
from studio.ml.train.state import EpochEnd, FinishReason
from studio.ml.train.threads import FitThreadsToFreeCores

if TYPE_CHECKING:
    from studio.ml.models.spec import ModelSpec
    from studio.ml.train.trainer import Trainer

# Progressive unfreezing, as fractions of the planned iterations: the heads learn on a
# frozen pretrained backbone first, then the deeper half of the backbone joins, then all.
UNFREEZE_DEEP_AT = 0.1
UNFREEZE_ALL_AT = 0.25
# Share of the time spent so far that evaluations between epochs may take (at 10% a
# 10-minute CPU run spent 70 s evaluating, 60 steps it did not train): the first
# (after the first epoch) is always made, for a best checkpoint early; later ones are
# paced by the time spent, so they spread over the run instead of crowding its start
# (where the model finds little); the one at the end is always made.
EVAL_SHARE = 0.05
# Evaluation in progress past budget x this is aborted: the promise is 10%.
ABORT_AT = 1.07
# Before any evaluation was timed: seconds per val image, as a share of the seconds per
# train image (forward only, but with post-processing), plus a fixed cost (COCOeval).
EVAL_PER_IMAGE_SHARE = 0.6
EVAL_FIXED_S = 1.0
SAVE_S = 1.0  # a checkpoint write, before one was timed


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """Iteration numbers (0-based optimizer steps) of a run's schedule."""

    total: int  # planned optimizer steps of the whole run
    warmup: int  # linear warmup over the first `warmup` steps
    unfreeze_deep: int  # the deeper half of a frozen backbone trains from this step on
    unfreeze_all: int  # the whole backbone trains from this step on


def plan_schedule(total: int, max_warmup: int, progressive: bool) -> SchedulePlan:
    """The schedule for `total` expected iterations: a warmup of at most a tenth of them
    (and at most `max_warmup`); with `progressive`, the backbone frozen during the first
    tenth (at least the warmup) and wholly trained from a quarter on."""
    total = max(1, int(total))
    warmup = max(0, min(int(max_warmup), total // 10))
    if not progressive:
        return SchedulePlan(total, warmup, 0, 0)
    deep = max(warmup, round(UNFREEZE_DEEP_AT * total))
    every = max(deep, round(UNFREEZE_ALL_AT * total))
    return SchedulePlan(total, warmup, deep, every)


class TimeBudget(Callback):
    """Keeps a run, evaluation included, within `seconds`.

    Training stops when the time left would not pay for another step, the final
    evaluation and the last checkpoint; evaluations between epochs happen only while
    they fit in EVAL_SHARE of the time spent (the first always); an evaluation still
    running at ABORT_AT x the budget is aborted (the run keeps its best checkpoint)."""

    stop_request = StopRequest(FinishReason.TIME_BUDGET)

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.step_s: float | None = None  # smoothed seconds per optimizer step
        self.image_s: float | None = None  # smoothed seconds per train image
        self.eval_s: float | None = None  # seconds of the last evaluation
        self.save_s = SAVE_S
        self.eval_spent = 0.0
        self._steps = 0

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None:
        self._steps += 1
        if self._steps == 1:  # the first step pays for warm-up allocations: not typical
            return
        a = 0.3 if self.step_s is not None else 1.0
        self.step_s = a * step.seconds + (1 - a) * (self.step_s or 0.0)
        per_image = step.seconds / max(1, step.images)
        self.image_s = a * per_image + (1 - a) * (self.image_s or 0.0)

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self.eval_s = trainer.last_validation_s
        self.eval_spent += trainer.last_validation_s

    def on_checkpoint(self, trainer: Trainer, status: object, is_best: bool) -> None:
        if trainer.last_save_s:
            self.save_s = trainer.last_save_s

    def expected_eval_s(self, trainer: Trainer) -> float:
        """Seconds the next evaluation is expected to take (0 without val images)."""
        n = len(trainer.data.val_set)
        if not n:
            return 0.0
        if self.eval_s is not None:
            return self.eval_s
        per_image = self.image_s if self.image_s is not None else 0.5
        return EVAL_FIXED_S + n * per_image * EVAL_PER_IMAGE_SHARE

    def training_left(self, trainer: Trainer) -> float:
        """Seconds of training left before the final evaluation and checkpoint."""
        reserve = self.expected_eval_s(trainer) + 2 * self.save_s
        return self.seconds - reserve - trainer.state.elapsed

    def expected_steps_left(self, trainer: Trainer) -> int | None:
        """Optimizer steps the budget still pays for; None until steps were timed."""
        if self.step_s is None:
            return None
        return max(0, math.floor(self.training_left(trainer) / self.step_s))

    def should_stop(self, trainer: Trainer) -> bool:
        # Half a step of slack: stopping a bit early costs less than ending late.
        return self.training_left(trainer) < 0.5 * (self.step_s or 0.0)

    def allow_validation(self, trainer: Trainer) -> bool:
        e = self.expected_eval_s(trainer)
        paid = EVAL_SHARE * (trainer.state.elapsed + e)
        fits = self.eval_spent == 0 or self.eval_spent + e <= paid
        # ... and the final evaluation must still fit after this one and some training.
        return fits and self.training_left(trainer) > e + (self.step_s or 0.0)

    def should_abort_evaluation(self, trainer: Trainer) -> bool:
        return trainer.state.elapsed > ABORT_AT * self.seconds


class PlannedSchedule(Callback):
    """Warmup, cosine decay and progressive unfreezing planned from the expected number
    of iterations: the epochs' when there is no time budget, otherwise the smaller of
    the epochs' and what the budget pays for at the measured speed (re-planned as the
    speed is measured; the warmup and unfreezing only move forward)."""

    def __init__(self, budget: TimeBudget | None, progressive: bool, max_warmup: int):
        self.budget = budget
        self.progressive = progressive
        self.max_warmup = max_warmup
        self.plan: SchedulePlan | None = None
        self.stage = -1  # 0 frozen, 1 deeper half trains, 2 all trains
        self.params: list[list[nn.Parameter]] = [[], []]  # earlier half, deeper half
        self.norms: list[list[nn.Module]] = [[], []]

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.progressive:
            self.params, self.norms = _backbone_halves(trainer)
            self.progressive = bool(self.params[0] or self.params[1])
        self._replan(trainer)

    def expected_total(self, trainer: Trainer) -> int:
        """Expected optimizer steps of the whole run."""
        cfg, s = trainer.cfg, trainer.state
        by_epochs = cfg.epochs * trainer.data.iters_per_epoch if cfg.epochs else None
        left = self.budget.expected_steps_left(trainer) if self.budget else None
        if left is None:
            # Not timed yet: a provisional plan of ten epochs (or the epochs').
            return by_epochs or 10 * trainer.data.iters_per_epoch
        by_time = s.iteration + left
        return min(by_time, by_epochs) if by_epochs else by_time

    def _replan(self, trainer: Trainer) -> None:
        # Rank 0's plan on every rank: the learning rates must be the same everywhere.
        total = int(trainer.dist.agree(self.expected_total(trainer)))
        plan = plan_schedule(total, self.max_warmup, self.progressive)
        old, it = self.plan, trainer.state.iteration
        if old is not None and it >= old.warmup:
            plan = _keep_past(plan, old, it)
        self.plan = plan
        trainer.opt.scheduler.warmup_iters = plan.warmup
        trainer.opt.total_iters = plan.total
        self._apply_stage(trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._apply_stage(trainer, norms_again=True)

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None:
        self._replan(trainer)

    def on_epoch_end(self, trainer: Trainer, end: EpochEnd) -> None:
        self._replan(trainer)

    def _apply_stage(self, trainer: Trainer, norms_again: bool = False) -> None:
        """Freeze or unfreeze the backbone's halves for the current iteration."""
        if not self.progressive or self.plan is None:
            return
        it = trainer.state.iteration
        stage = 0 if it < self.plan.unfreeze_deep else 1 if it < self.plan.unfreeze_all else 2
        stage = max(stage, self.stage)  # never freeze again what was trained
        if stage != self.stage:
            early, deep = self.params
            for p in early:
                p.requires_grad_(stage >= 2)
            for p in deep:
                p.requires_grad_(stage >= 1)
            self.stage = stage
            trainer.parameters_changed()
            norms_again = True
        if norms_again:  # the loop puts the model in train mode at every epoch
            frozen = (self.norms[0] if stage < 2 else []) + (self.norms[1] if stage < 1 else [])
            for m in frozen:
                m.eval()


def _keep_past(plan: SchedulePlan, old: SchedulePlan, it: int) -> SchedulePlan:
    """`plan`, but a warmup that is over stays as it was and unfreezing points already
    passed stay passed."""
    deep = old.unfreeze_deep if it >= old.unfreeze_deep else max(it, plan.unfreeze_deep)
    every = old.unfreeze_all if it >= old.unfreeze_all else max(it, deep, plan.unfreeze_all)
    return SchedulePlan(max(plan.total, it), old.warmup, deep, every)


def _backbone_halves(
    trainer: Trainer,
) -> tuple[list[list[nn.Parameter]], list[list[nn.Module]]]:
    """The backbone's trainable parameters split into the earlier and the deeper half
    (by registration order, which follows depth in torchvision's backbones), and the
    BatchNorm layers of each half (frozen means their running statistics too)."""
    params = [p for p in trainer.groups.get("backbone", []) if p.requires_grad]
    half = len(params) // 2
    halves = [params[:half], params[half:]]
    norms: list[list[nn.Module]] = [[], []]
    ids = [{id(p) for p in h} for h in halves]
    for m in trainer.model.modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        own = [id(p) for p in m.parameters(recurse=False)]
        for k in (0, 1):
            if own and all(i in ids[k] for i in own):
                norms[k].append(m)
    return halves, norms


def default_callbacks(trainer: Trainer, should_stop: Callable[[], bool] | None) -> list[Callback]:
    """The callbacks of every run, from its resolved config. Checkpointing comes before
    the messages, so that Finished names a best.pt that exists. A fixed freeze_epochs
    keeps the epoch-based freezing; otherwise a pretrained backbone is unfrozen
    progressively over the planned iterations."""
    cfg = trainer.cfg
    out: list[Callback] = []
    if should_stop is not None:
        out.append(StopOnRequest(should_stop))
    budget = TimeBudget(cfg.time_budget) if cfg.time_budget else None
    if budget is not None:
        out.append(budget)
    progressive = cfg.freeze_epochs is None and cfg.pretrained and loaded_pretrained(trainer.model)
    out.append(PlannedSchedule(budget, progressive, cfg.warmup_iters))
    if trainer.ema is not None:
        out.append(AverageWeights())
    if trainer.device.type == "cpu" and trainer.dist.world_size == 1:
        out.append(FitThreadsToFreeCores())
    start = cfg.resize_from
    if start is None:
        start = SCRATCH_RESIZE_FROM if trained_from_scratch(cfg, trainer.model) else 1.0
    if start < 1 and resizing_transform(trainer.model) is not None:
        out.append(ProgressiveResize(start, cfg.lr_decay_start))
    if cfg.freeze_epochs:
        out.append(FreezeBackbone(cfg.freeze_epochs))
    if cfg.patience is not None and not cfg.time_budget:
        # A budgeted run's schedule is planned to its end, where the decayed learning
        # rate gives its best model: stopping it early would skip exactly that.
        out.append(EarlyStopping(cfg.patience))
    out += [Checkpointing(), ProgressMessages()]
    return out


def loaded_pretrained(model: nn.Module) -> bool:
    """Whether the model's backbone holds pretrained weights. torchvision (and the
    composable detector) freeze BatchNorm exactly when they load them, and weights that
    could not be had fall back to random init: freezing a random backbone would waste
    the budget."""
    return any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())


def trained_from_scratch(cfg: TrainConfig, model: nn.Module) -> bool:
    """Whether the run starts from random init: no pretrained backbone was loaded (none
    asked for, none to be had, or a backbone made for scratch) and no weights file."""
    return not cfg.given_weights_files() and not loaded_pretrained(model)


def whole_model_pretrained(cfg: TrainConfig, model: nn.Module) -> bool:
    """Whether the whole detector (not only its backbone) starts from trained weights:
    a torchvision model with its COCO weights, or a weights file."""
    if cfg.weights == "none" or not loaded_pretrained(model):
        return False
    if cfg.weights != "default" or is_factory(cfg.model):
        return True
    return get_spec(cfg.model).family != "composable"


def sized_by_objects(spec: ModelSpec) -> bool:
    """Whether Studio picks this model's input size from the objects (a detector that
    resizes to a shorter side) when the config leaves it open."""
    return "min_size" in spec.resize and spec.task != Task.SEMANTIC_SEGMENTATION


def auto_image_size(cfg: TrainConfig, snapshot: Snapshot, device_type: str) -> int | None:
    """The input size for a config that leaves it to Studio: from the objects' sizes
    (data/sizing.py) for registry detectors that resize to a shorter side; None (the
    model's own size) for fixed-size models and factories of one's own."""
    if is_factory(cfg.model):
        return None
    spec = get_spec(cfg.model)
    if not sized_by_objects(spec):
        return None
    sides = coco_object_sides(snapshot.data, long_side=fits_square(spec.resize))
    return choose_input_size(sides, device_type, spec.default_image_size).size

"""An exponential moving average of the weights, evaluated and saved instead of them.

A short run on a CPU ends while the weights still move a lot from one step to the next
(small batches, a learning rate that has only just decayed); their average over the last
few dozen steps is a better model than the last step's (YOLOv5/v8 and timm's ModelEmaV2
evaluate such an average). torch's `AveragedModel` keeps the copy; the decay follows the
run's length: the average spans about `EMA_SPAN` of the iterations planned so far, and
ramps up from the first steps (`(1 + n) / (10 + n)`, as timm and TensorFlow do) so that
the early checkpoints are not averages with the random init.

The averaged copy is what validation measures and what ``best.pt`` holds ("model"); the
raw weights go into ``last.pt`` as "train_model", so a resumed run goes on training them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from studio.ml.train.callbacks import Callback, Step

if TYPE_CHECKING:
    from studio.ml.train.trainer import Trainer

# The average spans about this share of the planned iterations, within these bounds.
EMA_SPAN = 0.05
MIN_WINDOW, MAX_WINDOW = 10.0, 2000.0


def ema_decay(updates: int, planned: int | None) -> float:
    """Weight of the old average at update number `updates` (0-based) of a run planned
    for `planned` iterations (None: not known yet, the longest window)."""
    window = MAX_WINDOW if not planned else min(MAX_WINDOW, max(MIN_WINDOW, EMA_SPAN * planned))
    return min(1.0 - 1.0 / window, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """The averaged copy of a model (parameters and buffers, so BatchNorm statistics are
    those of the averaged weights' inputs, approximately), updated after each step."""

    def __init__(self, model: nn.Module):
        self.planned: int | None = None
        self.updates = 0  # counted here: reading AveragedModel's tensor would sync a GPU
        self.averaged = AveragedModel(model, multi_avg_fn=self._lerp, use_buffers=True)
        self.averaged.eval()

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    def _lerp(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n) -> None:
        decay = ema_decay(self.updates, self.planned)
        # AveragedModel groups tensors by dtype: one group of floats, or of counters
        # (BatchNorm's num_batches_tracked), which are copied.
        if averaged and averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, 1.0 - decay)
        else:
            torch._foreach_copy_(averaged, current)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)
        self.updates += 1

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state)
        self.averaged.n_averaged.fill_(updates)
        self.updates = updates


class AverageWeights(Callback):
    """Updates the trainer's `WeightAverage` after each optimizer step, its window
    planned from the iterations the schedule expects (`opt.total_iters`, re-planned by
    `PlannedSchedule`, which runs before it)."""

    def on_iteration_end(self, trainer: Trainer, step: Step) -> None:
        ema = trainer.ema
        if ema is not None:
            ema.planned = int(trainer.opt.total_iters or 0) or None
            ema.update(trainer.model)

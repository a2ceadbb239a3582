"""Progressive resizing: a run from scratch starts on smaller inputs and grows them.

A step's cost grows with the pixels it sees (on this 2-core CPU, the demo detector's
step of 8 images took 0.65x the time at 264 px as at 352 px). Early in a run from
random init the network learns edges, colours and coarse shapes, which small inputs
teach as well; the fine detail of small objects only pays once those are learned. So
the input is scaled by `resize_from` at first and grows linearly to the full size by
the time the learning rate starts to decay (`lr_decay_start`): the decay, the weight
average and every evaluation see full-size inputs. EfficientNetV2's "progressive
learning" and fast.ai's progressive resizing do the same for classifiers. Measurements:
docs/adr/0009-progressive-resizing.md.

Only models that resize their inputs themselves to a shorter side (torchvision's
detectors: `model.transform.min_size` and `max_size`) are resized; both are scaled by the
same factor, the shorter side kept a multiple of 32, the coarsest stride of their
feature maps. Progress is the learning-rate schedule's (`WarmupCosine.progress`: never
goes back, the same on every rank, kept in checkpoints), so the inputs never shrink
again and reach the full size exactly when the decay starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.ml.data.sizing import scaled_side
from studio.ml.train.callbacks import Callback

if TYPE_CHECKING:
    from torch import nn

    from studio.ml.train.trainer import Trainer

# A run from random init starts at config.SCRATCH_RESIZE_FROM of the input side;
# pretrained backbones start at full size: their features were learned there.
# Progress at which the full size is reached when the learning rate decays over the
# whole run (lr_decay_start 0).
FULL_AT_DEFAULT = 0.75


def resizing_transform(model: nn.Module) -> Any | None:
    """The model's own input resizer to a shorter side (torchvision's
    GeneralizedRCNNTransform), if it has one; None for fixed-size inputs (SSD)."""
    t = getattr(model, "transform", None)
    sizes = getattr(t, "min_size", None)
    if getattr(t, "fixed_size", None) is not None or not hasattr(t, "max_size"):
        return None
    return t if isinstance(sizes, tuple | list) and sizes else None


def scale_at(start: float, full_at: float, progress: float) -> float:
    """The input scale at `progress` (0..1 of the run): `start` at 0, growing linearly
    to 1 at `full_at`."""
    share = 1.0 if full_at <= 0 else min(1.0, max(0.0, progress) / full_at)
    return start + (1.0 - start) * share


class ProgressiveResize(Callback):
    """Sets the model's training input size before each step from the run's progress.
    Validation and the end of the run get the full size back."""

    def __init__(self, start: float, full_at: float):
        self.start = start
        self.full_at = full_at if full_at > 0 else FULL_AT_DEFAULT
        self.transform: Any | None = None
        self.full: tuple[tuple[int, ...], int] = ((), 0)  # (min_size, max_size)
        self.progress = 0.0  # the furthest progress seen

    def on_fit_start(self, trainer: Trainer) -> None:
        self.transform = resizing_transform(trainer.model)
        if self.transform is not None:
            self.full = (tuple(self.transform.min_size), int(self.transform.max_size))
            self._apply(trainer)

    def _apply(self, trainer: Trainer) -> None:
        if self.transform is None:
            return
        # The schedule's progress never goes back; the latch keeps that true here even
        # if a schedule's did (the inputs must not shrink once grown).
        self.progress = max(self.progress, trainer.opt.scheduler.progress)
        scale = scale_at(self.start, self.full_at, self.progress)
        if scale >= 1.0:
            self._restore()
            return
        sides, longest = self.full
        small = tuple(scaled_side(s, scale) for s in sides)
        self.transform.min_size = small
        self.transform.max_size = max(1, round(longest * small[-1] / sides[-1]))

    def _restore(self) -> None:
        if self.transform is not None:
            self.transform.min_size, self.transform.max_size = self.full

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._apply(trainer)

    def on_iteration_end(self, trainer: Trainer, step: object) -> None:
        self._apply(trainer)  # for the next step

    def on_validation_start(self, trainer: Trainer) -> None:
        self._restore()

    def on_fit_end(self, trainer: Trainer, result: object) -> None:
        self._restore()

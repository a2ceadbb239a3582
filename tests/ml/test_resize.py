"""Progressive resizing (resize.py): a run from scratch trains on smaller inputs first and
reaches the full size by the learning-rate decay; validation always sees the full size."""

from __future__ import annotations

import pytest

from studio.ml.run.process import create_run
from studio.ml.train.callbacks import Callback
from studio.ml.train.config import TrainConfig
from studio.ml.train.resize import SCRATCH_RESIZE_FROM, side_at
from studio.ml.train.trainer import train_run
from tests.ml.conftest import IMAGE_SIZE, tiny_config


def test_side_grows_from_the_start_share_to_full_by_the_decay():
    sides = [side_at(352, 0.625, 0.75, p / 100) for p in range(101)]
    assert sides[0] == 224  # 0.625 x 352 = 220, to the nearest multiple of 32
    assert sides == sorted(sides)  # never shrinks
    assert all(s % 32 == 0 for s in sides)
    assert set(sides[75:]) == {352}  # full size from the decay on
    assert 60 <= sides.index(352) <= 75  # to the nearest multiple of 32: a little early
    assert side_at(352, 1.0, 0.75, 0.0) == 352  # 1: off
    assert side_at(40, 0.1, 0.75, 0.0) == 32  # never under the coarsest stride
    assert side_at(352, 0.625, 0.0, 0.0) == 352  # full_at 0: full at once


def test_resize_from_must_be_a_share():
    with pytest.raises(Exception, match="resize_from"):
        TrainConfig(resize_from=0.0).validate()
    with pytest.raises(Exception, match="resize_from"):
        TrainConfig(resize_from=1.5).validate()


class _Sides(Callback):
    """The model's training input side before each step, and at each validation."""

    def __init__(self):
        self.train: list[int] = []
        self.val: list[tuple[int, ...]] = []

    def should_stop(self, trainer) -> bool:
        self.train.append(max(trainer.model.transform.min_size))
        return False

    def on_validation_start(self, trainer) -> None:
        self.val.append(tuple(trainer.model.transform.min_size))


def test_a_run_from_scratch_grows_its_inputs_and_validates_at_full_size(project):
    # The tiny detector resizes to 96 px; from scratch it starts at 0.625 x 96 = 64 px.
    # Without the average, validation runs the trained model itself: it must be restored.
    sides = _Sides()
    run = create_run(project, tiny_config(epochs=4, ema=False))
    train_run(run.dir, callbacks=[sides])
    first = side_at(IMAGE_SIZE, SCRATCH_RESIZE_FROM, 0.75, 0.0)
    assert sides.train[0] == first == 64
    assert sides.train == sorted(sides.train) and sides.train[-1] == IMAGE_SIZE
    assert len(set(sides.train)) > 1
    assert sides.val and set(sides.val) == {(IMAGE_SIZE,)}


def test_off_on_request_and_for_pretrained_weights(project):
    sides = _Sides()
    train_run(create_run(project, tiny_config(epochs=1, resize_from=1.0)).dir, callbacks=[sides])
    assert set(sides.train) == {IMAGE_SIZE}
    # A weights file means pretrained: the default keeps the full size.
    sides = _Sides()
    cfg = tiny_config(epochs=1)
    run = create_run(project, cfg)
    import torch

    from tests.ml.conftest import tiny_detector

    path = run.dir.parent / "tiny_weights.pt"
    torch.save(tiny_detector(len(project.classes()) + 1).model.state_dict(), path)
    run2 = create_run(project, tiny_config(epochs=1, weights=str(path)))
    train_run(run2.dir, callbacks=[sides])
    assert set(sides.train) == {IMAGE_SIZE}

"""Progressive resizing (resize.py): a run from scratch trains on smaller inputs first and
reaches the full size by the learning-rate decay; validation always sees the full size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from studio.ml.data.sizing import scaled_side
from studio.ml.run.process import create_run
from studio.ml.train.callbacks import Callback
from studio.ml.train.config import SCRATCH_RESIZE_FROM, TrainConfig
from studio.ml.train.resize import ProgressiveResize, scale_at
from studio.ml.train.trainer import train_run
from tests.ml.conftest import IMAGE_SIZE, tiny_config, tiny_detector


def test_scale_grows_from_the_start_share_to_full_by_the_decay():
    scales = [scale_at(0.625, 0.75, p / 100) for p in range(101)]
    assert scales[0] == 0.625 and scales == sorted(scales)
    assert set(scales[75:]) == {1.0} and scales[74] < 1.0
    assert scale_at(0.625, 0.0, 0.0) == 1.0  # full_at 0: full at once
    sides = [scaled_side(352, s) for s in scales]
    assert sides[0] == 224  # 0.625 x 352 = 220, to the nearest multiple of 32
    assert all(s % 32 == 0 for s in sides) and sides == sorted(sides)
    assert scaled_side(400, 1.0) == 400  # the full side as given, not rounded
    assert scaled_side(40, 0.1) == 32  # never under the coarsest stride


def test_resize_from_must_be_a_share():
    with pytest.raises(Exception, match="resize_from"):
        TrainConfig(resize_from=0.0).validate()
    with pytest.raises(Exception, match="resize_from"):
        TrainConfig(resize_from=1.5).validate()


def _stub(min_size: tuple[int, ...], max_size: int) -> SimpleNamespace:
    transform = SimpleNamespace(min_size=min_size, max_size=max_size, fixed_size=None)
    return SimpleNamespace(
        model=SimpleNamespace(transform=transform),
        opt=SimpleNamespace(scheduler=SimpleNamespace(progress=0.0)),
    )


def test_both_limits_shrink_and_the_full_sizes_come_back_exactly():
    # A detector that caps both sides at 352 (the CPU detector): scaling only the
    # shorter side would leave the longer side's cap, and 4:3 images at full size.
    t = _stub((352,), 352)
    cb = ProgressiveResize(0.625, 0.75)
    cb.on_fit_start(t)
    assert (t.model.transform.min_size, t.model.transform.max_size) == ((224,), 224)
    # Multi-scale sizes (a tuple) and sides that are no multiple of 32 come back as given.
    t = _stub((300, 400), 500)
    cb = ProgressiveResize(0.625, 0.75)
    cb.on_fit_start(t)
    assert t.model.transform.min_size == (192, 256)
    t.opt.scheduler.progress = 0.8
    cb.on_iteration_end(t, None)
    assert (t.model.transform.min_size, t.model.transform.max_size) == ((300, 400), 500)
    t.opt.scheduler.progress = 0.1  # progress never goes back, nor do the sizes
    cb.on_iteration_end(t, None)
    assert (t.model.transform.min_size, t.model.transform.max_size) == ((300, 400), 500)


class _Inputs(Callback):
    """The longer side of the first image the model's transform hands to the network,
    per training step and per evaluation batch (of the model that validates)."""

    def __init__(self):
        self.train: list[int] = []
        self.val: list[int] = []

    def on_fit_start(self, trainer) -> None:
        def hook(module, args, out):
            h, w = out[0].image_sizes[0]
            (self.train if module.training else self.val).append(max(h, w))

        for model in {id(m): m for m in (trainer.model, trainer.eval_model)}.values():
            model.transform.register_forward_hook(hook)


@pytest.mark.parametrize("ema", [False, True])
def test_a_run_from_scratch_grows_its_inputs_and_validates_at_full_size(project, ema):
    # The tiny detector capped like the CPU detector: both sides at most 96 px, so the
    # demo's landscape images come in 96 px long. From scratch it starts at 0.625 x 96 =
    # 60 -> 64 px: 64 px long (with the longer side's cap left at 96, 85 px).
    seen = _Inputs()
    cfg = tiny_config(epochs=4, ema=ema, model_options={"max_size": IMAGE_SIZE})
    train_run(create_run(project, cfg).dir, callbacks=[seen])
    assert seen.val and set(seen.val) == {IMAGE_SIZE}  # every evaluation at the full size
    assert seen.train[0] == 64
    assert seen.train == sorted(seen.train) and seen.train[-1] == IMAGE_SIZE
    assert SCRATCH_RESIZE_FROM == 0.625


def test_off_on_request_and_for_pretrained_weights(project, tmp_path):
    capped = {"max_size": IMAGE_SIZE}  # every landscape input then comes in 96 px long
    seen = _Inputs()
    cfg = tiny_config(epochs=1, resize_from=1.0, model_options=capped)
    train_run(create_run(project, cfg).dir, callbacks=[seen])
    assert set(seen.train) == {IMAGE_SIZE}
    # A weights file means pretrained: the default keeps the full size.
    path = tmp_path / "tiny_weights.pt"
    torch.save(tiny_detector(len(project.classes()) + 1).model.state_dict(), path)
    seen = _Inputs()
    cfg = tiny_config(epochs=1, weights=str(path), model_options=capped)
    train_run(create_run(project, cfg).dir, callbacks=[seen])
    assert set(seen.train) == {IMAGE_SIZE}

"""The weight average (ema.py): its decay follows the plan, it is what best.pt holds,
and a stopped run resumes it as if it had never stopped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from studio.ml.run.process import create_run
from studio.ml.train.callbacks import Callback
from studio.ml.train.ema import WeightAverage, ema_decay
from studio.ml.train.messages import Iteration
from studio.ml.train.trainer import BEST, LAST, load_checkpoint, train_run
from tests.ml.conftest import tiny_config
from tests.ml.test_engine import Collect


def test_decay_window_follows_the_planned_iterations():
    # Ramp from the first steps: the first average leans on the newest weights.
    assert ema_decay(0, 480) == pytest.approx(0.1)
    assert ema_decay(5, 480) == pytest.approx(6 / 15)
    # Later: a window of 5% of the plan (24 of 480), never under 10 or over 2000 steps.
    assert ema_decay(10_000, 480) == pytest.approx(1 - 1 / 24)
    assert ema_decay(10_000, 60) == pytest.approx(1 - 1 / 10)
    assert ema_decay(10**7, 10**6) == pytest.approx(1 - 1 / 2000)
    assert ema_decay(10**7, None) == pytest.approx(1 - 1 / 2000)


def test_average_is_a_lerp_of_parameters_and_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    avg = WeightAverage(model)
    avg.planned = 480
    first = model[0].weight.detach().clone()
    avg.update(model)  # the first update copies
    assert torch.equal(avg.module[0].weight, first)
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(2.0)
    avg.update(model)
    d = ema_decay(1, 480)
    assert torch.allclose(avg.module[0].weight, d * first + (1 - d) * (first + 1.0))
    assert torch.allclose(avg.module[1].running_mean, torch.full((2,), (1 - d) * 2.0))
    assert int(avg.module[1].num_batches_tracked) == int(model[1].num_batches_tracked)


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _UpdatesAtStart(Callback):
    """Records the weight average's update count when a (resumed) run starts."""

    def __init__(self):
        self.updates: list[int] = []

    def on_fit_start(self, trainer):
        self.updates.append(trainer.ema.updates)


def test_best_holds_the_average_and_resume_continues_it(project):
    run = create_run(project, tiny_config(epochs=2))
    first = Collect()
    result = train_run(run.dir, emit=first, should_stop=lambda: len(first.of(Iteration)) >= 4)
    assert result.status == "stopped"
    ckpt = load_checkpoint(run.dir / LAST)
    # last.pt keeps both: the average ("model", what inference loads) and the raw weights.
    assert not _tensors_equal(ckpt["model"], ckpt["train_model"])

    # A resume stopped before its first step saves exactly what it loaded: the raw
    # weights train on, the average goes on from its 4 updates (not restarted).
    probe = _UpdatesAtStart()
    train_run(run.dir, resume=True, should_stop=lambda: True, callbacks=[probe])
    again = load_checkpoint(run.dir / LAST)
    assert probe.updates == [4]
    assert _tensors_equal(again["model"], ckpt["model"])
    assert _tensors_equal(again["train_model"], ckpt["train_model"])

    train_run(run.dir, resume=True)
    final, best = load_checkpoint(run.dir / LAST), load_checkpoint(run.dir / BEST)
    assert final["iteration"] > 4 and not _tensors_equal(final["model"], final["train_model"])
    if best["iteration"] == final["iteration"]:
        assert _tensors_equal(best["model"], final["model"])  # best.pt holds the average


def test_without_average_the_checkpoint_holds_the_trained_weights(project):
    run = create_run(project, tiny_config(epochs=1, ema=False))
    train_run(run.dir)
    ckpt = load_checkpoint(run.dir / LAST)
    assert "train_model" not in ckpt and ckpt["config"]["ema"] is False


def test_a_resumed_run_draws_the_batch_it_stopped_before_with_the_same_augmentation(
    project, monkeypatch
):
    """The checkpoint of a stop keeps torch's random state from before the batch it did
    not train on: the resumed run flips and jitters that batch as a straight run does."""
    from studio.ml.train import trainer as engine

    seen: list[float] = []
    step = engine.Trainer._step

    def recording(self, images, targets):
        seen.append(round(float(sum(im.double().sum() for im in images)), 3))
        return step(self, images, targets)

    monkeypatch.setattr(engine.Trainer, "_step", recording)
    cfg = tiny_config(epochs=2, hflip=0.5, color_jitter=0.3)
    run = create_run(project, cfg)
    first = Collect()
    train_run(run.dir, emit=first, should_stop=lambda: len(first.of(Iteration)) >= 2)
    again = Collect()
    train_run(run.dir, resume=True, emit=again, should_stop=lambda: len(again.of(Iteration)) >= 1)
    stopped = list(seen)
    seen.clear()
    straight = Collect()
    train_run(create_run(project, cfg).dir, emit=straight,
              should_stop=lambda: len(straight.of(Iteration)) >= 3)  # fmt: skip
    assert len(stopped) == len(seen) == 3
    assert stopped == seen

"""The one-click recipe: defaults by device and labels, the planned schedule, the time
budget as a promise, Stop during evaluation, checkpoints (CPU, tiny models)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from studio.core.kinds import ShapeKind
from studio.ml.data.sizing import choose_input_size
from studio.ml.run.process import create_run
from studio.ml.run.recipe import (
    CPU_DETECTOR,
    CPU_SEGMENTER,
    DEFAULT_DETECTOR,
    default_model,
    duration_words,
    explain_choice,
)
from studio.ml.train import schedule
from studio.ml.train import trainer as engine
from studio.ml.train.callbacks import Callback
from studio.ml.train.checkpoint import save_checkpoint
from studio.ml.train.config import TrainConfig
from studio.ml.train.messages import EpochMetrics, Iteration
from studio.ml.train.schedule import plan_schedule
from studio.ml.train.trainer import LAST, load_checkpoint, train_run
from tests.ml.conftest import REPO, tiny_config


class Collect(list):
    def __call__(self, msg) -> None:
        self.append(msg)

    def of(self, cls) -> list:
        return [m for m in self if isinstance(m, cls)]


# --- defaults ---------------------------------------------------------------------------


def _delete_kind(project, kind: str) -> None:
    project.delete_annotations([a.id for a in project.annotations() if a.kind == kind])


def test_cpu_defaults_follow_the_labels(project):
    assert project.info()["kinds"][ShapeKind.BOX] and project.info()["kinds"][ShapeKind.POLYGON]
    # Mixed: a detector unless masks are asked for.
    assert default_model(project, "cpu") == CPU_DETECTOR
    assert default_model(project, "cpu", masks=True) == CPU_SEGMENTER
    assert default_model(project, "cuda") == DEFAULT_DETECTOR
    _delete_kind(project, ShapeKind.BOX)
    assert default_model(project, "cpu") == CPU_SEGMENTER  # polygons only
    sentence = explain_choice(project, TrainConfig(model=CPU_SEGMENTER), "cpu")
    assert sentence.startswith(f"{CPU_SEGMENTER} (a light segmenter: no GPU, polygons/masks)")
    assert "px input" in sentence and "for 10 min, evaluation included" in sentence
    short = explain_choice(project, TrainConfig(model=CPU_SEGMENTER, time_budget=90), "cpu")
    assert "for 1 min 30 s, evaluation included" in short
    assert [duration_words(s) for s in (20, 240, 3600, 7500)] == [
        "20 s",
        "4 min",
        "1 h",
        "2 h 5 min",
    ]


def test_box_project_gets_the_light_detector(project):
    _delete_kind(project, ShapeKind.POLYGON)
    assert default_model(project, "cpu") == CPU_DETECTOR


def test_input_size_keeps_small_objects_visible():
    # 384-px images with 12-px objects: shrinking to 256 would leave them 8 px.
    small = choose_input_size([(12, 384)] * 10 + [(100, 384)] * 90, "cpu")
    assert small.size == 256 and small.small_object * small.scale >= 8
    tiny = choose_input_size([(6, 384)] * 20, "cpu")
    assert tiny.size == 384  # not upsampled beyond the images' own size
    big = choose_input_size([(2000, 3000)] * 5, "cpu")
    assert big.size == 256  # large objects: the CPU's smallest size
    assert choose_input_size([(8, 3000)] * 5, "cuda").size == 800  # the GPU's largest
    assert choose_input_size([], "cpu", default=640).size == 512


@pytest.mark.slow
def test_light_instance_segmenter_trains():
    from studio.ml.models import build_model

    built = build_model("maskrcnn_mobilenet_v3_large_fpn", 2, image_size=128)
    model = built.model.train()
    mask = torch.zeros(1, 96, 128, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20, 90, 60]]), "labels": torch.tensor([1]),
              "masks": mask}  # fmt: skip
    losses = model([torch.rand(3, 96, 128)], [target])
    assert "loss_mask" in losses and all(torch.isfinite(v) for v in losses.values())


# --- the planned schedule --------------------------------------------------------------


def test_a_30_iteration_plan_warms_up_briefly_and_unfreezes_in_time():
    plan = plan_schedule(30, max_warmup=200, progressive=True)
    assert plan.total == 30 and 1 <= plan.warmup <= 3
    assert plan.warmup <= plan.unfreeze_deep <= plan.unfreeze_all < plan.total
    assert plan.unfreeze_all <= 0.3 * plan.total  # most of the run trains the backbone
    assert plan_schedule(30, 200, progressive=False).warmup <= 3
    assert plan_schedule(5000, 200, progressive=True).warmup == 200


class GradState(Callback):
    """After each step: the next step's number and how many of the backbone's parameters
    it trains (of how many); the schedule's final plan."""

    def __init__(self):
        self.trainable: list[tuple[int, int, int]] = []
        self.plan = None

    def on_iteration_end(self, trainer, step) -> None:
        ps = trainer.groups["backbone"]
        self.trainable.append((trainer.state.iteration, sum(p.requires_grad for p in ps), len(ps)))

    def on_fit_end(self, trainer, result) -> None:
        (planner,) = [cb for cb in trainer.callbacks if isinstance(cb, schedule.PlannedSchedule)]
        self.plan = planner.plan


@pytest.mark.slow
def test_progressive_unfreezing_and_warmup_follow_the_plan(project, monkeypatch):
    monkeypatch.setattr(schedule, "loaded_pretrained", lambda model: True)
    # 10 train images in batches of 4: 3 iterations an epoch, 21 in all.
    cfg = tiny_config(epochs=7, weights="default", warmup_iters=200, eval_every=100, lr=1e-3)
    run = create_run(project, cfg)
    msgs, grads = Collect(), GradState()
    train_run(run.dir, emit=msgs, callbacks=[grads])
    lrs = [m.lr for m in msgs.of(Iteration)]
    n = len(lrs)
    assert n >= 19
    assert max(lrs[:3]) == pytest.approx(1e-3, rel=0.05)  # warmup over within a tenth
    # Full until three quarters of the plan, then the cosine decay reached its end.
    assert lrs[int(0.7 * n)] == pytest.approx(1e-3) and lrs[-1] < 0.15 * 1e-3
    plan = grads.plan
    assert plan.total == 21 and 0 < plan.unfreeze_deep < plan.unfreeze_all <= 0.3 * plan.total
    for it, trained, of in grads.trainable:
        if it < plan.unfreeze_deep:
            assert trained == 0  # frozen: the heads learn first
        elif it < plan.unfreeze_all:
            assert 0 < trained < of  # the deeper half
        else:
            assert trained == of


# --- the time budget, Stop, checkpoints ---------------------------------------------------


@pytest.mark.slow
def test_time_budget_holds_with_a_slow_evaluation(project, monkeypatch):
    real = engine.evaluate_outputs

    def slow(*args, **kwargs):
        time.sleep(1.5)  # an evaluation that costs a fifth of the budget
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "evaluate_outputs", slow)
    budget = 8.0
    run = create_run(project, tiny_config(epochs=None, time_budget=budget, eval_every=1))
    msgs = Collect()
    result = train_run(run.dir, emit=msgs)
    ckpt = load_checkpoint(run.dir / LAST)
    assert result.status == "finished" and result.reason == "time_budget"
    assert ckpt["elapsed"] <= 1.1 * budget
    assert ckpt["elapsed"] >= 0.7 * budget  # and the budget was used
    assert "bbox/AP" in msgs.of(EpochMetrics)[-1].metrics  # the last evaluation fitted
    assert (run.dir / "best.pt").is_file()


@pytest.mark.slow
def test_stop_during_evaluation_aborts_it_and_leaves_a_checkpoint(project, monkeypatch):
    evaluating = []
    real = engine.run_model

    def watched(*args, **kwargs):
        evaluating.append(True)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_model", watched)
    run = create_run(project, tiny_config(epochs=2))
    msgs = Collect()
    t0 = time.perf_counter()
    result = train_run(run.dir, emit=msgs, should_stop=lambda: bool(evaluating))
    assert result.status == "stopped" and time.perf_counter() - t0 < 60
    assert not any("bbox/AP" in m.metrics for m in msgs.of(EpochMetrics))
    ckpt = load_checkpoint(run.dir / LAST)
    assert ckpt["status"] == "stopped" and ckpt["iteration"] > 0
    assert ckpt["validation_owed"] and ckpt["epoch"] == 1

    # Resumed, the abandoned evaluation comes first, as the end of the epoch it measured:
    # that epoch's AP was missing from the run and best.pt never weighed its weights.
    evaluating.clear()
    msgs = Collect()
    result = train_run(run.dir, resume=True, emit=msgs)
    assert result.status == "finished"
    validated = [m.epoch for m in msgs.of(EpochMetrics) if "bbox/AP" in m.metrics]
    assert validated == [0, 1]
    assert not load_checkpoint(run.dir / LAST)["validation_owed"]
    assert (run.dir / "best.pt").is_file()


def test_a_failed_checkpoint_write_leaves_no_tmp(tmp_path):
    path = tmp_path / "last.pt"
    with pytest.raises((AttributeError, pickle.PicklingError)):
        save_checkpoint({"model": lambda: None}, path)  # a lambda cannot be pickled
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error, said",
    [
        (OSError(28, "No space left on device"), "No space left on device"),
        # torch's zip writer reports a read-only folder or a full disk as a RuntimeError
        # (a traceback without the file's name reached the user).
        (RuntimeError("[enforce fail at inline_container.cc:747] . open file failed with "
                      "strerror: Operation not permitted"), "Operation not permitted"),
        (RuntimeError("[enforce fail at inline_container.cc:621] . unexpected pos 21433730 "
                      "vs 21433684"), "the write was cut short (is the disk full?)"),
    ],
)  # fmt: skip
def test_a_failed_checkpoint_write_is_one_line_naming_the_file_and_leaves_no_tmp(
    tmp_path, monkeypatch, error, said
):
    import torch

    from studio.core.errors import StudioError

    def failing(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")  # what a write cut short leaves behind
        raise error

    monkeypatch.setattr(torch, "save", failing)
    path = tmp_path / "last.pt"
    with pytest.raises(StudioError) as info:
        save_checkpoint({"model": {}}, path)
    assert str(info.value) == f"{path}: cannot write the checkpoint: {said}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_studio_train_with_no_options_finishes_within_its_budget(demo_dir):
    budget = 20
    env = {**os.environ, "STUDIO_WEIGHTS_DIR": str(demo_dir / "no-weights"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "studio", "train", str(demo_dir), "--time-budget", str(budget)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "random init" in proc.stderr  # offline: the weights warning, then training
    from studio.core.project import Project

    with Project.open(demo_dir) as p:
        (run,) = p.runs()
        assert run.status == "finished" and run.model == CPU_DETECTOR
    ckpt = load_checkpoint(run.dir / LAST)
    assert ckpt["reason"] == "time_budget" and ckpt["iteration"] > 0
    assert ckpt["elapsed"] <= 1.1 * budget
    assert (run.dir / "best.pt").is_file()


def test_which_models_studio_sizes_from_the_objects():
    """The panel's sentence says "the input size your objects need" for these, "its own
    input size" for the rest: the same test auto_image_size makes."""
    from studio.ml.models import get_spec
    from studio.ml.train.schedule import sized_by_objects

    assert sized_by_objects(get_spec("composable_cspnet_pan_fcos"))
    assert sized_by_objects(get_spec("maskrcnn_mobilenet_v3_large_fpn"))
    assert not sized_by_objects(get_spec("ssdlite320_mobilenet_v3_large"))  # fixed 320
    assert not sized_by_objects(get_spec("deeplabv3_mobilenet_v3_large"))  # semantic

"""The CPU detector one click trains: from scratch offline, on a pretrained MobileNet
when its ImageNet file is here; the learning rate follows what is pretrained."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from studio.core.kinds import ShapeKind
from studio.ml.models import build_model, get_spec
from studio.ml.models.cspnet import SCRATCH_BACKBONES, build_cspnet
from studio.ml.run.recipe import (
    CPU_DETECTOR,
    CPU_PRETRAINED_DETECTOR,
    default_model,
    explain_choice,
    project_input_size,
    recipe,
    weights_note,
)
from studio.ml.train.config import TrainConfig, default_lr
from studio.ml.train.schedule import trained_from_scratch


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """A machine with no pretrained file anywhere: an empty weights folder and torch cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STUDIO_WEIGHTS_DIR", str(tmp_path / "weights"))
    (tmp_path / "weights").mkdir()
    return tmp_path / "weights"


def test_offline_the_cpu_detector_learns_from_scratch_and_says_why(project, no_weights):
    assert project.info()["kinds"][ShapeKind.BOX]
    assert default_model(project, "cpu") == CPU_DETECTOR
    cfg = TrainConfig.from_dict(recipe(CPU_DETECTOR, "cpu"))
    assert cfg.batch_size == 8
    sentence = explain_choice(project, cfg, "cpu")
    assert sentence.startswith(f"{CPU_DETECTOR} (a light detector: no GPU")
    assert "no ImageNet file here: made to learn from scratch" in sentence
    px = project_input_size(project, CPU_DETECTOR, "cpu").size
    first = 32 * round(px * 0.625 / 32)  # progressive resizing (resize.py) from scratch
    assert f"{px} px input" in sentence and f"(training starts at {first} px" in sentence
    assert "training starts" not in explain_choice(project, replace(cfg, resize_from=1.0), "cpu")
    with_file = replace(cfg, weights="/weights/detector.pt")  # pretrained: full size
    assert "training starts" not in explain_choice(project, with_file, "cpu")
    note = weights_note(CPU_DETECTOR)
    assert (
        note
        and "random init" in note
        and f"studio weights --model {CPU_PRETRAINED_DETECTOR}" in note
    )


def test_with_the_imagenet_file_the_cpu_detector_is_pretrained(project, no_weights):
    # The file by its published name in the weights folder is enough (not read here).
    (no_weights / "mobilenet_v3_large-5c1a4163.pth").write_bytes(b"")
    assert default_model(project, "cpu") == CPU_PRETRAINED_DETECTOR
    assert TrainConfig.from_dict(recipe(CPU_PRETRAINED_DETECTOR, "cpu")).batch_size == 8
    assert weights_note(CPU_DETECTOR) is None


def test_the_scratch_detector_has_no_weights_to_miss(no_weights):
    built = build_model(
        CPU_DETECTOR, 4, weights="default", backbone_weights="imagenet", image_size=128
    )
    assert built.warnings == []  # nothing to download, nothing to warn about
    assert not get_spec(CPU_DETECTOR).supports_pretrained
    cfg = TrainConfig(model=CPU_DETECTOR)
    assert trained_from_scratch(cfg, built.model)
    with torch.no_grad():
        feats = built.model.backbone.eval()(torch.rand(1, 3, 100, 150))
    assert [tuple(f.shape[-2:]) for f in feats.values()] == [(13, 19), (7, 10), (4, 5)]


@pytest.mark.parametrize("name", sorted(SCRATCH_BACKBONES))
def test_cspnet_levels(name):
    widths, _ = SCRATCH_BACKBONES[name]
    out = build_cspnet(name)(torch.rand(2, 3, 64, 96))
    assert [(k, v.shape[1], v.shape[-1]) for k, v in out.items()] == [
        ("C3", widths[2], 12), ("C4", widths[3], 6), ("C5", widths[4], 3)
    ]  # fmt: skip


def test_learning_rate_follows_what_is_pretrained():
    assert default_lr("adamw", 8, from_scratch=True) == pytest.approx(2e-3)
    assert default_lr("adamw", 4, from_scratch=True) == pytest.approx(1e-3)
    assert default_lr("adamw", 8) == pytest.approx(1e-3)  # heads on a pretrained backbone
    assert default_lr("adamw", 8, pretrained_model=True) == pytest.approx(1e-4)
    assert default_lr("sgd", 16, from_scratch=True) == pytest.approx(0.02)
    cfg = TrainConfig(model=CPU_DETECTOR, batch_size=4)
    assert cfg.resolved(from_scratch=True).lr == pytest.approx(1e-3)
    assert TrainConfig(model=CPU_DETECTOR, lr=0.5).resolved(from_scratch=True).lr == 0.5


def test_only_the_mobilenet_v2_file_gives_the_v2_detector(project, no_weights):
    (no_weights / "mobilenet_v2-b0353104.pth").write_bytes(b"")  # IMAGENET1K_V1's name
    assert default_model(project, "cpu") == "composable_mobilenet_v2_pan_fcos"
    assert weights_note(CPU_DETECTOR) is None


def test_a_budgeted_run_is_not_stopped_early_an_epoch_run_is():
    from types import SimpleNamespace

    from studio.ml.train.callbacks import EarlyStopping
    from studio.ml.train.schedule import default_callbacks
    from studio.ml.train.threads import FitThreadsToFreeCores

    def kinds(device="cpu", ranks=1, **fields):
        trainer = SimpleNamespace(
            cfg=TrainConfig(model=CPU_DETECTOR, **fields),
            model=torch.nn.Linear(1, 1),
            ema=None,
            device=torch.device(device),
            dist=SimpleNamespace(world_size=ranks),
        )
        return {type(c) for c in default_callbacks(trainer, None)}

    assert EarlyStopping not in kinds(time_budget=600.0, patience=3)
    assert EarlyStopping in kinds(time_budget=None, epochs=20, patience=3)
    # The threads follow the free cores in a single-process CPU run only.
    assert FitThreadsToFreeCores in kinds()
    assert FitThreadsToFreeCores not in kinds("cuda") | kinds(ranks=2)


def test_a_model_that_found_nothing_yet_is_not_stopped_early():
    from types import SimpleNamespace

    from studio.ml.train.callbacks import EarlyStopping
    from studio.ml.train.state import TrainState

    state = TrainState()
    asked = []
    trainer = SimpleNamespace(state=state, request_finish=asked.append)
    for _ in range(5):
        state.track_best(0.0, 0.0)
        EarlyStopping(2).on_epoch_end(trainer, None)
    assert asked == []  # AP 0 five times: not started, not stalled
    state.track_best(0.2, 0.0)
    for _ in range(2):
        state.track_best(0.1, 0.0)
    EarlyStopping(2).on_epoch_end(trainer, None)
    assert asked == ["early_stopping"]


def test_a_backbone_from_scratch_learns_at_the_full_rate():
    cfg = TrainConfig(model=CPU_DETECTOR, batch_size=8)
    assert cfg.resolved(from_scratch=True).backbone_lr_mult == 1.0
    assert cfg.resolved(from_scratch=False).backbone_lr_mult == 0.1  # pretrained: kept
    mine = TrainConfig(model=CPU_DETECTOR, backbone_lr_mult=0.3)  # the user's: kept
    assert mine.resolved(from_scratch=True).backbone_lr_mult == 0.3


def test_the_optimizer_gives_a_scratch_backbone_the_head_rate(project, no_weights):
    from studio.ml.run.process import create_run
    from studio.ml.train.trainer import Trainer

    cfg = TrainConfig.from_dict({**recipe(CPU_DETECTOR, "cpu"), "time_budget": 30.0})
    cfg.device = "cpu"
    run = create_run(project, cfg)
    trainer = Trainer(run.dir)
    trainer.setup()
    lrs = {g["part"]: g["lr"] for g in trainer.opt.optimizer.param_groups}
    assert lrs["backbone"] == lrs["head"] == trainer.cfg.lr


def test_the_rate_stays_full_until_the_decay_starts_then_follows_a_cosine():
    from studio.ml.train.optim import WarmupCosine

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    sched = WarmupCosine(opt, warmup_iters=10, warmup_factor=1e-3, decay_start=0.6)
    assert sched.factor_at(0, 0.0) == pytest.approx(1e-3)  # warmup first
    assert sched.factor_at(10, 0.3) == 1.0
    assert sched.factor_at(50, 0.6) == 1.0  # full rate for 60% of the run
    assert sched.factor_at(70, 0.8) == pytest.approx(0.5)  # half-way down the cosine
    assert sched.factor_at(99, 1.0) == pytest.approx(0.0)
    sched.step(70, 0.8)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    resumed = WarmupCosine(opt, 0, 1.0)
    resumed.load_state_dict(sched.state_dict())
    assert resumed.factor_at(70, 0.8) == pytest.approx(0.5)
    assert TrainConfig().lr_decay_start == 0.75  # the one-click default


def test_the_warmup_rate_never_falls_when_a_re_plan_lengthens_it():
    from studio.ml.train.optim import WarmupCosine

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosine(opt, warmup_iters=10, warmup_factor=0.0)
    rates = []
    # The warmup re-planned at every step from a measured speed that jitters.
    for it, warmup in enumerate([10, 10, 14, 9, 16, 16, 12, 20, 20, 20, 20, 20]):
        sched.warmup_iters = warmup
        sched.step(it, 0.0)
        rates.append(opt.param_groups[0]["lr"])
    assert rates == sorted(rates), rates  # it held where the ramp would have dropped
    assert rates[3] == pytest.approx(3 / 9) and rates[4] == pytest.approx(3 / 9)  # held
    assert rates[-1] == pytest.approx(11 / 20)
    resumed = WarmupCosine(opt, 20, 0.0)
    resumed.load_state_dict(sched.state_dict())
    resumed.warmup_iters = 40  # a re-plan after the resume cannot lower it either
    resumed.step(12, 0.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(11 / 20)

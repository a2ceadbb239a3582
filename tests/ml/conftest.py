"""Fixtures for the training tests: a tiny demo project and tiny models.

The tiny models are registered under plain names by the plugin in plugin_models/ (on
STUDIO_PLUGIN_PATH), so a spawned training process or a torchrun rank finds them through
the registry as the test process does; that plugin imports this module, so the repository
root must be importable in those processes too (see REPO below).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from studio.ml.models import BuiltModel, ModelSpec
from studio.ml.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# Spawned training processes copy sys.path; torchrun's ranks read PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ["STUDIO_PLUGIN_PATH"] = os.pathsep.join(
    [
        str(Path(__file__).parent / "plugin_models"),
        *filter(None, [os.environ.get("STUDIO_PLUGIN_PATH")]),
    ]
)

TINY = "tiny_detector"
TINY_MASK = "tiny_mask_detector"
BROKEN = "broken_detector"
IMAGE_SIZE = 96  # shorter side the tiny models resize to


class TinyBackbone(nn.Module):
    """Three stride-2 convs: one feature map "0" at stride 8, `channels` wide."""

    def __init__(self, channels: int = 16):
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, 2, 1), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

        self.body = nn.Sequential(
            block(3, channels), block(channels, channels), block(channels, channels)
        )
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"0": self.body(x)}


def _common(num_classes: int, image_size: int | None, options: dict) -> dict:
    size = image_size or IMAGE_SIZE
    return {
        "min_size": size,
        "max_size": round(size * 4 / 3),
        "rpn_anchor_generator": AnchorGenerator(((16, 32, 64),), ((0.5, 1.0, 2.0),)),
        "box_roi_pool": MultiScaleRoIAlign(["0"], 7, 2),
        "box_head": TwoMLPHead(16 * 7 * 7, 64),
        "box_predictor": FastRCNNPredictor(64, num_classes + 1),
        "rpn_batch_size_per_image": 64,
        "box_batch_size_per_image": 64,
        "rpn_pre_nms_top_n_train": 200,
        "rpn_post_nms_top_n_train": 100,
        "rpn_pre_nms_top_n_test": 100,
        "rpn_post_nms_top_n_test": 50,
        **options,
    }


def _built(model: nn.Module, task: str, image_size: int | None) -> BuiltModel:
    # Returned like build_model's result, so the task comes with the model (the CLI
    # has no --task) and the registry's param_groups split it by name.
    size = image_size or IMAGE_SIZE
    spec = ModelSpec(
        name="tiny",
        task=task,
        description="test model",
        feature_levels=("C3",),
        strides=(8,),
        resize={"min_size": size, "max_size": round(size * 4 / 3)},
        default_image_size=IMAGE_SIZE,
        supports_pretrained=False,
    )
    return BuiltModel(model=model, spec=spec, image_size=size)


def tiny_detector(
    num_classes, *, weights="none", backbone_weights="none", image_size=None, **options
):
    """A 64k-parameter Faster R-CNN (torchvision's class, tiny parts). Weights are ignored,
    but weights other than "none" still make the engine freeze the backbone for an epoch."""
    torch.manual_seed(0)
    model = FasterRCNN(TinyBackbone(), None, **_common(num_classes, image_size, options))
    return _built(model, "detection", image_size)


SLOW_STEP_S = 0.5  # long enough that a test's Stop always lands mid-run on a fast machine


def slow_tiny_detector(num_classes, **kwargs):
    """The tiny detector, half a second per training step: for tests that must act while
    a run is still going (a fast machine finishes the plain one before a click lands)."""
    import time

    built = tiny_detector(num_classes, **kwargs)
    built.model.register_forward_pre_hook(
        lambda module, _args: time.sleep(SLOW_STEP_S) if module.training else None
    )
    return built


def tiny_mask_detector(
    num_classes, *, weights="none", backbone_weights="none", image_size=None, **options
):
    torch.manual_seed(0)
    model = MaskRCNN(
        TinyBackbone(),
        None,
        mask_roi_pool=MultiScaleRoIAlign(["0"], 14, 2),
        mask_head=MaskRCNNHeads(16, (16, 16), 1),
        mask_predictor=MaskRCNNPredictor(16, 16, num_classes + 1),
        **_common(num_classes, image_size, options),
    )
    return _built(model, "instance_segmentation", image_size)


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, images, targets=None):
        raise RuntimeError("boom: this model always fails")


def broken_detector(num_classes, **kwargs):
    return _Broken()


def tiny_config(**overrides) -> TrainConfig:
    """A config that trains the tiny detector on the CPU in a few seconds."""
    base = dict(
        model=TINY,
        task="detection",
        weights="none",
        backbone_weights="none",
        image_size=IMAGE_SIZE,
        epochs=2,
        time_budget=None,
        batch_size=4,
        lr=2e-3,
        warmup_iters=4,
        patience=None,
        workers=0,
        device="cpu",
        db_flush_every=5,
    )
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory) -> Path:
    from studio.core.demo import create_demo_project

    folder = tmp_path_factory.mktemp("template") / "demo"
    p = create_demo_project(folder, n_images=12, seed=0, image_size=(128, 96))
    p.close()
    return folder


@pytest.fixture()
def demo_dir(_demo_template, tmp_path) -> Path:
    """A fresh copy of a 12-image demo project (boxes and polygons, 4 classes)."""
    dst = tmp_path / "project"
    shutil.copytree(_demo_template, dst)
    return dst


@pytest.fixture()
def project(demo_dir):
    from studio.core.project import Project

    p = Project.open(demo_dir)
    yield p
    p.close()

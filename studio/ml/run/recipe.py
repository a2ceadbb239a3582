"""The one-click recipe: which model, device and settings the Train button uses.

`default_model` picks a detector when the project has only boxes and Mask R-CNN when it
has polygons or masks; the device is "auto" (a GPU when there is one). On a CPU the
recipe stays light, because a step of Mask R-CNN at its 800-pixel default takes tens of
seconds on a laptop: the default detector is already the lightest two-stage one
(MobileNetV3 at 320 px), and Mask R-CNN is trained at 512 px with batches of 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError
from studio.core.kinds import ShapeKind
from studio.ml.tasks import Task
from studio.ml.train.build import model_task
from studio.ml.train.config import TrainConfig
from studio.ml.train.device import auto_device

if TYPE_CHECKING:
    from studio.core.project import Project

DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"
DEFAULT_SEGMENTER = "maskrcnn_resnet50_fpn_v2"
# Mask R-CNN on a CPU: shorter side and batch that keep a step near a few seconds.
CPU_INSTANCE_IMAGE_SIZE = 512
CPU_INSTANCE_BATCH = 2


def default_model(project: Project) -> str:
    """A detector when the project has only boxes, Mask R-CNN when it has polygons/masks."""
    kinds = project.info()["kinds"]
    has_masks = kinds.get(ShapeKind.POLYGON, 0) or kinds.get(ShapeKind.MASK, 0)
    return DEFAULT_SEGMENTER if has_masks else DEFAULT_DETECTOR


def recipe(model: str, device: str) -> dict[str, Any]:
    """The one-click settings for `model` on `device` ("cpu", "cuda", "mps"), as TrainConfig
    fields. Pure: the Advanced section calls it again when the model changes."""
    cfg = TrainConfig(model=model, device="auto")
    try:
        task = model_task(model) if model else ""
    except StudioError:  # an unknown name: the checks say so, the recipe stays plain
        task = ""
    if device == "cpu" and task == Task.INSTANCE_SEGMENTATION:
        cfg.image_size, cfg.batch_size = CPU_INSTANCE_IMAGE_SIZE, CPU_INSTANCE_BATCH
    return cfg.to_dict()


def recommended(project: Project) -> tuple[str, str]:
    """(model, device) the Train button uses for `project` on this machine."""
    return default_model(project), auto_device()

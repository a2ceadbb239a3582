"""The one-click recipe: which model, input size, length and settings the Train button
(and `studio train DIR` with no options) uses, and the sentence that explains them.

The model follows the device and the labels: on a CPU a light one-stage detector
(MobileNetV3 + PAN + FCOS, with stride-8 features for small objects), or for polygons
and masks a light Mask R-CNN on a MobileNetV3-Large FPN; on a GPU the accurate ResNet-50
two-stage models. A mixed project (boxes and polygons) trains a detector unless masks
are asked for: a box has no mask to learn from. The input size follows the objects'
sizes (data/sizing.py; the trainer picks it when `image_size` is None, so the window and
the command line get the same). One click trains for a time budget
(`TrainConfig.time_budget`, 10 minutes by default), epochs stay available.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError
from studio.core.kinds import ShapeKind
from studio.ml.data.sizing import (
    SizeChoice,
    choose_input_size,
    fits_square,
    object_sides,
    scaled_side,
)
from studio.ml.tasks import Task
from studio.ml.train.build import is_factory, model_task
from studio.ml.train.config import SCRATCH_RESIZE_FROM, TrainConfig
from studio.ml.train.device import auto_device

if TYPE_CHECKING:
    from studio.core.project import Project

# On a GPU: the accurate models (COCO weights where they can be had).
DEFAULT_DETECTOR = "fasterrcnn_resnet50_fpn_v2"
DEFAULT_SEGMENTER = "maskrcnn_resnet50_fpn_v2"
# On a CPU: light models whose step takes a second or two at ~320-512 px. Without an
# ImageNet file (offline), a detector made to learn from scratch: a small CSP network
# of dense convolutions trains ~2.5x more images per second than MobileNetV3 on a CPU
# and learns faster from nothing (cspnet.py). With the file, the pretrained MobileNet.
CPU_DETECTOR = "composable_cspnet_pan_fcos"
CPU_PRETRAINED_DETECTOR = "composable_mobilenet_v3_pan_fcos"
# ... or, where only its file is here, the same on MobileNetV2 (torchvision's
# mobilenet_v2-b0353104.pth is a common offline copy).
CPU_PRETRAINED_DETECTORS = (CPU_PRETRAINED_DETECTOR, "composable_mobilenet_v2_pan_fcos")
CPU_SEGMENTER = "maskrcnn_mobilenet_v3_large_fpn"
CPU_DETECTOR_BATCH = 8  # batches of 4 learned less per image from scratch (BatchNorm)
CPU_PRETRAINED_BATCH = 8
CPU_INSTANCE_BATCH = 4
# Mask R-CNN ResNet-50 picked by hand on a CPU: a shorter side and batch that keep a
# step near a few seconds.
CPU_INSTANCE_IMAGE_SIZE = 512
CPU_HEAVY_INSTANCE_BATCH = 2


def _kinds(project: Project) -> dict[str, int]:
    return dict(project.info()["kinds"])


def wants_masks(kinds: dict[str, int]) -> bool:
    """Whether a project with these shape counts trains masks by default: only when
    every shape is a polygon or mask (a box of a mixed project has no mask to learn)."""
    masks = kinds.get(ShapeKind.POLYGON, 0) + kinds.get(ShapeKind.MASK, 0)
    return masks > 0 and kinds.get(ShapeKind.BOX, 0) == 0


def default_model(project: Project, device: str | None = None, masks: bool | None = None) -> str:
    """The model one click trains on `project` on `device` (default: this machine's):
    a segmenter when the shapes are polygons/masks (or `masks` says so), else a
    detector; light ones on a CPU."""
    device = (device or auto_device()).split(":")[0]
    segment = wants_masks(_kinds(project)) if masks is None else masks
    if device == "cpu":
        if segment:
            return CPU_SEGMENTER
        here = [m for m in CPU_PRETRAINED_DETECTORS if backbone_file_here(m)]
        return here[0] if here else CPU_DETECTOR
    return DEFAULT_SEGMENTER if segment else DEFAULT_DETECTOR


def backbone_file_here(model: str) -> bool:
    """Whether torchvision's ImageNet file for `model`'s backbone is on this machine (a
    weights folder or the torch cache): nothing is downloaded to find out."""
    from studio.ml.models import get_spec
    from studio.ml.models.weights import WeightsError, locate, published_files

    try:
        files = published_files(str(get_spec(model).options["backbone"]))
    except (KeyError, WeightsError):
        return False
    return any(locate(w) is not None for w in files)


def weights_note(model: str) -> str | None:
    """A line for the user when the one-click CPU detector trains from scratch because no
    ImageNet backbone file is here, saying what a file would change; None otherwise."""
    if model != CPU_DETECTOR or any(map(backbone_file_here, CPU_PRETRAINED_DETECTORS)):
        return None
    return (
        f"no ImageNet backbone file on this machine: {CPU_DETECTOR} starts from random init "
        f"(it is made to learn from scratch). With the file, one click trains "
        f"{CPU_PRETRAINED_DETECTOR} on a pretrained backbone instead: `studio weights "
        f"--model {CPU_PRETRAINED_DETECTOR}` says where to put it."
    )


def recipe(model: str, device: str) -> dict[str, Any]:
    """The one-click settings for `model` on `device` ("cpu", "cuda", "mps"), as TrainConfig
    fields. Pure: the Advanced section calls it again when the model changes."""
    cfg = TrainConfig(model=model, device="auto")
    try:
        task = model_task(model) if model else ""
    except StudioError:  # an unknown name: the checks say so, the recipe stays plain
        task = ""
    if device == "cpu":
        if model == CPU_DETECTOR:
            cfg.batch_size = CPU_DETECTOR_BATCH
        elif model in CPU_PRETRAINED_DETECTORS:
            cfg.batch_size = CPU_PRETRAINED_BATCH
        elif model == CPU_SEGMENTER:
            cfg.batch_size = CPU_INSTANCE_BATCH
        elif task == Task.INSTANCE_SEGMENTATION:
            cfg.image_size, cfg.batch_size = CPU_INSTANCE_IMAGE_SIZE, CPU_HEAVY_INSTANCE_BATCH
    return cfg.to_dict()


def recommended(project: Project) -> tuple[str, str]:
    """(model, device) the Train button uses for `project` on this machine."""
    device = auto_device()
    return default_model(project, device), device


def project_input_size(project: Project, model: str, device: str) -> SizeChoice:
    """The input size the trainer will pick for `project`'s objects, `model` (a registry
    name) on `device`."""
    from studio.ml.models import get_spec

    spec = get_spec(model)
    images = [(im.id, im.width, im.height) for im in project.images()]
    boxes = [(a.image_id, a.bbox[2], a.bbox[3]) for a in project.annotations()]
    sides = object_sides(images, boxes, long_side=fits_square(spec.resize))
    return choose_input_size(sides, device.split(":")[0], spec.default_image_size)


def explain_choice(project: Project, cfg: TrainConfig, device: str | None = None) -> str:
    """One sentence saying what one click trains with `cfg` on `project` and why (for the
    panel and `studio train`), e.g. "composable_mobilenet_v3_pan_fcos (a light
    detector: no GPU, boxes), 384 px input (small objects 14 px -> 12 px), 10 min"."""
    device = (device or (cfg.device if cfg.device != "auto" else auto_device())).split(":")[0]
    kinds = _kinds(project)
    task = model_task(cfg.model, cfg.task) if cfg.model else ""
    what = "segmenter" if task == Task.INSTANCE_SEGMENTATION else "detector"
    light = cfg.model in (CPU_DETECTOR, *CPU_PRETRAINED_DETECTORS, CPU_SEGMENTER)
    where = "no GPU" if device == "cpu" else f"on {device}"
    shapes = "polygons/masks" if wants_masks(kinds) else "boxes"
    if kinds.get(ShapeKind.BOX) and (kinds.get(ShapeKind.POLYGON) or kinds.get(ShapeKind.MASK)):
        shapes = "boxes and polygons (a detector unless masks are asked for)"
    why = f"{'a light ' if light else 'an '}{what}: {where}, {shapes}"
    if cfg.model == CPU_DETECTOR:
        why += ", no ImageNet file here: made to learn from scratch"
    if cfg.image_size or is_factory(cfg.model):
        size, px = f"{cfg.image_size or 'its own'} px input", cfg.image_size
    else:
        choice = project_input_size(project, cfg.model, device)
        size, px = choice.sentence(), choice.size
    start = SCRATCH_RESIZE_FROM if cfg.resize_from is None else cfg.resize_from
    # CPU_DETECTOR has no ImageNet file: only a weights file makes its run pretrained
    # (schedule.trained_from_scratch), and then it keeps the full size.
    if cfg.model == CPU_DETECTOR and not cfg.given_weights_files() and start < 1 and px:
        first = scaled_side(px, start)  # as resize.py does at the start
        size += f" (training starts at {first} px: early steps cost less)"
    length = []
    if cfg.time_budget:
        length.append(f"for {duration_words(cfg.time_budget)}, evaluation included")
    if cfg.epochs:
        length.append(f"at most {cfg.epochs} epochs")
    return f"{cfg.model} ({why}), {size}, {' and '.join(length)}"


def duration_words(seconds: float) -> str:
    """A time budget as a person says it: "20 s", "4 min", "1 min 30 s", "2 h 5 min"."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min" + (f" {s} s" if s else "")
    h, m = divmod(m, 60)
    return f"{h} h" + (f" {m} min" if m else "")

"""The model registry: what Studio can train, and how to build each model for a class count."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from studio.core.errors import StudioError
from studio.ml.models import composable
from studio.ml.models.segmentation import SemanticSegmenter, UNet
from studio.ml.models.torchvision_models import (
    build_torchvision_detector,
    build_torchvision_segmenter,
)
from studio.ml.models.weights import (
    BACKBONE_PRETRAINED,
    DEFAULT_WEIGHTS,
    NO_WEIGHTS,
    WeightsUnavailable,
    is_path_like,
    load_matching,
    read_weights_file,
)

TASKS = ("detection", "instance_segmentation", "semantic_segmentation")


class ModelConfigError(StudioError, ValueError):
    """An unknown model name, task or option, or a bad class count or image size."""


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before building it.

    `strides[i]` is the input pixels per feature-map pixel of `feature_levels[i]`. `resize` is
    how the model resizes its input: {"min_size": s, "max_size": m} (shorter side to s, longer
    side at most m) or {"fixed": s} (to s x s). `default_image_size` is the `image_size` the
    model is built for when none is given: min_size or fixed.
    """

    name: str
    task: str
    description: str
    feature_levels: tuple[str, ...]
    strides: tuple[int, ...]
    resize: dict = field(hash=False)
    default_image_size: int
    supports_pretrained: bool
    # How build_model constructs it: "torchvision_detection", "torchvision_segmentation",
    # "composable" or "unet".
    family: str = "torchvision_detection"
    # Default build options (the composable presets' backbone/neck/head).
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class BuiltModel:
    """A model ready to train, following torchvision's detection API (see the package doc).

    `warnings` are one-line messages for the user (weights that could not be used...).
    `image_size`, `resize` and `options` are what it was built with: passing `options` and
    `image_size` back to build_model rebuilds the same architecture. `class_names` come from a
    Studio checkpoint given as weights.
    """

    model: nn.Module
    spec: ModelSpec
    warnings: list[str] = field(default_factory=list)
    image_size: int = 0
    resize: dict = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """param_groups(self.model)."""
        return param_groups(self.model)


def _rcnn_resize(min_size: int, max_size: int) -> dict[str, int]:
    return {"min_size": min_size, "max_size": max_size}


_RCNN_LEVELS = (("P2", "P3", "P4", "P5", "P6"), (4, 8, 16, 32, 64))
_ONE_STAGE_LEVELS = (("P3", "P4", "P5", "P6", "P7"), (8, 16, 32, 64, 128))
# torchvision's MobileNetV3 FPN takes its last two stages, both at stride 32, plus a pooled P6.
_MOBILE_FPN_LEVELS = (("C5a", "C5b", "P6"), (32, 32, 64))
# SSDlite's six maps at 320 px are 20, 10, 5, 3, 2 and 1 pixels wide.
_SSDLITE_LEVELS = (("C4", "C5", "E1", "E2", "E3", "E4"), (16, 32, 64, 107, 160, 320))


def _spec(
    name: str,
    task: str,
    description: str,
    levels: tuple[tuple[str, ...], tuple[int, ...]],
    resize: dict[str, int],
    supports_pretrained: bool = True,
    family: str = "torchvision_detection",
    options: Mapping[str, Any] | None = None,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=task,
        description=description,
        feature_levels=levels[0],
        strides=levels[1],
        resize=resize,
        default_image_size=resize.get("fixed", resize.get("min_size", 0)),
        supports_pretrained=supports_pretrained,
        family=family,
        options=dict(options or {}),
    )


def _composable_spec(name: str, options: Mapping[str, Any], description: str) -> ModelSpec:
    return _spec(
        name,
        "detection",
        description,
        (composable.LEVELS, composable.STRIDES),
        {"min_size": 640, "max_size": 640},
        family="composable",
        options=options,
    )


_SEG = "torchvision_segmentation"
_SPECS = [
    _spec(
        "fasterrcnn_resnet50_fpn_v2",
        "detection",
        "Faster R-CNN v2, ResNet-50 FPN: two-stage, accurate, slow",
        _RCNN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fasterrcnn_mobilenet_v3_large_fpn",
        "detection",
        "Faster R-CNN, MobileNetV3-Large FPN: light two-stage; coarse (stride 32) features",
        _MOBILE_FPN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "detection",
        "Faster R-CNN, MobileNetV3-Large FPN at 320 px: fastest two-stage, large objects only",
        _MOBILE_FPN_LEVELS,
        _rcnn_resize(320, 640),
    ),
    _spec(
        "retinanet_resnet50_fpn_v2",
        "detection",
        "RetinaNet v2, ResNet-50 FPN: one-stage, anchors and focal loss",
        _ONE_STAGE_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fcos_resnet50_fpn",
        "detection",
        "FCOS, ResNet-50 FPN: one-stage, anchor-free",
        _ONE_STAGE_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "ssdlite320_mobilenet_v3_large",
        "detection",
        "SSDlite, MobileNetV3-Large at 320x320: tiny and fast, weak on small objects",
        _SSDLITE_LEVELS,
        {"fixed": 320},
    ),
    _spec(
        "maskrcnn_resnet50_fpn_v2",
        "instance_segmentation",
        "Mask R-CNN v2, ResNet-50 FPN: boxes and per-instance masks",
        _RCNN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "deeplabv3_resnet50",
        "semantic_segmentation",
        "DeepLabV3, dilated ResNet-50 (stride 8): accurate, heavy",
        (("C5",), (8,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "deeplabv3_mobilenet_v3_large",
        "semantic_segmentation",
        "DeepLabV3, dilated MobileNetV3-Large (stride 16)",
        (("C5",), (16,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "lraspp_mobilenet_v3_large",
        "semantic_segmentation",
        "LR-ASPP, MobileNetV3-Large: the lightest segmenter",
        (("C3", "C5"), (8, 16)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "fcn_resnet50",
        "semantic_segmentation",
        "FCN, dilated ResNet-50 (stride 8)",
        (("C5",), (8,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "unet",
        "semantic_segmentation",
        "Small UNet, 4 levels, full-resolution output; trains from scratch",
        (("L1", "L2", "L3", "L4"), (1, 2, 4, 8)),
        {"fixed": 512},
        supports_pretrained=False,
        family="unet",
    ),
    _composable_spec(
        "composable",
        {},
        "One-stage detector from parts: backbone=, neck= (fpn|pan), head= (fcos|retinanet)",
    ),
    _composable_spec(
        "composable_resnet18_fpn_fcos",
        {"backbone": "resnet18", "neck": "fpn", "head": "fcos"},
        "ResNet-18 + FPN + FCOS head, P3-P5",
    ),
    _composable_spec(
        "composable_mobilenet_v3_pan_fcos",
        {
            "backbone": "mobilenet_v3_large",
            "neck": "pan",
            "head": "fcos",
            "neck_channels": 96,
            "head_convs": 2,
        },
        "MobileNetV3-Large + PAN (C2f) + light FCOS head, P3-P5: fast",
    ),
    _composable_spec(
        "composable_resnet18_pan_retinanet",
        {"backbone": "resnet18", "neck": "pan", "head": "retinanet"},
        "ResNet-18 + PAN (C2f) + RetinaNet head, P3-P5",
    ),
    _composable_spec(
        "composable_efficientnet_b0_pan_fcos",
        {"backbone": "efficientnet_b0", "neck": "pan", "head": "fcos", "downsample": "s2d"},
        "EfficientNet-B0 + PAN with space-to-depth downsampling + FCOS head: for small objects",
    ),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def _parse_composable(name: str) -> dict[str, Any] | None:
    """Options for a name "composable_<backbone>_<neck>_<head>", or None when it is not one."""
    rest = name.removeprefix("composable_")
    if rest == name:
        return None
    parts = rest.rsplit("_", 2)
    if len(parts) != 3:
        return None
    backbone, neck, head = parts
    if (
        backbone in composable.BACKBONE_NODES
        and neck in composable.NECKS
        and head in composable.HEADS
    ):
        return {"backbone": backbone, "neck": neck, "head": head}
    return None


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or of any "composable_<backbone>_<neck>_<head>" name."""
    if name in MODELS:
        return MODELS[name]
    options = _parse_composable(name)
    if options is not None:
        return _composable_spec(
            name,
            options,
            f"{options['backbone']} + {options['neck'].upper()} + {options['head']} head",
        )
    raise ModelConfigError(f"unknown model {name!r}; `studio models` lists them")


def list_models(task: str | None = None) -> list[ModelSpec]:
    """Registered models in a stable order, optionally only those for `task`."""
    if task is not None and task not in TASKS:
        raise ModelConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return [s for s in MODELS.values() if task is None or s.task == task]


def resize_for(spec: ModelSpec, image_size: int) -> dict[str, int]:
    """The model's resize settings scaled to `image_size` (min_size, or the fixed size)."""
    if "fixed" in spec.resize:
        return {"fixed": image_size}
    ratio = spec.resize["max_size"] / spec.resize["min_size"]
    return {"min_size": image_size, "max_size": round(image_size * ratio)}


def _construct(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    size = resize.get("fixed", resize.get("min_size", 0))
    if spec.family == "composable":
        # The only pretrained part of a composable detector is its backbone.
        return composable.build_composable(
            num_classes, size, pretrained or backbone_pretrained, options
        )
    if spec.family == "torchvision_detection":
        return build_torchvision_detector(
            spec.name,
            num_classes,
            pretrained=pretrained,
            backbone_pretrained=backbone_pretrained,
            resize=resize,
            options=options,
        )
    if spec.family == "torchvision_segmentation":
        return build_torchvision_segmenter(
            spec.name,
            num_classes,
            pretrained=pretrained,
            backbone_pretrained=backbone_pretrained,
            size=size,
            options=options,
        )
    try:
        net = UNet(num_classes + 1, **options)
    except TypeError as exc:
        raise ModelConfigError(f"unet: bad option ({exc})") from exc
    return SemanticSegmenter(net, num_classes, size)


def build_model(
    name: str,
    num_classes: int,
    *,
    weights: str | os.PathLike[str] = NO_WEIGHTS,
    backbone_weights: str = NO_WEIGHTS,
    image_size: int | None = None,
    **options: Any,
) -> BuiltModel:
    """Build model `name` for `num_classes` object classes (background not counted).

    weights: "none" (random init), "default" (torchvision's pretrained weights through its cache;
    when they cannot be had, random init plus a warning; for composable detectors, the ImageNet
    backbone) or a path to a state dict / Studio checkpoint (tensors whose shape differs, such as
    heads for another class count, keep their random init, with a warning).
    backbone_weights: "none" or "imagenet" (alias "default"): torchvision's ImageNet weights for
    the backbone, BatchNorm then frozen; raises WeightsUnavailable when they cannot be had.
    image_size: the input size in pixels (min_size, or the fixed size); the spec's default if None.
    options: model-specific, e.g. backbone=/neck=/head= for "composable", or keywords of the
    torchvision builder (score_thresh, trainable_backbone_layers...).

    Raises ModelConfigError, WeightsError or WeightsUnavailable (all StudioError).
    """
    spec = get_spec(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelConfigError(f"num_classes must be a positive integer, not {num_classes!r}")
    size = spec.default_image_size if image_size is None else int(image_size)
    if size < 32:
        raise ModelConfigError(f"image_size must be at least 32 pixels, not {size}")
    backbone_mode = str(backbone_weights).strip().lower()
    if backbone_mode not in (NO_WEIGHTS, *BACKBONE_PRETRAINED):
        raise ModelConfigError(
            f"backbone_weights must be 'none' or 'imagenet', not {backbone_weights!r}"
        )
    backbone_pretrained = backbone_mode != NO_WEIGHTS
    merged = {**spec.options, **options}
    resize = resize_for(spec, size)
    warnings: list[str] = []
    if backbone_pretrained and spec.family == "unet":
        warnings.append("unet has no pretrained backbone; backbone_weights ignored")
        backbone_pretrained = False

    def construct(pretrained: bool) -> nn.Module:
        return _construct(spec, num_classes, resize, pretrained, backbone_pretrained, dict(merged))

    class_names = None
    mode = str(weights).strip().lower()
    if is_path_like(weights):
        loaded = read_weights_file(weights)  # before the slow build: a bad file fails fast
        model = construct(False)
        warnings += load_matching(model, loaded.state_dict, str(weights))
        class_names = loaded.class_names
    elif mode == DEFAULT_WEIGHTS and not spec.supports_pretrained:
        warnings.append(f"{spec.name} has no pretrained weights; it starts from random init")
        model = construct(False)
    elif mode == DEFAULT_WEIGHTS:
        try:
            model = construct(True)
        except WeightsUnavailable as exc:
            warnings.append(f"{exc} Starting from random init instead.")
            model = construct(False)
    else:
        model = construct(False)
    return BuiltModel(
        model=model,
        spec=spec,
        warnings=warnings,
        image_size=size,
        resize=resize,
        options=merged,
        class_names=class_names,
    )


# Parameter-name prefixes of each group, across the model families built here: torchvision's
# two-stage and one-stage detectors (backbone.body / backbone.fpn), SSD (backbone.features /
# backbone.extra), the composable detector (backbone.body / backbone.neck), torchvision
# segmenters (net.backbone) and the UNet (net.encoder / net.decoder). Anything else is head.
_GROUP_PREFIXES = {
    "backbone": ("backbone.body.", "backbone.features.", "net.backbone.", "net.encoder."),
    "neck": ("backbone.fpn.", "backbone.neck.", "backbone.extra.", "net.decoder."),
}


def param_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Split a built model's parameters into "backbone", "neck" and "head" (every key present,
    possibly empty), for freezing schedules and per-group learning rates.

    All parameters are listed, including those torchvision froze at build time
    (requires_grad False, e.g. the stem of a pretrained ResNet).
    """
    groups: dict[str, list[nn.Parameter]] = {"backbone": [], "neck": [], "head": []}
    for pname, param in model.named_parameters():
        group = next(
            (g for g, prefixes in _GROUP_PREFIXES.items() if pname.startswith(prefixes)), "head"
        )
        groups[group].append(param)
    return groups

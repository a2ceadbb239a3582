"""The built-in models: their specs, and how each family of them is built.

Registered by registry.py at import, through the same `register_model` a plugin uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from studio.ml.models import composable
from studio.ml.models.segmentation import SemanticSegmenter, UNet
from studio.ml.models.spec import ModelConfigError, ModelSpec
from studio.ml.models.torchvision_models import (
    build_torchvision_detector,
    build_torchvision_segmenter,
)
from studio.ml.tasks import Task


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


def composable_spec(
    name: str, options: Mapping[str, Any], description: str, supports_pretrained: bool = True
) -> ModelSpec:
    return _spec(
        name,
        Task.DETECTION,
        description,
        (composable.LEVELS, composable.STRIDES),
        {"min_size": 640, "max_size": 640},
        family="composable",
        options=options,
        supports_pretrained=supports_pretrained,
    )


_SEG = "torchvision_segmentation"
BUILTIN_SPECS = [
    _spec(
        "fasterrcnn_resnet50_fpn_v2",
        Task.DETECTION,
        "Faster R-CNN v2, ResNet-50 FPN: two-stage, accurate, slow",
        _RCNN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fasterrcnn_mobilenet_v3_large_fpn",
        Task.DETECTION,
        "Faster R-CNN, MobileNetV3-Large FPN: light two-stage; coarse (stride 32) features",
        _MOBILE_FPN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        Task.DETECTION,
        "Faster R-CNN, MobileNetV3-Large FPN at 320 px: fastest two-stage, large objects only",
        _MOBILE_FPN_LEVELS,
        _rcnn_resize(320, 640),
    ),
    _spec(
        "retinanet_resnet50_fpn_v2",
        Task.DETECTION,
        "RetinaNet v2, ResNet-50 FPN: one-stage, anchors and focal loss",
        _ONE_STAGE_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "fcos_resnet50_fpn",
        Task.DETECTION,
        "FCOS, ResNet-50 FPN: one-stage, anchor-free",
        _ONE_STAGE_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "ssdlite320_mobilenet_v3_large",
        Task.DETECTION,
        "SSDlite, MobileNetV3-Large at 320x320: tiny and fast, weak on small objects",
        _SSDLITE_LEVELS,
        {"fixed": 320},
    ),
    _spec(
        "maskrcnn_resnet50_fpn_v2",
        Task.INSTANCE_SEGMENTATION,
        "Mask R-CNN v2, ResNet-50 FPN: boxes and per-instance masks",
        _RCNN_LEVELS,
        _rcnn_resize(800, 1333),
    ),
    _spec(
        "maskrcnn_mobilenet_v3_large_fpn",
        Task.INSTANCE_SEGMENTATION,
        "Mask R-CNN, MobileNetV3-Large FPN (P3-P6): light boxes and masks, for a CPU",
        (("P3", "P4", "P5a", "P5b", "P6"), (8, 16, 32, 32, 64)),
        _rcnn_resize(512, 853),
    ),
    _spec(
        "deeplabv3_resnet50",
        Task.SEMANTIC_SEGMENTATION,
        "DeepLabV3, dilated ResNet-50 (stride 8): accurate, heavy",
        (("C5",), (8,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "deeplabv3_mobilenet_v3_large",
        Task.SEMANTIC_SEGMENTATION,
        "DeepLabV3, dilated MobileNetV3-Large (stride 16)",
        (("C5",), (16,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "lraspp_mobilenet_v3_large",
        Task.SEMANTIC_SEGMENTATION,
        "LR-ASPP, MobileNetV3-Large: the lightest segmenter",
        (("C3", "C5"), (8, 16)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "fcn_resnet50",
        Task.SEMANTIC_SEGMENTATION,
        "FCN, dilated ResNet-50 (stride 8)",
        (("C5",), (8,)),
        {"fixed": 520},
        family=_SEG,
    ),
    _spec(
        "unet",
        Task.SEMANTIC_SEGMENTATION,
        "Small UNet, 4 levels, full-resolution output; trains from scratch",
        (("L1", "L2", "L3", "L4"), (1, 2, 4, 8)),
        {"fixed": 512},
        supports_pretrained=False,
        family="unet",
    ),
    composable_spec(
        "composable",
        {},
        "One-stage detector from parts: backbone=, neck= (fpn|pan), head= (fcos|retinanet)",
    ),
    composable_spec(
        "composable_resnet18_fpn_fcos",
        {"backbone": "resnet18", "neck": "fpn", "head": "fcos"},
        "ResNet-18 + FPN + FCOS head, P3-P5",
    ),
    composable_spec(
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
    composable_spec(
        "composable_mobilenet_v2_pan_fcos",
        {
            "backbone": "mobilenet_v2",
            "neck": "pan",
            "head": "fcos",
            "neck_channels": 96,
            "head_convs": 2,
        },
        "MobileNetV2 + PAN (C2f) + light FCOS head, P3-P5: fast",
    ),
    composable_spec(
        "composable_cspnet_pan_fcos",
        {
            "backbone": "cspnet_n",
            "neck": "pan",
            "head": "fcos",
            "neck_channels": 64,
            "head_convs": 2,
        },
        "Small CSP backbone + PAN + light FCOS head, P3-P5: learns from scratch on a CPU",
        supports_pretrained=False,
    ),
    composable_spec(
        "composable_resnet18_pan_retinanet",
        {"backbone": "resnet18", "neck": "pan", "head": "retinanet"},
        "ResNet-18 + PAN (C2f) + RetinaNet head, P3-P5",
    ),
    composable_spec(
        "composable_efficientnet_b0_pan_fcos",
        {"backbone": "efficientnet_b0", "neck": "pan", "head": "fcos", "downsample": "s2d"},
        "EfficientNet-B0 + PAN with space-to-depth downsampling + FCOS head: for small objects",
    ),
]


# (spec, num_classes, resize (see `resize_for`), pretrained, backbone_pretrained, options)
# -> a module following the package's contract. `pretrained`: the model's pretrained
# weights; `backbone_pretrained`: the backbone's ImageNet weights (raise
# WeightsUnavailable when they cannot be had).
ModelBuilder = Callable[[ModelSpec, int, dict[str, int], bool, bool, dict[str, Any]], nn.Module]


def _size_of(resize: dict[str, int]) -> int:
    return resize.get("fixed", resize.get("min_size", 0))


def _build_composable(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    # The only pretrained part of a composable detector is its backbone.
    return composable.build_composable(
        num_classes, _size_of(resize), pretrained or backbone_pretrained, options
    )


def _build_torchvision_detector(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    return build_torchvision_detector(
        spec.name,
        num_classes,
        pretrained=pretrained,
        backbone_pretrained=backbone_pretrained,
        resize=resize,
        options=options,
    )


def _build_torchvision_segmenter(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    return build_torchvision_segmenter(
        spec.name,
        num_classes,
        pretrained=pretrained,
        backbone_pretrained=backbone_pretrained,
        size=_size_of(resize),
        options=options,
    )


def _build_unet(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    try:
        net = UNet(num_classes + 1, **options)
    except TypeError as exc:
        raise ModelConfigError(f"unet: bad option ({exc})") from exc
    return SemanticSegmenter(net, num_classes, _size_of(resize))


# How each built-in family is built; a registered model may bring its own builder.
FAMILY_BUILDERS: dict[str, ModelBuilder] = {
    "composable": _build_composable,
    "torchvision_detection": _build_torchvision_detector,
    "torchvision_segmentation": _build_torchvision_segmenter,
    "unet": _build_unet,
}

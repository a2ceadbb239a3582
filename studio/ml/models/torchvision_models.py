"""torchvision's detection and segmentation models, built for a class count and with their
predictor heads replaced for new classes as in torchvision's fine-tuning tutorial."""

from __future__ import annotations

import inspect
import math
from functools import partial

from torch import nn
from torchvision.models import get_model_builder
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteClassificationHead
from torchvision.models.segmentation import LRASPP
from torchvision.ops import FrozenBatchNorm2d

from studio.core.errors import StudioError
from studio.ml.models.segmentation import SemanticSegmenter
from studio.ml.models.weights import default_weights, ensure_cached

# Backbone architecture of each model, for backbone_weights="imagenet".
BACKBONE_ARCH = {
    "fasterrcnn_resnet50_fpn_v2": "resnet50",
    "fasterrcnn_mobilenet_v3_large_fpn": "mobilenet_v3_large",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "mobilenet_v3_large",
    "retinanet_resnet50_fpn_v2": "resnet50",
    "fcos_resnet50_fpn": "resnet50",
    "ssdlite320_mobilenet_v3_large": "mobilenet_v3_large",
    "maskrcnn_resnet50_fpn_v2": "resnet50",
    "maskrcnn_mobilenet_v3_large_fpn": "mobilenet_v3_large",
    "deeplabv3_resnet50": "resnet50",
    "deeplabv3_mobilenet_v3_large": "mobilenet_v3_large",
    "lraspp_mobilenet_v3_large": "mobilenet_v3_large",
    "fcn_resnet50": "resnet50",
}
_WITH_AUX = ("deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "fcn_resnet50")
# The class each detection builder constructs: its keywords are valid options too.
_DETECTOR_CLASS = {
    "fasterrcnn_resnet50_fpn_v2": FasterRCNN,
    "fasterrcnn_mobilenet_v3_large_fpn": FasterRCNN,
    "fasterrcnn_mobilenet_v3_large_320_fpn": FasterRCNN,
    "retinanet_resnet50_fpn_v2": RetinaNet,
    "fcos_resnet50_fpn": FCOS,
    "ssdlite320_mobilenet_v3_large": SSD,
    "maskrcnn_resnet50_fpn_v2": MaskRCNN,
    "maskrcnn_mobilenet_v3_large_fpn": MaskRCNN,
}
# Set by build_model itself, not through options.
_RESERVED = {
    "self",
    "args",
    "kwargs",
    "weights",
    "weights_backbone",
    "num_classes",
    "progress",
    "backbone",
    "size",
}


class TorchvisionOptionError(StudioError, ValueError):
    """An option the torchvision builder does not accept."""


def maskrcnn_mobilenet_v3_large_fpn(
    *,
    weights: object = None,
    weights_backbone: object = None,
    num_classes: int = 91,
    progress: bool = True,
    trainable_backbone_layers: int | None = None,
    **kwargs: object,
) -> MaskRCNN:
    """Mask R-CNN on a MobileNetV3-Large FPN: a light instance segmenter (torchvision has no
    such builder). Built like torchvision's fasterrcnn_mobilenet_v3_large_fpn, but the FPN
    also takes the stride-8 and stride-16 stages (P3, P4, then two maps at stride 32 and a
    pooled one at 64) so that small objects get fine features and masks. There are no COCO
    weights for it: `weights` must be None; `weights_backbone`: ImageNet weights (BatchNorm
    then frozen). Other keywords go to MaskRCNN (min_size, max_size, ...)."""
    if weights is not None:
        raise ValueError("maskrcnn_mobilenet_v3_large_fpn has no pretrained weights")
    is_trained = weights_backbone is not None
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 3 if is_trained else 6
    backbone = mobilenet_backbone(
        backbone_name="mobilenet_v3_large",
        weights=weights_backbone,
        fpn=True,
        norm_layer=FrozenBatchNorm2d if is_trained else nn.BatchNorm2d,
        trainable_layers=trainable_backbone_layers,
        returned_layers=[2, 3, 4, 5],
    )
    anchors = AnchorGenerator(
        ((16, 24), (32, 48), (64, 96), (128, 192), (256, 384)), ((0.5, 1.0, 2.0),) * 5
    )
    return MaskRCNN(backbone, num_classes, rpn_anchor_generator=anchors, **kwargs)


# Models built here from torchvision's parts, by the same keywords as its builders.
LOCAL_BUILDERS = {"maskrcnn_mobilenet_v3_large_fpn": maskrcnn_mobilenet_v3_large_fpn}


def _builder(name: str):
    return LOCAL_BUILDERS.get(name) or get_model_builder(name)


def _check_options(name: str, options: dict[str, object]) -> None:
    # torchvision's constructors pass **kwargs down to layers that swallow unknown keywords, so a
    # misspelt option would otherwise be silently ignored.
    builder = _builder(name)
    allowed = set(inspect.signature(builder).parameters)
    if name in _DETECTOR_CLASS:
        allowed |= set(inspect.signature(_DETECTOR_CLASS[name].__init__).parameters)
    allowed -= _RESERVED
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TorchvisionOptionError(
            f"{name}: unknown option {', '.join(unknown)}; it accepts: {', '.join(sorted(allowed))}"
        )


def _call_builder(name: str, **kwargs: object) -> nn.Module:
    try:
        return _builder(name)(**kwargs)
    except (TypeError, ValueError) as exc:
        # Unknown keywords surface as TypeError deep in the constructors, conflicting ones (e.g.
        # aux_loss=False with weights that have an aux head) as ValueError.
        raise TorchvisionOptionError(f"{name}: bad option ({exc})") from exc


def _init_cls_logits(conv: nn.Conv2d, prior: float = 0.01) -> None:
    # torchvision's RetinaNet/FCOS init: a low prior probability keeps the focal loss stable early.
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.constant_(conv.bias, -math.log((1 - prior) / prior))


def replace_detection_heads(model: nn.Module, total_classes: int) -> None:
    """Give `model` fresh class predictors for `total_classes` (background included), in place."""
    if isinstance(model, FasterRCNN):  # MaskRCNN too
        box = model.roi_heads.box_predictor
        model.roi_heads.box_predictor = FastRCNNPredictor(box.cls_score.in_features, total_classes)
        if isinstance(model, MaskRCNN):
            conv = model.roi_heads.mask_predictor.conv5_mask
            model.roi_heads.mask_predictor = MaskRCNNPredictor(
                conv.in_channels, conv.out_channels, total_classes
            )
    elif isinstance(model, RetinaNet | FCOS):
        cls_head = model.head.classification_head
        old = cls_head.cls_logits
        cls_head.cls_logits = nn.Conv2d(
            old.in_channels, cls_head.num_anchors * total_classes, 3, padding=1
        )
        _init_cls_logits(cls_head.cls_logits)
        cls_head.num_classes = total_classes
    elif isinstance(model, SSD):
        old_head = model.head.classification_head
        # Each prediction block starts with a depthwise conv whose input width is the level's.
        in_channels = [block[0][0].in_channels for block in old_head.module_list]
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        model.head.classification_head = SSDLiteClassificationHead(
            in_channels, model.anchor_generator.num_anchors_per_location(), total_classes, norm
        )
    else:
        raise TypeError(f"no head replacement for {type(model).__name__}")


def replace_segmentation_heads(net: nn.Module, total_classes: int) -> None:
    """Give a torchvision segmentation network fresh final 1x1 convs for `total_classes`."""
    if isinstance(net, LRASPP):
        head = net.classifier
        head.low_classifier = nn.Conv2d(head.low_classifier.in_channels, total_classes, 1)
        head.high_classifier = nn.Conv2d(head.high_classifier.in_channels, total_classes, 1)
        return
    for seq in (net.classifier, getattr(net, "aux_classifier", None)):
        if seq is not None:
            seq[-1] = nn.Conv2d(seq[-1].in_channels, total_classes, 1)


def _backbone_weights(name: str, backbone_pretrained: bool) -> object:
    if not backbone_pretrained:
        return None
    weights = default_weights(BACKBONE_ARCH[name])
    ensure_cached(weights, f"the {BACKBONE_ARCH[name]} backbone of {name}")
    return weights


def build_torchvision_detector(
    name: str,
    num_classes: int,
    *,
    pretrained: bool,
    backbone_pretrained: bool,
    resize: dict[str, int],
    options: dict[str, object],
) -> nn.Module:
    """torchvision detector `name` for `num_classes` object classes (+ background).

    `pretrained`: COCO weights (WeightsUnavailable when offline and not cached) with new heads.
    `resize`: {"min_size", "max_size"} or {"fixed"}; other `options` go to the builder.
    """
    _check_options(name, options)
    kwargs = dict(options)
    fixed = resize.get("fixed")
    if fixed is None:
        kwargs.setdefault("min_size", resize["min_size"])
        kwargs.setdefault("max_size", resize["max_size"])
    model = _build_with_heads(
        name, num_classes + 1, pretrained, backbone_pretrained, kwargs, replace_detection_heads
    )
    if fixed is not None:
        # SSD's builder ignores a size argument; its transform is what fixes the input size.
        model.transform.min_size = (fixed,)
        model.transform.max_size = fixed
        model.transform.fixed_size = (fixed, fixed)
    return model


def build_torchvision_segmenter(
    name: str,
    num_classes: int,
    *,
    pretrained: bool,
    backbone_pretrained: bool,
    size: int,
    options: dict[str, object],
) -> SemanticSegmenter:
    """torchvision segmentation network `name`, wrapped in SemanticSegmenter at size x size.

    Option `aux_loss` (default True where the model has an auxiliary head)."""
    _check_options(name, options)
    kwargs = dict(options)
    if name in _WITH_AUX:
        kwargs.setdefault("aux_loss", True)
    net = _build_with_heads(
        name, num_classes + 1, pretrained, backbone_pretrained, kwargs, replace_segmentation_heads
    )
    return SemanticSegmenter(net, num_classes, size)


def _build_with_heads(
    name: str,
    total: int,
    pretrained: bool,
    backbone_pretrained: bool,
    kwargs: dict,
    replace_heads,
):
    """Pretrained: torchvision's weights, then new heads for `total` classes (the
    fine-tuning tutorial's recipe). Otherwise: built for `total` classes, with the
    backbone's ImageNet weights if asked."""
    if pretrained and name in LOCAL_BUILDERS:  # no whole-model weights: the backbone's
        pretrained, backbone_pretrained = False, True
    if pretrained:
        weights = default_weights(name)
        ensure_cached(weights, name)
        model = _call_builder(name, weights=weights, weights_backbone=None, **kwargs)
        replace_heads(model, total)
        return model
    return _call_builder(
        name,
        weights=None,
        weights_backbone=_backbone_weights(name, backbone_pretrained),
        num_classes=total,
        **kwargs,
    )

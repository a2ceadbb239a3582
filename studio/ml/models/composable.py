"""The composable detector: any torchvision classification backbone, an FPN or PAN neck,
optional attention (SE, ECA or CBAM) on each neck level, and torchvision's FCOS or RetinaNet
head, on feature levels P3/P4/P5 (strides 8/16/32)."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import get_model
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection._utils import retrieve_out_channels
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops import FeaturePyramidNetwork

from studio.core.errors import StudioError
from studio.ml.models.attention import ATTENTIONS, make_attention
from studio.ml.models.blocks import C3, SPPF, C2f, Conv, SpaceToDepth
from studio.ml.models.cspnet import SCRATCH_BACKBONES, build_cspnet
from studio.ml.models.weights import default_weights, ensure_cached, freeze_batchnorm

LEVELS = ("P3", "P4", "P5")
STRIDES = (8, 16, 32)

# Nodes (module paths for create_feature_extractor) giving each family's last feature map at
# strides 8, 16 and 32. Checked by tests/ml/test_models.py::test_composable_backbone_strides.
_RESNET = ("layer2", "layer3", "layer4")
_EFFICIENTNET = ("features.3", "features.5", "features.7")
_REGNET = ("trunk_output.block2", "trunk_output.block3", "trunk_output.block4")
BACKBONE_NODES: dict[str, tuple[str, str, str]] = {
    "resnet18": _RESNET,
    "resnet34": _RESNET,
    "resnet50": _RESNET,
    # features.17 (320 ch) rather than the 1280-ch features.18: the neck reduces channels anyway.
    "mobilenet_v2": ("features.6", "features.13", "features.17"),
    "mobilenet_v3_large": ("features.6", "features.12", "features.16"),
    "mobilenet_v3_small": ("features.3", "features.8", "features.12"),
    **{f"efficientnet_b{i}": _EFFICIENTNET for i in range(6)},
    "shufflenet_v2_x1_0": ("stage2", "stage3", "stage4"),
    "regnet_y_400mf": _REGNET,
    "regnet_y_800mf": _REGNET,
    "regnet_y_1_6gf": _REGNET,
    "regnet_x_400mf": _REGNET,
    "convnext_tiny": ("features.3", "features.5", "features.7"),
    # Studio's own backbones for training from scratch (cspnet.py): no ImageNet file, no
    # nodes to cut (they return C3..C5 themselves).
    **{name: () for name in SCRATCH_BACKBONES},
}
NECKS = ("fpn", "pan")
HEADS = ("fcos", "retinanet")

DEFAULT_OPTIONS: dict[str, object] = {
    "backbone": "resnet18",
    "neck": "fpn",
    "head": "fcos",
    "neck_channels": 128,  # every P level; a multiple of 16 for the heads' GroupNorm
    "downsample": "conv",  # PAN bottom-up: "conv" (stride-2 conv) or "s2d" (SpaceToDepth)
    "block": "c2f",  # PAN block: "c2f" or "c3"
    "depth": 1,  # bottlenecks per PAN block
    "head_convs": 4,  # FCOS tower depth
    "attention": "none",  # after each neck level: none, se, eca or cbam (models/attention.py)
}


class ComposableError(StudioError, ValueError):
    """An unknown backbone/neck/head or a bad option for the composable detector."""


def build_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """The classification model `name` cut into a feature extractor returning
    OrderedDict C3/C4/C5 ([N,C_i,H/8,W/8], [N,C_i,H/16,W/16], [N,C_i,H/32,W/32]).

    With `pretrained`, loads torchvision's ImageNet DEFAULT weights (WeightsUnavailable when
    offline and not cached) and freezes BatchNorm.
    """
    if name not in BACKBONE_NODES:
        raise ComposableError(
            f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONE_NODES)}"
        )
    if name in SCRATCH_BACKBONES:
        return build_cspnet(name)  # no pretrained file exists: the registry says so
    weights = None
    if pretrained:
        weights = default_weights(name)
        ensure_cached(weights, f"backbone {name}")
    model = get_model(name, weights=weights)
    nodes = {
        node: level for node, level in zip(BACKBONE_NODES[name], ("C3", "C4", "C5"), strict=True)
    }
    body = create_feature_extractor(model, return_nodes=nodes)
    if pretrained:
        freeze_batchnorm(body)
    else:
        # MobileNetV3 and EfficientNet keep running statistics with momentum 0.01, made
        # for 600-epoch ImageNet runs: after the few hundred steps of a short run from
        # scratch they lag far behind the weights, and evaluation (which uses them)
        # finds nothing. torchvision's usual 0.1 follows within a few dozen steps.
        for m in body.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None:
                m.momentum = max(m.momentum, 0.1)
    return body


def _resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    # By size rather than scale factor: strided convs round odd sizes up, so 2x is not exact.
    return F.interpolate(x, size=ref.shape[-2:], mode="nearest")


class FPNNeck(nn.Module):
    """torchvision's FeaturePyramidNetwork on C3..C5, renamed to P3..P5 (`channels` each)."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.fpn = FeaturePyramidNetwork(in_channels, channels)

    def forward(self, feats: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        out = self.fpn(OrderedDict(feats))
        return OrderedDict(zip(LEVELS, out.values(), strict=True))


class PANNeck(nn.Module):
    """YOLOv8-style PAN: SPPF on C5, a top-down path (upsample, concat, C2f/C3) then a bottom-up
    path (downsample, concat, C2f/C3). Returns OrderedDict P3..P5 with `channels` each."""

    def __init__(
        self,
        in_channels: list[int],
        channels: int,
        block: str = "c2f",
        depth: int = 1,
        downsample: str = "conv",
    ):
        super().__init__()
        c3, c4, c5 = in_channels
        blocks = {"c2f": C2f, "c3": partial(C3, shortcut=False)}
        if block not in blocks:
            raise ComposableError(f"unknown PAN block {block!r}; choose c2f or c3")
        downs = {"conv": partial(Conv, k=3, s=2), "s2d": SpaceToDepth}
        if downsample not in downs:
            raise ComposableError(f"unknown downsample {downsample!r}; choose conv or s2d")
        make, down = blocks[block], downs[downsample]
        self.sppf = SPPF(c5, channels)
        self.td4 = make(channels + c4, channels, n=depth)
        self.td3 = make(channels + c3, channels, n=depth)
        self.down3 = down(channels, channels)
        self.bu4 = make(2 * channels, channels, n=depth)
        self.down4 = down(channels, channels)
        self.bu5 = make(2 * channels, channels, n=depth)

    def forward(self, feats: dict[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        c3, c4, c5 = feats["C3"], feats["C4"], feats["C5"]
        t5 = self.sppf(c5)
        t4 = self.td4(torch.cat((_resize_to(t5, c4), c4), dim=1))
        p3 = self.td3(torch.cat((_resize_to(t4, c3), c3), dim=1))
        d3 = self.down3(p3)
        p4 = self.bu4(torch.cat((_resize_to(d3, t4), t4), dim=1))
        d4 = self.down4(p4)
        p5 = self.bu5(torch.cat((_resize_to(d4, t5), t5), dim=1))
        return OrderedDict((("P3", p3), ("P4", p4), ("P5", p5)))


class BackboneWithNeck(nn.Module):
    """Backbone body plus neck, as torchvision's one-stage detectors expect their `backbone`:
    [N,3,H,W] -> OrderedDict P3..P5 of [N,out_channels,H/s,W/s], s = 8, 16, 32.

    With `attention` ("se", "eca" or "cbam"), one attention module per level reweights the
    neck's output (`attention.P3`...) before the head reads it. Without ("none") there is no
    `attention` child at all, so the state dicts of earlier runs still load."""

    def __init__(
        self, body: nn.Module, neck: nn.Module, out_channels: int, attention: str = "none"
    ):
        super().__init__()
        self.body = body
        self.neck = neck
        self.out_channels = out_channels
        self.attention: nn.ModuleDict | None = None
        if attention != "none":
            self.attention = nn.ModuleDict(
                {level: make_attention(attention, out_channels) for level in LEVELS}
            )

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        levels = self.neck(self.body(x))
        if self.attention is None:
            return levels
        return OrderedDict((k, self.attention[k](v)) for k, v in levels.items())


def _retinanet_anchors() -> AnchorGenerator:
    # Without P6/P7 the three levels share the 32..512 px range in half-octave steps so large
    # objects still have anchors to match.
    sizes = [int(round(32 * 2 ** (k / 2))) for k in range(9)]
    return AnchorGenerator(
        tuple(tuple(sizes[3 * i : 3 * i + 3]) for i in range(3)), ((0.5, 1.0, 2.0),) * 3
    )


def check_names(options: dict[str, object]) -> None:
    """Refuse an unknown backbone, neck, head or attention before anything is built."""
    opts = {**DEFAULT_OPTIONS, **options}
    for key, known in (
        ("backbone", BACKBONE_NODES), ("neck", NECKS), ("head", HEADS), ("attention", ATTENTIONS),
    ):  # fmt: skip
        if str(opts[key]) not in known:
            raise ComposableError(f"unknown {key} {opts[key]!r}; choose one of: {', '.join(known)}")


def build_composable(
    num_classes: int,
    image_size: int,
    backbone_pretrained: bool,
    options: dict[str, object],
) -> nn.Module:
    """A FCOS or RetinaNet detector for `num_classes` object classes (plus background index 0)
    that resizes images to fit in image_size x image_size. `options` as DEFAULT_OPTIONS, plus any
    keyword of torchvision's FCOS/RetinaNet (score_thresh, nms_thresh, detections_per_img...)."""
    opts = {**DEFAULT_OPTIONS, **options}
    backbone_name = str(opts.pop("backbone"))
    neck_name = str(opts.pop("neck"))
    head_name = str(opts.pop("head"))
    channels = int(opts.pop("neck_channels"))  # type: ignore[arg-type]
    downsample = str(opts.pop("downsample"))
    block = str(opts.pop("block"))
    depth = int(opts.pop("depth"))  # type: ignore[arg-type]
    head_convs = int(opts.pop("head_convs"))  # type: ignore[arg-type]
    attention = str(opts.pop("attention"))
    if neck_name not in NECKS:
        raise ComposableError(f"unknown neck {neck_name!r}; choose one of: {', '.join(NECKS)}")
    if head_name not in HEADS:
        raise ComposableError(f"unknown head {head_name!r}; choose one of: {', '.join(HEADS)}")
    if channels <= 0 or channels % 16:
        raise ComposableError(f"neck_channels must be a positive multiple of 16, not {channels}")
    if attention not in ATTENTIONS:
        raise ComposableError(
            f"unknown attention {attention!r}; choose one of: {', '.join(ATTENTIONS)}"
        )

    body = build_backbone(backbone_name, pretrained=backbone_pretrained)
    in_channels = retrieve_out_channels(body, (64, 64))
    if neck_name == "fpn":
        neck: nn.Module = FPNNeck(in_channels, channels)
    else:
        neck = PANNeck(in_channels, channels, block=block, depth=depth, downsample=downsample)
    backbone = BackboneWithNeck(body, neck, channels, attention)

    # Index 0 is background in torchvision's one-stage heads too: it is never a positive, so
    # labels 1..num_classes keep the same meaning as in the two-stage models.
    total = num_classes + 1
    # Scores from 0.05 up, as COCO evaluations use (torchvision's FCOS keeps 0.2): early in
    # a short run a right box scores low, and AP counts it only if it is returned at all.
    common = {"min_size": image_size, "max_size": image_size, "score_thresh": 0.05, **opts}
    try:
        if head_name == "fcos":
            anchors = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
            head = FCOSHead(channels, 1, total, num_convs=head_convs)
            return FCOS(backbone, total, anchor_generator=anchors, head=head, **common)
        anchors = _retinanet_anchors()
        head = RetinaNetHead(
            channels,
            anchors.num_anchors_per_location()[0],
            total,
            norm_layer=partial(nn.GroupNorm, 16),
        )
        return RetinaNet(backbone, total, anchor_generator=anchors, head=head, **common)
    except TypeError as exc:
        raise ComposableError(f"composable detector: bad option ({exc})") from exc

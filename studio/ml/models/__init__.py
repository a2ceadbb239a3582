"""Model registry: every model Studio trains, built for a class count, following one contract.

Every built model takes a list of float [3,H,W] images in [0,1] (any sizes) and, as in
torchvision's detection API:

- detection / instance segmentation: train `model(images, targets)` with targets[i] =
  {"boxes": float [N,4] xyxy pixels, "labels": int64 [N] in 1..num_classes (, "masks": uint8
  [N,H,W])} -> dict of scalar losses; eval `model(images)` -> [{"boxes", "labels", "scores"
  (, "masks": float [N,1,H,W] probabilities)}] in input pixels.
- semantic segmentation (SemanticSegmenter): targets[i] = {"sem_mask": int64 [H,W], 0 =
  background, 1..num_classes, 255 = ignore} -> {"loss_ce" (, "loss_aux")}; eval ->
  [{"sem_seg": int64 [H,W], "sem_logits": float [num_classes+1,H,W]}].

Losses are meant to be summed. `param_groups(model)` splits parameters into backbone/neck/head.
`register_model(spec, build)` adds a model (a plugin's, for one).
"""

from studio.ml.models.blocks import C3, SPPF, Bottleneck, C2f, Conv, SpaceToDepth
from studio.ml.models.composable import (
    BACKBONE_NODES,
    HEADS,
    NECKS,
    BackboneWithNeck,
    ComposableError,
)
from studio.ml.models.registry import (
    MODELS,
    TASKS,
    BuiltModel,
    ModelBuilder,
    ModelConfigError,
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    param_groups,
    register_model,
)
from studio.ml.models.segmentation import SemanticSegmenter, UNet
from studio.ml.models.summary import (
    PartSummary,
    complexity,
    describe_model,
    format_description,
    format_model_table,
    model_complexity,
)
from studio.ml.models.weights import WeightsError, WeightsUnavailable

__all__ = [
    "BACKBONE_NODES",
    "HEADS",
    "MODELS",
    "NECKS",
    "TASKS",
    "BackboneWithNeck",
    "Bottleneck",
    "BuiltModel",
    "C2f",
    "C3",
    "ComposableError",
    "Conv",
    "ModelBuilder",
    "ModelConfigError",
    "ModelSpec",
    "PartSummary",
    "SPPF",
    "SemanticSegmenter",
    "SpaceToDepth",
    "UNet",
    "WeightsError",
    "WeightsUnavailable",
    "build_model",
    "complexity",
    "describe_model",
    "format_description",
    "format_model_table",
    "get_spec",
    "list_models",
    "model_complexity",
    "param_groups",
    "register_model",
]

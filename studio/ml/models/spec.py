"""What the registry knows about a model (`ModelSpec`) and what building one gives
(`BuiltModel`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from studio.core.errors import StudioError
from studio.ml.models.groups import param_groups


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

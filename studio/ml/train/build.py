"""Building the model a training config names, through the model registry.

`TrainConfig.model` is a registry name (see `studio.ml.models.list_models`; plugins register
their own). A config or checkpoint is data from a file: a name of the old
"package.module:function" form is refused, never imported, so a run folder cannot make
Studio run code of its choosing.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from studio.core.errors import StudioError
from studio.ml.models import build_model, get_spec, param_groups
from studio.ml.train.config import TrainConfig


@dataclass(slots=True)
class ModelBundle:
    """A built model and what training needs to know about it."""

    model: nn.Module
    task: str
    image_size: int | None  # shorter (or fixed) input side in pixels
    groups: dict[str, list[nn.Parameter]]  # "backbone" / "neck" / "head"
    warnings: list[str]


def is_factory(model: str) -> bool:
    """Whether `model` has the "package.module:function" form, which is refused."""
    return ":" in model


def _check_name(model: str) -> None:
    if is_factory(model):
        raise StudioError(
            f"model {model!r} names a module and function: Studio builds only registered "
            "models (`studio models` lists them; a plugin registers its own), it never "
            "imports code named by a config or checkpoint"
        )


def model_task(model: str, fallback: str = "") -> str:
    """The task of registry model `model`. Raises a StudioError for an unknown name or a
    "module:function" one. (`fallback` is kept for callers of the factory days.)"""
    _check_name(model)
    return get_spec(model).task


def build_for_config(cfg: TrainConfig, num_classes: int, *, pretrained: bool = True) -> ModelBundle:
    """Build cfg.model for `num_classes` classes through the model registry.
    `pretrained=False` skips the weights (a checkpoint's state dict is loaded over the model
    right after). Raises StudioError for an unknown or "module:function" name."""
    _check_name(cfg.model)
    weights = cfg.weights if pretrained else "none"
    backbone = cfg.backbone_weights if pretrained else "none"
    built = build_model(
        cfg.model,
        num_classes,
        weights=weights,
        backbone_weights=backbone,
        image_size=cfg.image_size,
        **dict(cfg.model_options),
    )
    size = built.image_size or cfg.image_size
    return ModelBundle(
        built.model, built.spec.task, size, param_groups(built.model), list(built.warnings)
    )

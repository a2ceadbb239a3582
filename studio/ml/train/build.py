"""Building the model a training config names: a registry model or a factory of one's own.

`TrainConfig.model` is a registry name (see `studio.ml.models.list_models`) or
"package.module:function", a factory called like `build_model` (the tests' tiny models).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

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
    """Whether `model` names a "package.module:function" factory, not a registry model."""
    return ":" in model


def model_task(model: str, fallback: str = "") -> str:
    """The task of registry model `model`; `fallback` for a factory (its task is known
    only once it is built). Raises a StudioError for an unknown name."""
    if is_factory(model):
        return fallback
    return get_spec(model).task


def build_for_config(cfg: TrainConfig, num_classes: int, *, pretrained: bool = True) -> ModelBundle:
    """Build cfg.model for `num_classes` classes through the model registry, or through
    a "package.module:function" factory called like `build_model` (returning a
    BuiltModel, or a bare module when cfg.task names the task). `pretrained=False` skips
    the weights (a checkpoint's state dict is loaded over the model right after)."""
    weights = cfg.weights if pretrained else "none"
    backbone = cfg.backbone_weights if pretrained else "none"
    factory = build_model
    if is_factory(cfg.model):
        mod_name, _, fn_name = cfg.model.partition(":")
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise StudioError(f"cannot import model factory {cfg.model!r}: {e}") from None
        name_args: tuple[Any, ...] = ()
    else:
        name_args = (cfg.model,)
    built = factory(
        *name_args,
        num_classes,
        weights=weights,
        backbone_weights=backbone,
        image_size=cfg.image_size,
        **dict(cfg.model_options),
    )
    if isinstance(built, nn.Module):
        if not cfg.task:
            raise StudioError(f"model factory {cfg.model!r} returns a bare module; set task")
        return ModelBundle(built, cfg.task, cfg.image_size, param_groups(built), [])
    size = getattr(built, "image_size", None) or cfg.image_size
    return ModelBundle(
        built.model, built.spec.task, size, param_groups(built.model), list(built.warnings)
    )

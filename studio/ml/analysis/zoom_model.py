"""What the zoom-scale analysis needs to know of a model: its input resize and its levels.

Read from the model registry (which imports torch, so only inside these functions) or from
a training run's config.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.ml.analysis.zoom import DEFAULT_IMAGE_SIZE, Level, with_receptive_fields
from studio.ml.analysis.zoom_objects import InputResize

CONFIG_NAME = "config.json"  # a run's training config, in its folder


@dataclass(frozen=True, slots=True)
class ModelInput:
    """A model as the analysis sees it.

    `image_size`: the model's size setting in pixels (the shorter side for a min/max resize,
    both sides for a fixed one); `resize`: how it resizes an image; `levels`: its feature
    grids, finest first as the registry lists them.
    """

    model: str
    image_size: int
    resize: InputResize
    levels: list[Level]


def default_detector() -> str:
    """The detector the Train button picks on a project of boxes, on this machine."""
    from studio.ml.run.recipe import CPU_DETECTOR, DEFAULT_DETECTOR
    from studio.ml.train.device import auto_device

    return CPU_DETECTOR if auto_device() == "cpu" else DEFAULT_DETECTOR


def model_input(
    model: str,
    image_size: int | None = None,
    options: Mapping[str, Any] | None = None,
    measure: bool = False,
) -> ModelInput:
    """The resize and levels of registered model `model` at `image_size` (its default when
    None). `options`: build options (a composable detector's backbone=...), which decide
    the receptive fields. `measure`: measure the receptive fields by input gradients
    (seconds, once per model: cached); without it only a cached measurement is used.
    Raises StudioError for an unknown model or a bad size."""
    from studio.ml.models import get_spec
    from studio.ml.models.composable import DEFAULT_OPTIONS
    from studio.ml.models.registry import resize_for
    from studio.ml.models.torchvision_models import BACKBONE_ARCH

    if ":" in model:
        raise StudioError(
            f"model {model!r} is a factory of your own, whose levels are unknown;"
            " pass --model with a name from `studio models`"
        )
    spec = get_spec(model)
    size = int(image_size or spec.default_image_size or DEFAULT_IMAGE_SIZE)
    if size < 32:
        raise StudioError(f"image size must be at least 32 pixels, not {size}")
    if spec.family == "composable":
        backbone = {**DEFAULT_OPTIONS, **spec.options, **(options or {})}["backbone"]
    else:
        backbone = BACKBONE_ARCH.get(spec.name, "")
    levels = [Level(n, s) for n, s in zip(spec.feature_levels, spec.strides, strict=True)]
    return ModelInput(
        model=spec.name,
        image_size=size,
        resize=InputResize.from_dict(resize_for(spec, size)),
        levels=with_receptive_fields(levels, str(backbone), _measured(spec.name, options, measure)),
    )


def _measured(
    model: str, options: Mapping[str, Any] | None, measure: bool
) -> dict[int, tuple[int, bool, int]]:
    """Stride -> (theoretical, clipped, effective) receptive field, measured or cached."""
    from studio.ml.analysis.receptive_field import cached_fields, fields_by_stride, measure_fields

    fields = measure_fields(model, options) if measure else cached_fields(model, options)
    return fields_by_stride(fields or [])


def run_config(project: Project, run: str) -> dict[str, Any]:
    """The training config of run `run` (id or name): its config.json, or the copy in the
    database when the file is gone."""
    from studio.ml.run.runs import find_run

    record = find_run(project, run)
    path = record.dir / CONFIG_NAME
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudioError(f"{path}: cannot read the run's config ({exc})") from exc
    return {"model": record.model, **record.config}


def run_model_input(
    project: Project, run: str, image_size: int | None = None, measure: bool = False
) -> ModelInput:
    """The model and input size run `run` trained with; `image_size` overrides the size."""
    config = run_config(project, run)
    return model_input(
        str(config.get("model") or ""),
        image_size or config.get("image_size") or trained_image_size(project, run),
        config.get("model_options") or {},
        measure,
    )


def trained_image_size(project: Project, run: str) -> int | None:
    """The input size run `run` trained at when Studio chose it (its config.json says
    None, "auto"): the size its checkpoint records; None before it has one."""
    from studio.ml.run.runs import find_run, run_checkpoint
    from studio.ml.train.checkpoint import checkpoint_image_size

    try:
        path = run_checkpoint(find_run(project, run))
    except StudioError:  # no checkpoint yet: the model's default
        return None
    return checkpoint_image_size(path)

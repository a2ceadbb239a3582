"""What the window's Advanced section offers: models, their parts, the device, summaries.

Read in a worker (it imports torch: seconds); the window shows the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.project import Project
from studio.ml.run.recipe import recommended

# --- the model summary of the Advanced section ------------------------------------------


def init_summary_worker() -> None:
    """Initializer of the process that computes model summaries: it must not compete with
    the window (or a training run) for the CPU."""
    import torch

    try:
        os.nice(10)
    except OSError:
        pass
    torch.set_num_threads(1)


def summary_text(model: str, image_size: int | None, options: dict[str, Any]) -> str:
    """Output shapes, strides, parameters and GFLOPs of each part of `model` (seconds)."""
    from studio.ml.models import describe_model, format_description, get_spec

    size = image_size or get_spec(model).default_image_size
    return format_description(describe_model(model, image_size=size, **options))


# --- what the window's Advanced section offers -------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    name: str
    task: str
    description: str
    family: str
    options: dict[str, Any]
    supports_pretrained: bool = True  # False: made to train from scratch (no weights file)
    sized_by_objects: bool = False  # no size given: Studio picks it from the objects


@dataclass(frozen=True)
class PanelInfo:
    """Everything the training panel needs from the ML side, read once in a worker (it
    imports torch: seconds)."""

    auto_model: str
    device: str  # what "auto" means here: "cuda", "mps" or "cpu"
    models: list[ModelChoice]
    backbones: list[str]
    necks: list[str]
    heads: list[str]
    composable_defaults: dict[str, Any]


def panel_info(project_dir: Path | str) -> PanelInfo:
    """Reconcile the project's dead runs, and list the models, parts and device. Also
    imports the runner, so that the window's later use of it does not import torch.

    "auto" is chosen with the project's weights folder searched (a pretrained backbone's
    file there changes the CPU detector), as the run itself will search it."""
    from studio.ml.models import BACKBONE_NODES, HEADS, NECKS, list_models
    from studio.ml.models.composable import DEFAULT_OPTIONS
    from studio.ml.run import process as runner
    from studio.ml.train.schedule import sized_by_objects

    with Project.open(project_dir) as p:
        runner.reconcile_runs(p)
        runner.use_weights_setting(p)
        model, device = recommended(p)
    return PanelInfo(
        auto_model=model,
        device=device,
        models=[
            ModelChoice(
                s.name,
                s.task,
                s.description,
                s.family,
                dict(s.options),
                s.supports_pretrained,
                sized_by_objects(s),
            )
            for s in list_models()
        ],
        backbones=list(BACKBONE_NODES),
        necks=list(NECKS),
        heads=list(HEADS),
        composable_defaults=dict(DEFAULT_OPTIONS),
    )

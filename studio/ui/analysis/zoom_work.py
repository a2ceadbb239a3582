"""The zoom-scale panel's background work, as plain functions of a `Progress`. No Qt.

They run on a worker thread (`studio.ui.common.concurrency.run_task`): each opens its own
`Project` and hands back plain data. The model registry imports torch, here and never on
the window's thread. Sizes follow `studio.ml.analysis.zoom`: pixels at the model input,
an object's size is sqrt(w * h) of its box.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.progress import Progress
from studio.core.project import Project
from studio.ml.analysis.zoom_objects import (
    CELL_EDGES,
    analyse_objects,
    object_sizes,
)
from studio.ml.analysis.zoom_report import ZoomReport, build_report
from studio.ui.analysis.work import ObjectRef

LABEL = "label"  # ObjectRef.kind of an annotation


@dataclass(frozen=True, slots=True)
class ZoomChoice:
    """What the static analysis is for: a run (id) or a registered model name, an input
    size (None: the run's or the model's own), a box size in input pixels at zoom 1
    (None: the project's median object) and the zoom scales."""

    run_id: int | None
    model: str | None
    image_size: int | None
    box: float | None
    scales: tuple[float, ...]


@dataclass(slots=True)
class ZoomResult:
    """The report and, per object, where it falls: `image_ids`, `annotation_ids` [N];
    `bins` int8 [zooms, levels, N]: the CELL_BINS index of each object on each level at
    each zoom (the report's scales and levels, in order)."""

    report: ZoomReport
    image_ids: np.ndarray
    annotation_ids: np.ndarray
    bins: np.ndarray

    def refs(self, zoom_index: int, level_index: int, bin_index: int) -> list[ObjectRef]:
        """The objects of one histogram bar, in image order."""
        hit = np.flatnonzero(self.bins[zoom_index, level_index] == bin_index)
        return [
            ObjectRef(int(self.image_ids[i]), int(self.annotation_ids[i]), LABEL)
            for i in hit.tolist()
        ]


def _model(project: Project, choice: ZoomChoice):
    from studio.ml.analysis.zoom_model import default_detector, model_input, run_model_input

    if choice.run_id is not None:
        return run_model_input(project, str(choice.run_id), choice.image_size)
    return model_input(choice.model or default_detector(), choice.image_size)


def static_zoom(project_dir: Path, choice: ZoomChoice, progress: Progress) -> ZoomResult:
    """The zoom table, the project's objects against the model's levels and the
    recommendation; raises StudioError for an unknown model or run."""
    progress.start(3, "reading the model")
    with Project.open(project_dir) as project:
        model = _model(project, choice)
        progress.step(text="reading the labels")
        objects = object_sizes(project, model.resize)
        ids = [(o.image_id, o.annotation_id) for o in objects]
    progress.step(text="counting cells")
    analysis = analyse_objects(objects, model.levels, choice.scales)
    report = build_report(model, choice.scales, choice.box, analysis)
    bins = np.zeros((len(choice.scales), len(model.levels), len(objects)), dtype=np.int8)
    for z, zoom in enumerate(choice.scales):
        sizes = np.array([o.at_zoom(zoom) for o in objects], dtype=np.float64)
        for k, level in enumerate(model.levels):
            # bisect_right semantics, as zoom_objects.level_shares counts them.
            bins[z, k] = np.searchsorted(CELL_EDGES, sizes / level.stride, side="right")
    progress.step()
    pairs = np.array(ids, dtype=np.int64).reshape(-1, 2)
    return ZoomResult(report, pairs[:, 0], pairs[:, 1], bins)


def measure_zoom(
    project_dir: Path,
    run_id: int,
    scales: Sequence[float],
    on_scale: Callable[[object], None],
    progress: Progress,
    device: str = "auto",
) -> list:
    """`zoom_empirical.empirical_zoom` of run `run_id`: each ScaleResult goes to
    `on_scale` as it finishes (on this worker thread); raises Cancelled when asked."""
    from studio.ml.analysis.zoom_empirical import empirical_zoom

    return empirical_zoom(
        project_dir, run_id, scales, device=device, progress=progress, on_scale=on_scale
    )

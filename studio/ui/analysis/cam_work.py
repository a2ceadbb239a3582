"""The activation-map panel's background work. No Qt.

`CamService` keeps one `RunCams` per run (the model loads once, on first use) and runs
on the panel's single worker thread, so one model never runs two hooked forward passes
at once; its lock makes that hold even if two threads call it. Each call opens its own
`Project` (SQLite connections stay on their thread) and hands back plain data: the map at
the model input (float [h, w] in 0..1; the canvas layer scales it to the displayed image)
and the `ActivationMap` itself for export.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.progress import Progress
from studio.core.project import Project

GRID_CHANNELS = 8  # strongest channels computed at once (the panel shows one at a time)
_ATTENTION_NAMES = ("SE", "ECA", "CBAM", "Attention")


class PanelMethod(StrEnum):
    """What the panel shows: the three `CamMethod`s, with features split in two."""

    EIGENCAM = "EigenCAM"
    GRADCAM = "Grad-CAM of a prediction"
    FEATURE_MEAN = "feature mean"
    CHANNELS = "strongest channels"


@dataclass(frozen=True, slots=True)
class CamAsk:
    """One map to compute: run, image, layer id (None: the default layer), method, and
    the prediction's rank (Grad-CAM, 0 = highest score) or the channel's rank (strongest
    channels, 0 = strongest)."""

    run_id: int
    image_id: int
    layer: str | None
    method: PanelMethod
    rank: int = 0


@dataclass(slots=True)
class CamResult:
    """`heat`: float32 [h, w] in 0..1 over the image at the model input; `amap`: the
    studio.ml ActivationMap; `title`: one line saying what it is."""

    ask: CamAsk
    heat: np.ndarray
    amap: Any
    title: str


@dataclass(slots=True)
class LayerRow:
    """One layer of the tree: id, group, stride (input pixels per cell), channels."""

    id: str
    group: str
    stride: int
    channels: int


@dataclass(slots=True)
class ModelLayers:
    """The layer tree of a run's model and what the panel says about its attention."""

    run_id: int
    layers: list[LayerRow] = field(default_factory=list)
    default: str = ""
    attention: str = ""


def _request(ask: CamAsk):
    from studio.ml.analysis.cam import CamMethod, CamRequest

    if ask.method == PanelMethod.GRADCAM:
        return CamRequest(CamMethod.GRADCAM, box=max(0, ask.rank))
    if ask.method == PanelMethod.FEATURE_MEAN:
        return CamRequest(CamMethod.FEATURES)
    if ask.method == PanelMethod.CHANNELS:
        return CamRequest(CamMethod.FEATURES, grid=GRID_CHANNELS)
    return CamRequest(CamMethod.EIGENCAM)


def attention_summary(model: Any) -> str:
    """One line on the model's attention modules (SE, ECA, CBAM), found by class name.
    Their entropy is not measured yet; a model without them says so."""
    found = [type(m).__name__ for _, m in model.named_modules()
             if any(a in type(m).__name__ for a in _ATTENTION_NAMES)]  # fmt: skip
    if not found:
        return "This model has no attention modules (SE, ECA, CBAM): no attention entropy."
    kinds = ", ".join(sorted(set(found)))
    return f"{len(found)} attention modules ({kinds}); their mean entropy is not measured yet."


class CamService:
    """Maps of the project at `project_dir`, one cached RunCams per run."""

    def __init__(self, project_dir: Path, device: str = "auto"):
        self.project_dir = Path(project_dir)
        self.device = device
        self._cams: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _run_cams(self, project: Project, run_id: int):
        from studio.ml.analysis.cam_run import RunCams

        if run_id not in self._cams:
            self._cams[run_id] = RunCams.for_run(project, run_id, self.device)
        return self._cams[run_id]

    def layers(self, run_id: int, progress: Progress) -> ModelLayers:
        """The layer tree of run `run_id`'s model (loads it)."""
        from studio.ml.analysis.cam_layers import default_layer

        progress.start(1, "loading the model")
        with self._lock:
            with Project.open(self.project_dir) as project:
                cams = self._run_cams(project, run_id)
            infos = cams.layers()
            rows = [LayerRow(lv.id, str(lv.group), lv.stride, lv.channels) for lv in infos]
            return ModelLayers(run_id, rows, default_layer(infos).id,
                               attention_summary(cams.model.model))  # fmt: skip

    def compute(self, ask: CamAsk, progress: Progress) -> CamResult:
        """The map `ask` describes; StudioError when it cannot be made (no prediction to
        explain, an unknown layer, an unreadable image)."""
        progress.start(1, "computing the map")
        with self._lock:
            with Project.open(self.project_dir) as project:
                cams = self._run_cams(project, ask.run_id)
                image = project.image(ask.image_id)
            progress.check()
            amap = cams.map(image, ask.layer, _request(ask))
        cells, what = amap.cells, str(ask.method)
        if ask.method == PanelMethod.CHANNELS:
            if amap.channels is None or not len(amap.channels):
                raise StudioError(f"layer {amap.layer} has no channels to show")
            rank = min(max(0, ask.rank), len(amap.channels) - 1)
            cells, what = amap.channels[rank], f"channel #{amap.channel_ids[rank]}"
        title = f"{what} of {amap.layer} on {image.name}"
        if amap.target is not None:
            title += f" (box {amap.target.index}, score {amap.target.score:.2f})"
        progress.step()
        return CamResult(ask, np.clip(amap.at_input(cells), 0.0, 1.0), amap, title)


def export_overlay(
    path: Path, image_path: Path, result: CamResult, opacity: float, colormap: str
) -> None:
    """The map blended over the image at its displayed size, written as a PNG at `path`
    (the Grad-CAM box outlined); StudioError naming the file when it cannot be written."""
    import cv2

    from studio.core.imageinfo import decode_image
    from studio.ml.analysis.cam_report import overlay, write_png

    pixels = decode_image(Path(image_path))
    # The heat spans the image at the model input; resizing it to the displayed size
    # undoes the model's resize, as ActivationMap.at_display does.
    height, width = pixels.shape[:2]
    heat = cv2.resize(result.heat, (width, height), interpolation=cv2.INTER_LINEAR)
    cmap = getattr(cv2, f"COLORMAP_{colormap.upper()}")
    out = overlay(pixels, np.clip(heat, 0.0, 1.0), opacity, cmap)
    if result.amap.target is not None:
        x0, y0, x1, y1 = (round(v) for v in result.amap.target.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), max(1, round(max(out.shape) / 400)))
    write_png(path, out)

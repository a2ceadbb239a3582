"""The canvas's layers: each draws one kind of thing over the image and can be toggled.

A layer is one module in this folder implementing `Layer` (base.py; subclass
`SceneLayer` for the no-op defaults), plus one line in `BUILT_IN_LAYERS` below. Every
canvas builds these, bottom to top; plugins add theirs with `CanvasView.add_layer`.
"""

from __future__ import annotations

from collections.abc import Callable

from studio.ui.canvas.layers.annotations import AnnotationLayer
from studio.ui.canvas.layers.base import Layer, SceneLayer
from studio.ui.canvas.layers.crosshair import CrosshairLayer
from studio.ui.canvas.layers.heatmap import HeatmapLayer
from studio.ui.canvas.layers.image import ImageLayer
from studio.ui.canvas.layers.predictions import PredictionLayer

BUILT_IN_LAYERS: tuple[Callable[[], Layer], ...] = (
    ImageLayer,
    HeatmapLayer,
    AnnotationLayer,
    PredictionLayer,
    CrosshairLayer,
)

__all__ = [
    "BUILT_IN_LAYERS",
    "AnnotationLayer",
    "CrosshairLayer",
    "ImageLayer",
    "Layer",
    "SceneLayer",
]

"""What a canvas layer is: one kind of thing drawn over the image, toggled as a whole.

The view owns the scene and a list of layers, ordered by `z`; it calls each layer's
hooks as images come and go and as the user zooms and pans. Scene coordinates are image
pixels as displayed. A layer adds its items to the scene in `attach` and keeps their
z-values at or above its own `z` (see `scene_items` for the values in use), so that
layers stack in their order without knowing each other.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsScene

from studio.core.project import Project
from studio.core.records import ImageRecord


@runtime_checkable
class Layer(Protocol):
    """The hooks the view calls. `name` is how users and code refer to the layer."""

    name: str
    z: float

    @property
    def visible(self) -> bool: ...

    def set_visible(self, visible: bool) -> None:
        """Show or hide everything the layer draws."""

    def attach(self, scene: QGraphicsScene) -> None:
        """Add the layer's standing items to `scene` (called once, before any other hook)."""

    def show_image(self, image: ImageRecord, project: Project) -> None:
        """A new image is shown; `project` is where to read what to draw on it."""

    def view_changed(self, visible: QRectF, zoom: float) -> None:
        """After zoom, pan or resize (debounced): `visible` is the scene rect in sight,
        `zoom` screen pixels per image pixel."""

    def clear(self) -> None:
        """No image is shown: draw nothing."""

    def detach(self) -> None:
        """The canvas is closing: stop background work, let go of resources."""


class SceneLayer:
    """A plain layer with every hook a no-op: subclass it and override what you need
    (`_apply_visible` is called when the visibility changes)."""

    name = "layer"
    z = 0.0

    def __init__(self) -> None:
        self.scene: QGraphicsScene | None = None
        self._visible = True

    @property
    def visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        if visible != self._visible:
            self._visible = visible
            self._apply_visible()

    def _apply_visible(self) -> None:
        pass

    def attach(self, scene: QGraphicsScene) -> None:
        self.scene = scene

    def show_image(self, image: ImageRecord, project: Project) -> None:
        pass

    def view_changed(self, visible: QRectF, zoom: float) -> None:
        pass

    def clear(self) -> None:
        pass

    def detach(self) -> None:
        pass

"""What the tools may use of the canvas: `CanvasContext`, a small protocol.

Tools get positions in image pixels (scene coordinates, the view maps the mouse) and
talk to the canvas only through this: the editor for every write and the selection,
the annotation layer for hit tests and records, the scene for the items they draw
while a gesture lasts. `CanvasView` provides it; a test can provide a fake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtWidgets import QGraphicsScene

if TYPE_CHECKING:
    from studio.ui.canvas.editor import Editor
    from studio.ui.canvas.layers.annotations import AnnotationLayer
    from studio.ui.canvas.tools.hits import Hit


class CanvasContext(Protocol):
    @property
    def editor(self) -> Editor:
        """Writes through the project (one undo step per gesture) and the selection."""
        ...

    @property
    def shapes(self) -> AnnotationLayer:
        """The shown image's shapes: records, hit tests, hover, the active vertex."""
        ...

    def scene(self) -> QGraphicsScene:
        """Where a tool adds the items it draws during a gesture (and removes them)."""
        ...

    def image_size(self) -> tuple[float, float]:
        """The shown image's (width, height) in image pixels; (0, 0) when none."""
        ...

    def tol(self, screen_px: float) -> float:
        """A distance on screen, in image pixels at the current zoom."""
        ...

    def set_cursor_for(self, hit: Hit | None) -> None:
        """Show the mouse cursor that says what a press would grab."""
        ...

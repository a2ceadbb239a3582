"""The labelling canvas: a QGraphicsView that shows one image and edits its shapes.

The scene mirrors the database: every finished gesture is written through the Project
API (and so lands on the undo stack), and the canvas redraws from project events.
"""

from studio.ui.canvas.view import CanvasView

__all__ = ["CanvasView"]

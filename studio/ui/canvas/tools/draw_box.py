"""The box tool: drag to draw a box; a click without dragging selects what is under it.
Drawing tools always draw, even over other shapes and their corners (touching objects
share corners); editing is the select tool's job."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem

from studio.core.kinds import ShapeKind
from studio.core.records import BBox
from studio.ui.canvas import geometry as G
from studio.ui.canvas.scene_items import Z_DRAFT, cosmetic_pen, tinted_brush
from studio.ui.canvas.tools.context import CanvasContext
from studio.ui.canvas.tools.drag import Drag

MIN_DRAW_PX = 4.0  # a box drawn smaller than this on screen was a click

Mods = Qt.KeyboardModifier


class DraftBox(QGraphicsRectItem):
    """The box being drawn: known to the canvas only, written on release."""

    def __init__(self, color: QColor):
        super().__init__()
        self.setPen(cosmetic_pen(color, 2.0, Qt.PenStyle.DashLine))
        self.setBrush(tinted_brush(color, 50))
        self.setZValue(Z_DRAFT)

    def set_box(self, bbox: BBox) -> None:
        self.setRect(QRectF(*bbox))


class DrawBoxDrag(Drag):
    def __init__(self, ctx: CanvasContext, x: float, y: float):
        self.ctx = ctx
        w, h = ctx.image_size()
        self.start = (G.clamp(x, 0.0, w), G.clamp(y, 0.0, h))
        self.item = DraftBox(ctx.editor.draft_color())
        ctx.scene().addItem(self.item)
        self.move(x, y, Mods.NoModifier)

    def _box(self, x: float, y: float) -> BBox:
        w, h = self.ctx.image_size()
        return G.box_from_points(*self.start, G.clamp(x, 0.0, w), G.clamp(y, 0.0, h))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.item.set_box(self._box(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.dispose()
        box = self._box(x, y)
        small = self.ctx.tol(MIN_DRAW_PX)
        editor = self.ctx.editor
        if box[2] < max(small, G.MIN_SIZE) or box[3] < max(small, G.MIN_SIZE):
            # A click, not a box: select what is there (or nothing).
            hit = self.ctx.shapes.shape_at(x, y)
            editor.select([hit] if hit is not None else [])
            return
        new_id = editor.write_add(ShapeKind.BOX, bbox=box)
        if new_id is not None:
            editor.select([new_id])

    def dispose(self) -> None:
        if self.item.scene():
            self.ctx.scene().removeItem(self.item)

"""The rubber band: the select tool's drag on empty canvas. Shapes lying wholly inside
are selected; with Ctrl or Shift they are added to the selection."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.ui.canvas import geometry as G
from studio.ui.canvas.scene_items import Z_OVERLAY
from studio.ui.canvas.tools.context import CanvasContext
from studio.ui.canvas.tools.drag import Drag


class RubberBandDrag(Drag):
    def __init__(self, ctx: CanvasContext, x: float, y: float, additive: bool):
        self.ctx = ctx
        self.start = (x, y)
        self.base = set(ctx.shapes.selected) if additive else set()
        self.item = QGraphicsRectItem()
        pen = QPen(QColor(120, 180, 255), 1.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.item.setPen(pen)
        self.item.setBrush(QColor(120, 180, 255, 40))
        self.item.setZValue(Z_OVERLAY)
        ctx.scene().addItem(self.item)

    def _rect(self, x: float, y: float) -> QRectF:
        return QRectF(*G.box_from_points(*self.start, x, y))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.item.setRect(self._rect(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.dispose()
        inside = self.ctx.shapes.ids_in_rect(self._rect(x, y))
        self.ctx.editor.select(sorted(self.base | set(inside)))

    def dispose(self) -> None:
        if self.item.scene():
            self.ctx.scene().removeItem(self.item)

"""The crosshair: two lines across the image through the cursor, while drawing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsLineItem, QGraphicsScene

from studio.ui.canvas.layers.base import SceneLayer
from studio.ui.canvas.scene_items import Z_OVERLAY, cosmetic_pen


class CrosshairLayer(SceneLayer):
    name = "crosshair"
    z = Z_OVERLAY

    def __init__(self) -> None:
        super().__init__()
        pen = cosmetic_pen(QColor(255, 255, 255, 200), 1.0, Qt.PenStyle.DashLine)
        self.h = QGraphicsLineItem()
        self.v = QGraphicsLineItem()
        for line in (self.h, self.v):
            line.setPen(pen)
            line.setZValue(self.z)
            line.setVisible(False)

    def attach(self, scene: QGraphicsScene) -> None:
        super().attach(scene)
        scene.addItem(self.h)
        scene.addItem(self.v)

    def show_at(self, x: float, y: float, width: float, height: float) -> None:
        """Lines through (x, y) across an image of `width` x `height` (image pixels)."""
        if not self.visible:
            return
        self.h.setLine(0.0, y, width, y)
        self.v.setLine(x, 0.0, x, height)
        self.h.setVisible(True)
        self.v.setVisible(True)

    def hide(self) -> None:
        self.h.setVisible(False)
        self.v.setVisible(False)

    def _apply_visible(self) -> None:
        if not self.visible:
            self.hide()

    def clear(self) -> None:
        self.hide()

"""Hit tests over the shape items of the annotation layer (scene = image pixels).

What lies under the cursor must be judged against every shape of the image, so a hit
test reads the shapes still arriving at once (`finish_reading`), unless the caller says
a shape not built yet may be missed (`complete=False`: a hover highlight, which the next
mouse move corrects, need not cost the ~150-250 ms of reading the rest of 3,000 shapes).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QGraphicsScene

from studio.ui.canvas.geometry import bbox_area
from studio.ui.canvas.scene_items import BoxItem, PolygonItem


class ShapeHits:
    """Hit tests of `AnnotationLayer` (a mixin: it provides `_scene` and
    `finish_reading`)."""

    _scene: QGraphicsScene

    def finish_reading(self) -> None: ...

    def shapes_near(
        self, x: float, y: float, tol: float, complete: bool = True
    ) -> list[BoxItem | PolygonItem]:
        """Visible shapes whose bounds come within `tol` of (x, y), smallest first."""
        if complete:
            self.finish_reading()
        rect = QRectF(x - tol, y - tol, 2 * tol, 2 * tol)
        found = [
            it
            for it in self._scene.items(rect, Qt.ItemSelectionMode.IntersectsItemBoundingRect)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]
        found.sort(key=lambda it: bbox_area(it.record.bbox))
        return found

    def shape_at(self, x: float, y: float, complete: bool = True) -> int | None:
        """The shape under (x, y); of nested shapes the smallest, so a small box inside
        a big one can always be picked."""
        if complete:
            self.finish_reading()
        hits = [
            it
            for it in self._scene.items(QPointF(x, y), Qt.ItemSelectionMode.IntersectsItemShape)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]
        if not hits:
            return None
        return min(hits, key=lambda it: bbox_area(it.record.bbox)).ann_id

    def ids_in_rect(self, rect: QRectF) -> list[int]:
        """Visible shapes lying wholly inside `rect` (the rubber band)."""
        self.finish_reading()
        return [
            it.ann_id
            for it in self._scene.items(rect, Qt.ItemSelectionMode.ContainsItemBoundingRect)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]

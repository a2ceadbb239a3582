"""The polygon tool: click to add vertices; close by clicking the first vertex, pressing
Enter or double-clicking; Backspace or right-click removes the last vertex; Esc cancels
the polygon. The polygon being drawn is a draft only the canvas knows until it closes."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

from studio.core.kinds import ShapeKind
from studio.ui.canvas import geometry as G
from studio.ui.canvas.scene_items import Z_DRAFT, HandleItem, cosmetic_pen, tinted_brush
from studio.ui.canvas.tools.context import CanvasContext

CLOSE_PX = 8.0  # how close (screen pixels) to the first vertex a click closes the polygon


class DraftPolygon(QGraphicsPathItem):
    """The polygon being drawn: its vertices, the rubber line to the cursor, and a marker
    on the first vertex that grows when a click there would close the polygon."""

    def __init__(self, color: QColor):
        super().__init__()
        self.color = color
        self.setPen(cosmetic_pen(color, 2.0))
        self.setBrush(tinted_brush(color, 40))
        self.setZValue(Z_DRAFT)
        self.points: list[tuple[float, float]] = []
        self.cursor: tuple[float, float] | None = None
        self.handles: list[HandleItem] = []

    def update_shape(self, can_close: bool) -> None:
        path = QPainterPath()
        pts = self.points + ([self.cursor] if self.cursor else [])
        if pts:
            path.moveTo(*pts[0])
            for p in pts[1:]:
                path.lineTo(*p)
        self.setPath(path)
        scene = self.scene()
        while len(self.handles) > len(self.points):
            h = self.handles.pop()
            if scene:
                scene.removeItem(h)
        while len(self.handles) < len(self.points) and scene:
            p = self.points[len(self.handles)]
            h = HandleItem(p[0], p[1], self.color)
            scene.addItem(h)
            self.handles.append(h)
        if self.handles:
            self.handles[0].set_active(self.color, can_close)

    def remove(self) -> None:
        scene = self.scene()
        if scene:
            for h in self.handles:
                scene.removeItem(h)
            scene.removeItem(self)
        self.handles.clear()


class PolygonDraft:
    """The polygon being drawn, in image pixels, clamped to the image."""

    def __init__(self, ctx: CanvasContext, x: float, y: float):
        self.ctx = ctx
        self.item = DraftPolygon(ctx.editor.draft_color())
        ctx.scene().addItem(self.item)
        self.add(x, y)

    @property
    def points(self) -> list[tuple[float, float]]:
        return self.item.points

    def _clamped(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.ctx.image_size()
        return (G.r2(G.clamp(x, 0.0, w)), G.r2(G.clamp(y, 0.0, h)))

    def can_close_at(self, x: float, y: float) -> bool:
        if len(self.points) < 3:
            return False
        fx, fy = self.points[0]
        reach = self.ctx.tol(CLOSE_PX)
        return abs(fx - x) <= reach and abs(fy - y) <= reach

    def add(self, x: float, y: float) -> None:
        p = self._clamped(x, y)
        last = self.points[-1] if self.points else None
        # The second press of a double-click lands on the same spot: one vertex, not two.
        one_px = self.ctx.tol(1)
        if last and abs(last[0] - p[0]) <= one_px and abs(last[1] - p[1]) <= one_px:
            return
        self.points.append(p)
        self.item.cursor = p
        self.item.update_shape(False)

    def pop(self) -> bool:
        """Remove the last vertex; False when none is left (the draft is then empty)."""
        if self.points:
            self.points.pop()
        self.item.update_shape(False)
        return bool(self.points)

    def hover(self, x: float, y: float) -> None:
        self.item.cursor = self._clamped(x, y)
        self.item.update_shape(self.can_close_at(x, y))

    def finish(self) -> int | None:
        """Write the polygon (needs 3 vertices); returns its id."""
        if len(self.points) < 3:
            self.ctx.editor.notify("A polygon needs at least 3 points")
            return None
        flat = [v for p in self.points for v in p]
        self.discard()
        return self.ctx.editor.write_add(ShapeKind.POLYGON, polygons=[flat])

    def discard(self) -> None:
        self.item.remove()

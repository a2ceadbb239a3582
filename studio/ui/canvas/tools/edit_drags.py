"""The select tool's edits: move the selection, resize a box, drag a polygon vertex.

Each writes through the editor at every mouse move (see `EditDrag`), clamped so that
shapes stay inside the image. Positions are image pixels.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.records import AnnotationRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.editor import movable, shifted, union_box
from studio.ui.canvas.tools.context import CanvasContext
from studio.ui.canvas.tools.drag import EditDrag
from studio.ui.canvas.tools.hits import Hit

Mods = Qt.KeyboardModifier


class MoveDrag(EditDrag):
    """Drag a shape's body: the whole selection moves with it, as one."""

    def __init__(self, ctx: CanvasContext, ids: list[int], x: float, y: float, click_id: int):
        super().__init__(ctx)
        self.start = (x, y)
        self.recs = movable(ctx.shapes, ids)
        self.click_id = click_id
        self.last = (0.0, 0.0)
        # Masks only: a click selects them, a drag moves nothing.
        self.union = union_box(self.recs) if self.recs else (0.0, 0.0, 0.0, 0.0)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if not self.recs:
            return
        w, h = self.ctx.image_size()
        d = G.limit_shift(self.union, x - self.start[0], y - self.start[1], w, h)
        d = (G.r2(d[0]), G.r2(d[1]))
        if d == self.last:
            return
        self.last = d
        self.write({r.id: shifted(r, *d) for r in self.recs})

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        # A plain click on a shape of a multi-selection selects just that shape.
        if not self.wrote and not mods & (Mods.ShiftModifier | Mods.ControlModifier):
            self.ctx.editor.select([self.click_id])


class ResizeDrag(EditDrag):
    """Drag a box's corner or edge (`handle`, named as in `geometry`)."""

    def __init__(self, ctx: CanvasContext, rec: AnnotationRecord, handle: str, x: float, y: float):
        super().__init__(ctx)
        self.rec, self.handle = rec, handle
        hx, hy = G.box_handle_points(rec.bbox)[handle]
        # Keep the grab offset so the edge does not jump to the cursor.
        self.offset = (x - hx if "l" in handle or "r" in handle else 0.0,
                       y - hy if "t" in handle or "b" in handle else 0.0)  # fmt: skip

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        w, h = self.ctx.image_size()
        box = G.resize_box(self.rec.bbox, self.handle, x - self.offset[0], y - self.offset[1], w, h)
        now = self.ctx.shapes.record(self.rec.id)
        if now is not None and box != now.bbox:
            self.write({self.rec.id: {"bbox": box}})


class VertexDrag(EditDrag):
    """Drag one vertex of a polygon; `token` continues a gesture (a vertex inserted by
    the same press), so the insert and the drag are one undo step."""

    def __init__(
        self, ctx: CanvasContext, hit: Hit, x: float, y: float, token: object | None = None
    ):
        super().__init__(ctx, token)
        self.hit = hit
        rec = ctx.shapes.record(hit.ann_id)
        assert rec is not None and rec.polygons
        vx, vy = rec.polygons[hit.part][2 * hit.index : 2 * hit.index + 2]
        self.offset = (x - vx, y - vy)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        rec = self.ctx.shapes.record(self.hit.ann_id)
        if rec is None or not rec.polygons:
            return
        w, h = self.ctx.image_size()
        vx = G.clamp(x - self.offset[0], 0.0, w)
        vy = G.clamp(y - self.offset[1], 0.0, h)
        polys = G.with_vertex(rec.polygons, self.hit.part, self.hit.index, vx, vy)
        if polys != rec.polygons:
            self.write({rec.id: {"polygons": polys}})

"""What the mouse does on the canvas: hit tests, the drags, and the three tools.

Gestures (documented for users in `CanvasView`'s docstring):

* select tool: click a shape to select it, Ctrl-click toggles, Shift-click adds; drag a
  shape's body to move the selection; drag a box's corner or edge to resize it; drag a
  polygon vertex to move it; drag on empty canvas for a rubber band (shapes wholly
  inside are selected; with Ctrl or Shift they are added).
  Clicking a vertex of the selected polygon makes it the active vertex, which Delete
  removes; Shift-click on a polygon's edge inserts a vertex there and drags it.
* box tool: drag to draw a box; a click without dragging selects what is under it.
* polygon tool: click to add vertices; close by clicking the first vertex, pressing
  Enter or double-clicking; Backspace or right-click removes the last vertex; Esc
  cancels the polygon.
* drawing tools always draw, even over other shapes and their corners (touching
  objects share corners); editing is the select tool's job.
* every tool: right-click a vertex deletes it (a polygon keeps at least 3);
  double-click on a polygon's edge inserts a vertex there.

Every drag that edits writes through the project at each mouse move with one gesture
token, so the whole drag is one undo step; Esc during the drag undoes it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from studio.core.records import AnnotationRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.scene_items import Z_OVERLAY, DraftBox, DraftPolygon

if TYPE_CHECKING:
    from studio.ui.canvas.view import CanvasView

HIT_PX = 6.0  # how close (screen pixels) the cursor must be to grab a vertex or edge
CLOSE_PX = 8.0  # how close to the first vertex a click closes the polygon
MIN_DRAW_PX = 4.0  # a box drawn smaller than this on screen was a click

Mods = Qt.KeyboardModifier


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # "vertex" | "handle" | "body"
    ann_id: int
    handle: str = ""  # box handle name, for kind "handle"
    part: int = 0  # polygon part and vertex index, for kind "vertex"
    index: int = 0


def grab_hit(rec: AnnotationRecord, x: float, y: float, tol: float) -> Hit | None:
    """A vertex of a polygon or a corner/edge of a box within `tol` of (x, y). Masks
    have no handles: their pixels (RLE) would not follow a reshaped box."""
    if rec.kind == "mask":
        return None
    if rec.kind == "polygon" and rec.polygons:
        v = G.nearest_vertex(rec.polygons, x, y, tol)
        return Hit("vertex", rec.id, part=v[0], index=v[1]) if v else None
    # On a small box the edge zones would cover its inside; shrink them so its body
    # can still be grabbed to move it.
    t = min(tol, max(min(rec.bbox[2], rec.bbox[3]) / 4, tol / 3))
    h = G.box_handle_at(rec.bbox, x, y, t)
    return Hit("handle", rec.id, handle=h) if h else None


def movable(view: CanvasView, ids) -> list[AnnotationRecord]:
    """Records of the shapes among `ids` that moves may rewrite (boxes and polygons;
    a mask's pixels would stay behind)."""
    recs = (view.shapes.record(i) for i in ids)
    return [r for r in recs if r is not None and r.kind != "mask"]


def shifted(rec: AnnotationRecord, dx: float, dy: float) -> dict:
    """The update that moves a box or polygon by (dx, dy)."""
    if rec.kind == "polygon" and rec.polygons:
        return {"polygons": G.shift_polygons(rec.polygons, dx, dy)}
    return {"bbox": G.shift_box(rec.bbox, dx, dy)}


class Drag:
    """One mouse gesture in progress, from press to release."""

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def dispose(self) -> None:
        """Remove what the drag drew, writing and undoing nothing."""

    def cancel(self) -> None:
        """Esc: give up the gesture and whatever it changed."""
        self.dispose()


class EditDrag(Drag):
    """A drag that rewrites shapes as the mouse moves, under one gesture token."""

    def __init__(self, view: CanvasView, token: object | None = None):
        self.view = view
        self.token = token if token is not None else object()
        self.wrote = token is not None

    def write(self, changes: dict[int, dict]) -> None:
        if self.view.write_update(changes, self.token):
            self.wrote = True

    def cancel(self) -> None:
        if self.wrote:  # the whole drag is the top undo step: undo it as one
            self.view.undo_own_gesture()


class MoveDrag(EditDrag):
    def __init__(self, view: CanvasView, ids: list[int], x: float, y: float, click_id: int):
        super().__init__(view)
        self.start = (x, y)
        self.recs = movable(view, ids)
        self.click_id = click_id
        self.last = (0.0, 0.0)
        if not self.recs:  # masks only: a click selects them, a drag moves nothing
            self.union = (0.0, 0.0, 0.0, 0.0)
            return
        xs0 = min(r.bbox[0] for r in self.recs)
        ys0 = min(r.bbox[1] for r in self.recs)
        xs1 = max(r.bbox[0] + r.bbox[2] for r in self.recs)
        ys1 = max(r.bbox[1] + r.bbox[3] for r in self.recs)
        self.union = (xs0, ys0, xs1 - xs0, ys1 - ys0)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if not self.recs:
            return
        w, h = self.view.image_size()
        d = G.limit_shift(self.union, x - self.start[0], y - self.start[1], w, h)
        d = (G.r2(d[0]), G.r2(d[1]))
        if d == self.last:
            return
        self.last = d
        self.write({r.id: shifted(r, *d) for r in self.recs})

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        # A plain click on a shape of a multi-selection selects just that shape.
        if not self.wrote and not mods & (Mods.ShiftModifier | Mods.ControlModifier):
            self.view.select([self.click_id])


class ResizeDrag(EditDrag):
    def __init__(self, view: CanvasView, rec: AnnotationRecord, handle: str, x: float, y: float):
        super().__init__(view)
        self.rec, self.handle = rec, handle
        hx, hy = G.box_handle_points(rec.bbox)[handle]
        # Keep the grab offset so the edge does not jump to the cursor.
        self.offset = (x - hx if "l" in handle or "r" in handle else 0.0,
                       y - hy if "t" in handle or "b" in handle else 0.0)  # fmt: skip

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        w, h = self.view.image_size()
        box = G.resize_box(self.rec.bbox, self.handle, x - self.offset[0], y - self.offset[1], w, h)
        now = self.view.shapes.record(self.rec.id)
        if now is not None and box != now.bbox:
            self.write({self.rec.id: {"bbox": box}})


class VertexDrag(EditDrag):
    def __init__(self, view: CanvasView, hit: Hit, x: float, y: float, token: object | None = None):
        super().__init__(view, token)
        self.hit = hit
        rec = view.shapes.record(hit.ann_id)
        assert rec is not None and rec.polygons
        vx, vy = rec.polygons[hit.part][2 * hit.index : 2 * hit.index + 2]
        self.offset = (x - vx, y - vy)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        rec = self.view.shapes.record(self.hit.ann_id)
        if rec is None or not rec.polygons:
            return
        w, h = self.view.image_size()
        vx = G.clamp(x - self.offset[0], 0.0, w)
        vy = G.clamp(y - self.offset[1], 0.0, h)
        polys = G.with_vertex(rec.polygons, self.hit.part, self.hit.index, vx, vy)
        if polys != rec.polygons:
            self.write({rec.id: {"polygons": polys}})


class DrawBoxDrag(Drag):
    def __init__(self, view: CanvasView, x: float, y: float):
        self.view = view
        w, h = view.image_size()
        self.start = (G.clamp(x, 0.0, w), G.clamp(y, 0.0, h))
        self.item = DraftBox(view.draft_color())
        view.scene().addItem(self.item)
        self.move(x, y, Mods.NoModifier)

    def _box(self, x: float, y: float):
        w, h = self.view.image_size()
        return G.box_from_points(*self.start, G.clamp(x, 0.0, w), G.clamp(y, 0.0, h))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.item.set_box(self._box(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.dispose()
        box = self._box(x, y)
        small = self.view.tol(MIN_DRAW_PX)
        if box[2] < max(small, G.MIN_SIZE) or box[3] < max(small, G.MIN_SIZE):
            # A click, not a box: select what is there (or nothing).
            hit = self.view.shapes.shape_at(x, y)
            self.view.select([hit] if hit is not None else [])
            return
        new_id = self.view.write_add("box", bbox=box)
        if new_id is not None:
            self.view.select([new_id])

    def dispose(self) -> None:
        if self.item.scene():
            self.view.scene().removeItem(self.item)


class RubberBandDrag(Drag):
    def __init__(self, view: CanvasView, x: float, y: float, additive: bool):
        self.view = view
        self.start = (x, y)
        self.base = set(view.shapes.selected) if additive else set()
        self.item = QGraphicsRectItem()
        pen = QPen(QColor(120, 180, 255), 1.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.item.setPen(pen)
        self.item.setBrush(QColor(120, 180, 255, 40))
        self.item.setZValue(Z_OVERLAY)
        view.scene().addItem(self.item)

    def _rect(self, x: float, y: float) -> QRectF:
        return QRectF(*G.box_from_points(*self.start, x, y))

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.item.setRect(self._rect(x, y))

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        self.dispose()
        inside = self.view.shapes.ids_in_rect(self._rect(x, y))
        self.view.select(sorted(self.base | set(inside)))

    def dispose(self) -> None:
        if self.item.scene():
            self.view.scene().removeItem(self.item)


class PolygonDraft:
    """The polygon being drawn: only the canvas knows it until it is closed."""

    def __init__(self, view: CanvasView, x: float, y: float):
        self.view = view
        self.item = DraftPolygon(view.draft_color())
        view.scene().addItem(self.item)
        self.add(x, y)

    @property
    def points(self) -> list[tuple[float, float]]:
        return self.item.points

    def _clamped(self, x: float, y: float) -> tuple[float, float]:
        w, h = self.view.image_size()
        return (G.r2(G.clamp(x, 0.0, w)), G.r2(G.clamp(y, 0.0, h)))

    def can_close_at(self, x: float, y: float) -> bool:
        if len(self.points) < 3:
            return False
        fx, fy = self.points[0]
        return abs(fx - x) <= self.view.tol(CLOSE_PX) and abs(fy - y) <= self.view.tol(CLOSE_PX)

    def add(self, x: float, y: float) -> None:
        p = self._clamped(x, y)
        last = self.points[-1] if self.points else None
        # The second press of a double-click lands on the same spot: one vertex, not two.
        if (
            last
            and abs(last[0] - p[0]) <= self.view.tol(1)
            and abs(last[1] - p[1]) <= self.view.tol(1)
        ):
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
            self.view.message.emit("A polygon needs at least 3 points")
            return None
        flat = [v for p in self.points for v in p]
        self.discard()
        return self.view.write_add("polygon", polygons=[flat])

    def discard(self) -> None:
        self.item.remove()

"""Hit tests of the tools: what a press at (x, y), in image pixels, would grab."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import Qt

from studio.core.kinds import ShapeKind
from studio.core.records import AnnotationRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.tools.context import CanvasContext

HIT_PX = 6.0  # how close (screen pixels) the cursor must be to grab a vertex or edge


class HitKind(StrEnum):
    VERTEX = "vertex"  # a polygon's vertex
    HANDLE = "handle"  # a box's corner or edge
    BODY = "body"  # the inside of a shape


@dataclass(frozen=True, slots=True)
class Hit:
    kind: HitKind
    ann_id: int
    handle: str = ""  # box handle name, for kind HANDLE (see geometry)
    part: int = 0  # polygon part and vertex index, for kind VERTEX
    index: int = 0


def grab_hit(rec: AnnotationRecord, x: float, y: float, tol: float) -> Hit | None:
    """A vertex of a polygon or a corner/edge of a box within `tol` of (x, y). Masks
    have no handles: their pixels (RLE) would not follow a reshaped box."""
    if rec.kind == ShapeKind.MASK:
        return None
    if rec.kind == ShapeKind.POLYGON and rec.polygons:
        v = G.nearest_vertex(rec.polygons, x, y, tol)
        return Hit(HitKind.VERTEX, rec.id, part=v[0], index=v[1]) if v else None
    # On a small box the edge zones would cover its inside; shrink them so its body
    # can still be grabbed to move it.
    t = min(tol, max(min(rec.bbox[2], rec.bbox[3]) / 4, tol / 3))
    h = G.box_handle_at(rec.bbox, x, y, t)
    return Hit(HitKind.HANDLE, rec.id, handle=h) if h else None


def hit_at(ctx: CanvasContext, x: float, y: float, complete: bool = True) -> Hit | None:
    """What a press of the select tool at (x, y) would grab: a handle of a selected
    shape, else a handle of any shape near, else the body of the shape under it.
    `complete=False` (a hover): judged by the shapes built so far, reading nothing while
    an image's shapes still arrive; a press builds those near (x, y) first."""
    shapes = ctx.shapes
    tol = ctx.tol(HIT_PX)
    for ann_id in sorted(shapes.selected):
        rec = shapes.record(ann_id)
        h = grab_hit(rec, x, y, tol) if rec else None
        if h:
            return h
    for item in shapes.shapes_near(x, y, tol, complete):
        h = grab_hit(item.record, x, y, tol)
        if h:
            return h
    ann_id = shapes.shape_at(x, y, complete)
    return Hit(HitKind.BODY, ann_id) if ann_id is not None else None


def edge_at(ctx: CanvasContext, x: float, y: float) -> tuple[int, int, int, float, float] | None:
    """(ann id, part, insert index, x, y) on the nearest polygon edge in reach;
    selected polygons first, then any polygon under or near the cursor."""
    shapes = ctx.shapes
    tol = ctx.tol(HIT_PX)
    candidates = sorted(shapes.selected) + [it.ann_id for it in shapes.shapes_near(x, y, tol)]
    for ann_id in candidates:
        rec = shapes.record(ann_id)
        if rec is not None and rec.kind == ShapeKind.POLYGON and rec.polygons:
            e = G.nearest_edge(rec.polygons, x, y, tol)
            if e:
                return (ann_id, *e)
    return None


_HANDLE_CURSORS = {
    "tl": Qt.CursorShape.SizeFDiagCursor, "br": Qt.CursorShape.SizeFDiagCursor,
    "tr": Qt.CursorShape.SizeBDiagCursor, "bl": Qt.CursorShape.SizeBDiagCursor,
    "l": Qt.CursorShape.SizeHorCursor, "r": Qt.CursorShape.SizeHorCursor,
}  # fmt: skip


def cursor_for(hit: Hit | None, selecting: bool) -> Qt.CursorShape:
    """The mouse cursor over `hit` (None: over nothing; `selecting`: the select tool
    is active, else a drawing tool, which shows a cross)."""
    shape = Qt.CursorShape
    if hit is None:
        return shape.ArrowCursor if selecting else shape.CrossCursor
    if hit.kind == HitKind.VERTEX:
        return shape.PointingHandCursor
    if hit.kind == HitKind.HANDLE:
        return _HANDLE_CURSORS.get(hit.handle, shape.SizeVerCursor)
    return shape.SizeAllCursor

"""Shape arithmetic for the canvas's gestures, in image pixels (no Qt, easy to test).

Boxes are (x, y, w, h); polygons are lists of flat [x0, y0, x1, y1, ...] parts, as the
project stores them. Box handles are named by the sides they move: "l", "r", "t", "b"
and the corners "tl", "tr", "bl", "br".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from studio.core.geometry import clip_bbox, clip_polygons, polygon_area
from studio.core.kinds import ShapeKind
from studio.core.records import BBox, Polygons

CORNERS = ("tl", "tr", "bl", "br")
SIDES = ("l", "r", "t", "b")
MIN_SIZE = 1.0  # smallest box side a resize leaves, in image pixels


def r2(v: float) -> float:
    """Round to 1/100 px: below any mouse's precision, and keeps the database tidy."""
    return round(v, 2)


def clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def box_from_points(x0: float, y0: float, x1: float, y1: float) -> BBox:
    """The box spanned by two corners in any order."""
    return (r2(min(x0, x1)), r2(min(y0, y1)), r2(abs(x1 - x0)), r2(abs(y1 - y0)))


def limit_shift(
    bbox: BBox, dx: float, dy: float, width: float, height: float
) -> tuple[float, float]:
    """Shorten a move (dx, dy) so a shape with this box stays inside the image: a shape
    dragged against the border slides along it instead of leaving the picture."""
    x, y, w, h = bbox
    dx = clamp(dx, -x, max(width - (x + w), -x))
    dy = clamp(dy, -y, max(height - (y + h), -y))
    return dx, dy


def shift_box(bbox: BBox, dx: float, dy: float) -> BBox:
    return (r2(bbox[0] + dx), r2(bbox[1] + dy), bbox[2], bbox[3])


def shift_polygons(polys: Polygons, dx: float, dy: float) -> Polygons:
    out = []
    for part in polys:
        p = list(part)
        p[0::2] = [r2(v + dx) for v in p[0::2]]
        p[1::2] = [r2(v + dy) for v in p[1::2]]
        out.append(p)
    return out


def resize_box(bbox: BBox, handle: str, x: float, y: float, width: float, height: float) -> BBox:
    """Move the sides named in `handle` to the point (x, y), clamped to the image. A side
    dragged past its opposite swaps over (the box flips), as in every drawing program."""
    x = clamp(x, 0.0, width)
    y = clamp(y, 0.0, height)
    x0, y0, x1, y1 = bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]
    if "l" in handle:
        x0 = x
    if "r" in handle:
        x1 = x
    if "t" in handle:
        y0 = y
    if "b" in handle:
        y1 = y
    bx, by, bw, bh = box_from_points(x0, y0, x1, y1)
    # Keep a sliver rather than a zero-size box, which the project refuses.
    if bw < MIN_SIZE:
        bw = MIN_SIZE
        bx = min(bx, width - MIN_SIZE)
    if bh < MIN_SIZE:
        bh = MIN_SIZE
        by = min(by, height - MIN_SIZE)
    return (bx, by, bw, bh)


def box_handle_points(bbox: BBox) -> dict[str, tuple[float, float]]:
    """Where each handle of a box is drawn: corners and side midpoints."""
    x, y, w, h = bbox
    return {
        "tl": (x, y), "tr": (x + w, y), "bl": (x, y + h), "br": (x + w, y + h),
        "t": (x + w / 2, y), "b": (x + w / 2, y + h), "l": (x, y + h / 2), "r": (x + w, y + h / 2),
    }  # fmt: skip


def box_handle_at(bbox: BBox, px: float, py: float, tol: float) -> str | None:
    """The handle under (px, py): a corner within `tol`, else a side within `tol` of its
    line anywhere along it (the whole edge is grabbable, not only its midpoint)."""
    x, y, w, h = bbox
    best, best_d = None, tol
    for name in CORNERS:
        cx, cy = box_handle_points(bbox)[name]
        d = math.hypot(px - cx, py - cy)
        if d <= best_d:
            best, best_d = name, d
    if best:
        return best
    inside_x = x - tol <= px <= x + w + tol
    inside_y = y - tol <= py <= y + h + tol
    sides = (
        ("l", abs(px - x), inside_y), ("r", abs(px - (x + w)), inside_y),
        ("t", abs(py - y), inside_x), ("b", abs(py - (y + h)), inside_x),
    )  # fmt: skip
    for name, d, along in sides:
        if along and d <= best_d:
            best, best_d = name, d
    return best


def nearest_vertex(polys: Polygons, px: float, py: float, tol: float) -> tuple[int, int] | None:
    """(part, vertex index) of the vertex nearest (px, py) within `tol`, else None."""
    best, best_d = None, tol
    for pi, part in enumerate(polys):
        for vi in range(len(part) // 2):
            d = math.hypot(part[2 * vi] - px, part[2 * vi + 1] - py)
            if d <= best_d:
                best, best_d = (pi, vi), d
    return best


def nearest_edge(
    polys: Polygons, px: float, py: float, tol: float
) -> tuple[int, int, float, float] | None:
    """(part, index the new vertex gets, x, y) for the point on an edge nearest (px, py)
    within `tol`, else None. The point is the projection onto the edge, so inserting a
    vertex there never changes the outline."""
    best, best_d = None, tol
    for pi, part in enumerate(polys):
        n = len(part) // 2
        for i in range(n):
            ax, ay = part[2 * i], part[2 * i + 1]
            bx, by = part[2 * ((i + 1) % n)], part[2 * ((i + 1) % n) + 1]
            vx, vy = bx - ax, by - ay
            ll = vx * vx + vy * vy
            t = 0.0 if ll == 0 else clamp(((px - ax) * vx + (py - ay) * vy) / ll, 0.0, 1.0)
            qx, qy = ax + t * vx, ay + t * vy
            d = math.hypot(px - qx, py - qy)
            if d <= best_d:
                best, best_d = (pi, i + 1, r2(qx), r2(qy)), d
    return best


def with_vertex(polys: Polygons, part: int, index: int, x: float, y: float) -> Polygons:
    """A copy of `polys` with vertex `index` of `part` moved to (x, y)."""
    out = [list(p) for p in polys]
    out[part][2 * index] = r2(x)
    out[part][2 * index + 1] = r2(y)
    return out


def inserted_vertex(polys: Polygons, part: int, index: int, x: float, y: float) -> Polygons:
    out = [list(p) for p in polys]
    out[part][2 * index : 2 * index] = [r2(x), r2(y)]
    return out


def removed_vertex(polys: Polygons, part: int, index: int) -> Polygons | None:
    """A copy without that vertex, or None when the part would drop below 3 points."""
    if len(polys[part]) // 2 <= 3:
        return None
    out = [list(p) for p in polys]
    del out[part][2 * index : 2 * index + 2]
    return out


def clipped_shape(
    kind: str, bbox: BBox, polys: Polygons | None, width: float, height: float
) -> tuple[BBox, Polygons | None] | None:
    """A shape made to fit another image (paste, copy from previous): boxes are clipped,
    polygon vertices clamped into the image; None when nothing of it is left."""
    if kind == ShapeKind.POLYGON and polys:
        parts = [p for p in clip_polygons(polys, width, height) if polygon_area(p) > 0.5]
        if not parts:
            return None
        parts = [[r2(v) for v in p] for p in parts]
        xs = [v for p in parts for v in p[0::2]]
        ys = [v for p in parts for v in p[1::2]]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), parts
    if kind == ShapeKind.BOX:
        b = clip_bbox(bbox, width, height)
        if b[2] < MIN_SIZE or b[3] < MIN_SIZE:
            return None
        return tuple(r2(v) for v in b), None  # type: ignore[return-value]
    return None


def bbox_area(bbox: Sequence[float]) -> float:
    return bbox[2] * bbox[3]

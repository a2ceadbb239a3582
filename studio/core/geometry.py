"""Geometry of shapes in image pixels (continuous coordinates: origin at the top-left
corner of the top-left pixel; a box covering the whole image is (0, 0, W, H))."""

from __future__ import annotations

from collections.abc import Sequence
from operator import mul

from studio.core.records import BBox


def bbox_of_polygons(polygons: Sequence[Sequence[float]]) -> BBox:
    """Tight (x, y, w, h) around all parts of a polygon given as flat x, y lists."""
    x0 = min(min(part[0::2]) for part in polygons)
    y0 = min(min(part[1::2]) for part in polygons)
    x1 = max(max(part[0::2]) for part in polygons)
    y1 = max(max(part[1::2]) for part in polygons)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def clip_bbox(bbox: BBox, width: float, height: float) -> BBox:
    """Clip (x, y, w, h) to the image; the result may have zero size."""
    x0 = min(max(bbox[0], 0.0), width)
    y0 = min(max(bbox[1], 0.0), height)
    x1 = min(max(bbox[0] + bbox[2], 0.0), width)
    y1 = min(max(bbox[1] + bbox[3], 0.0), height)
    return (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))


def clip_polygons(polygons: list[list[float]], width: float, height: float) -> list[list[float]]:
    """Clamp every vertex into the image. (Clamping, not true polygon clipping: it keeps
    the vertex count, which the canvas's vertex editing relies on.)"""
    out = []
    for part in polygons:
        p = list(part)
        p[0::2] = [min(max(v, 0.0), width) for v in p[0::2]]
        p[1::2] = [min(max(v, 0.0), height) for v in p[1::2]]
        out.append(p)
    return out


def polygon_area(part: Sequence[float]) -> float:
    """Shoelace area of one flat polygon part, in square pixels."""
    xs, ys = part[0::2], part[1::2]
    xs1, ys1 = xs[1:] + xs[:1], ys[1:] + ys[:1]
    # map/operator keeps the loop in C: this runs once per shape of a million-shape import.
    return abs(sum(map(mul, xs, ys1)) - sum(map(mul, xs1, ys))) / 2.0


def inside(bbox: BBox, width: float, height: float, tol: float = 1e-6) -> bool:
    return (
        bbox[0] >= -tol
        and bbox[1] >= -tol
        and bbox[0] + bbox[2] <= width + tol
        and bbox[1] + bbox[3] <= height + tol
    )

"""Checking one imported shape against its image: map it to displayed pixels, clip it
to the image, reject what is degenerate. Runs once per shape of a million-shape import,
so it stays plain Python over floats.

Coordinates are continuous pixels of the image as displayed (see `studio.core.geometry`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from studio.core.geometry import (
    bbox_of_polygons,
    clip_bbox,
    clip_polygon_part,
    inside,
    mask_from_rle,
    part_outside,
    polygon_area,
    rle_bbox,
    rle_from_mask,
)
from studio.core.imageinfo import orient_mask, orient_points
from studio.core.kinds import ShapeKind
from studio.core.records import AnnotationSpec, BBox, Polygons

# (orientation, raw width, raw height) of an image whose file coordinates refer to the
# stored pixels, before EXIF orientation.
Orientation = tuple[int, int, int]
# report.problem(kind, example): counts a problem that does not stop the import.
ProblemSink = Callable[[str, str], None]
# (bbox, polygons, rle, changed): `changed` is True when clipping altered the geometry,
# so an area the file declared no longer describes it.
CheckedShape = tuple[BBox, Polygons | None, dict | None, bool]


def check_shape(
    a: AnnotationSpec, w: int, h: int, transform: Orientation | None, problem: ProblemSink
) -> CheckedShape | None:
    """(bbox, polygons, rle, changed) of `a` on a w x h image as displayed, clipped to
    it, or None if it was rejected (each rejection and clipping is reported to `problem`)."""
    where = a.where or a.image_key
    bbox, polys, rle = a.bbox, a.polygons, a.rle
    if transform is not None:
        bbox, polys = _oriented(bbox, polys, transform)
        if rle is not None:
            rle, bbox = _oriented_mask(rle, transform)
    if a.kind == ShapeKind.MASK:
        return _check_mask(bbox, rle, w, h, where, problem)
    if a.kind == ShapeKind.POLYGON:
        return _check_polygon(polys, w, h, where, problem)
    return _check_box(bbox, w, h, where, problem)


def _oriented(
    bbox: BBox, polys: Polygons | None, transform: Orientation
) -> tuple[BBox, Polygons | None]:
    """Box and polygons rotated from stored pixels to displayed pixels."""
    orientation, raw_w, raw_h = transform
    if polys is not None:
        polys = [
            orient_points(np.asarray(p, float).reshape(-1, 2), orientation, raw_w, raw_h)
            .ravel()
            .tolist()
            for p in polys
        ]
    corners = np.array([[bbox[0], bbox[1]], [bbox[0] + bbox[2], bbox[1] + bbox[3]]], float)
    c = orient_points(corners, orientation, raw_w, raw_h)
    x0, y0 = c.min(0)
    x1, y1 = c.max(0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0)), polys


def _oriented_mask(rle: dict, transform: Orientation) -> tuple[dict, BBox]:
    """A mask of the stored pixels turned to the displayed ones, and its box; one of
    another size is left as it is (the size check then rejects it)."""
    orientation, raw_w, raw_h = transform
    if list(rle.get("size", [])) != [raw_h, raw_w]:
        return rle, (0.0, 0.0, 0.0, 0.0)
    turned = rle_from_mask(orient_mask(mask_from_rle(rle), orientation))
    return turned, rle_bbox(turned)


def _check_mask(
    bbox: BBox, rle: dict | None, w: int, h: int, where: str, problem: ProblemSink
) -> CheckedShape | None:
    if rle is None or list(rle.get("size", [])) != [h, w]:
        problem("masks rejected (size differs from the image)", where)
        return None
    if bbox[2] <= 0 or bbox[3] <= 0:
        problem("empty masks rejected", where)
        return None
    return (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])), None, rle, False


def _check_polygon(
    polys: Polygons | None, w: int, h: int, where: str, problem: ProblemSink
) -> CheckedShape | None:
    if polys is None:
        problem("polygons rejected (no points)", where)
        return None
    out = []
    clipped = False
    for part in polys:
        part = list(map(float, part))
        if part_outside(part, w, h):
            clipped = True
            part = clip_polygon_part(part, w, h)
        if len(part) >= 6 and polygon_area(part) > 0:
            out.append(part)
    if not out:
        problem("degenerate polygons rejected (fewer than 3 points or zero area)", where)
        return None
    if len(out) < len(polys):
        # The shape survives without them, but a part lost is a label changed.
        problem("polygon parts dropped (fewer than 3 points or zero area)", where)
    if clipped:
        problem("polygons clipped to the image", where)
    return bbox_of_polygons(out), out, None, clipped or len(out) < len(polys)


def _check_box(bbox: BBox, w: int, h: int, where: str, problem: ProblemSink) -> CheckedShape | None:
    if not (bbox[2] > 0 and bbox[3] > 0):
        problem("zero-area boxes rejected", where)
        return None
    if not inside(bbox, w, h):
        clipped = clip_bbox(bbox, w, h)
        if not (clipped[2] > 0 and clipped[3] > 0):
            problem("boxes outside the image rejected", where)
            return None
        problem("boxes clipped to the image", where)
        return clipped, None, None, True
    return (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])), None, None, False

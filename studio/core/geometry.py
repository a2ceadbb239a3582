"""Geometry of shapes in image pixels: the one place for boxes, areas, clipping and
polygon/mask conversions.

Coordinates are continuous pixels of the image as displayed: origin at the top-left
corner of the top-left pixel, so pixel (i, j) covers [i, i + 1) x [j, j + 1) and a box
covering the whole image is (0, 0, W, H). Polygons are lists of flat
[x0, y0, x1, y1, ...] parts. Masks are COCO run-length encodings (RLE): a dict
{"size": [height, width], "counts": str} in compressed form, or with a list of run
lengths in uncompressed form; binary masks are uint8 arrays of shape [height, width].

pycocotools is imported inside the mask functions: opening a project must not pay for
it (it is only needed when a mask is converted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any

import numpy as np

from studio.core.records import BBox, Polygons

# --- boxes and polygons ------------------------------------------------------------------


def bbox_of_polygons(polygons: Sequence[Sequence[float]]) -> BBox:
    """Tight (x, y, w, h) around all parts of a polygon given as flat x, y lists."""
    x0 = min(min(part[0::2]) for part in polygons)
    y0 = min(min(part[1::2]) for part in polygons)
    x1 = max(max(part[0::2]) for part in polygons)
    y1 = max(max(part[1::2]) for part in polygons)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def rotated_box(bbox: BBox, degrees: float) -> list[float]:
    """The corners (flat x, y list) of box (x, y, w, h) turned `degrees` about its
    centre, clockwise on screen (image y grows downwards), as CVAT and X-AnyLabeling
    store a rotated box: the box before turning plus an angle."""
    x, y, w, h = bbox
    cx, cy = x + w / 2, y + h / 2
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    out: list[float] = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        out += [round(cx + dx * c - dy * s, 6), round(cy + dx * s + dy * c, 6)]
    return out


def clip_bbox(bbox: BBox, width: float, height: float) -> BBox:
    """Clip (x, y, w, h) to the image; the result may have zero size."""
    x0 = min(max(bbox[0], 0.0), width)
    y0 = min(max(bbox[1], 0.0), height)
    x1 = min(max(bbox[0] + bbox[2], 0.0), width)
    y1 = min(max(bbox[1] + bbox[3], 0.0), height)
    return (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))


def clip_polygon_part(part: list[float], width: float, height: float) -> list[float]:
    """Clamp every vertex of one flat part into the image (a new list)."""
    p = list(part)
    p[0::2] = [min(max(v, 0.0), width) for v in p[0::2]]
    p[1::2] = [min(max(v, 0.0), height) for v in p[1::2]]
    return p


def clip_polygons(polygons: list[list[float]], width: float, height: float) -> list[list[float]]:
    """Clamp every vertex into the image. (Clamping, not true polygon clipping: it keeps
    the vertex count, which the canvas's vertex editing relies on.)"""
    return [clip_polygon_part(part, width, height) for part in polygons]


def part_outside(part: Sequence[float], width: float, height: float) -> bool:
    """True if any vertex of one flat part lies outside [0, width] x [0, height]."""
    xs, ys = part[0::2], part[1::2]
    return min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height


def polygon_area(part: Sequence[float]) -> float:
    """Shoelace area of one flat polygon part, in square pixels."""
    xs, ys = part[0::2], part[1::2]
    xs1, ys1 = xs[1:] + xs[:1], ys[1:] + ys[:1]
    # map/operator keeps the loop in C: this runs once per shape of a million-shape import.
    return abs(sum(map(mul, xs, ys1)) - sum(map(mul, xs1, ys))) / 2.0


def inside(bbox: BBox, width: float, height: float, tol: float = 1e-6) -> bool:
    """True if the box lies within the image (up to `tol` pixels)."""
    return (
        bbox[0] >= -tol
        and bbox[1] >= -tol
        and bbox[0] + bbox[2] <= width + tol
        and bbox[1] + bbox[3] <= height + tol
    )


# --- masks (COCO RLE) ---------------------------------------------------------------------


def _drawable(polygons: Sequence[Sequence[float]]) -> list[list[float]]:
    # pycocotools reads a part of exactly 4 numbers as a box, and fewer than 6 cannot
    # enclose anything, so such degenerate parts are left out.
    return [list(map(float, p)) for p in polygons if len(p) >= 6]


def rle_from_polygons(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict | None:
    """The merged compressed RLE of all parts rasterised on a height x width grid
    (pycocotools' rasterisation), with str counts; None if no part can enclose anything."""
    from pycocotools import mask as mask_utils

    parts = _drawable(polygons)
    if not parts:
        return None
    return _str_counts(mask_utils.merge(mask_utils.frPyObjects(parts, height, width)))


def rasterized_polygon_area(polygons: Sequence[Sequence[float]], height: int, width: int) -> float:
    """Area in pixels of the polygon rasterised on the image grid, as COCO computes an
    annotation's "area" (not the shoelace area)."""
    rle = rle_from_polygons(polygons, height, width)
    return rle_area(rle) if rle is not None else 0.0


def mask_from_polygons(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """uint8 [height, width] mask of the polygon's parts (all zero if none encloses anything)."""
    rle = rle_from_polygons(polygons, height, width)
    if rle is None:
        return np.zeros((height, width), np.uint8)
    return mask_from_rle(rle)


def compressed_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """A COCO RLE in compressed form with str counts: {"size": [h, w], "counts": str}.
    Accepts uncompressed (list counts) and bytes counts."""
    from pycocotools import mask as mask_utils

    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        return _str_counts(mask_utils.frPyObjects(rle, h, w))
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [h, w], "counts": counts}


# The largest image (width x height) a mask read from a file is placed on: a file's
# declared size is not checked against the image yet when its masks are read, and
# 10,000 x 10,000 already takes 100 MB.
MAX_MASK_PIXELS = 100_000_000


def place_piece(piece: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
    """A `height` x `width` bool mask holding `piece` with its top-left pixel at
    (`left`, `top`); what falls outside the image (on any side) is cut off."""
    full = np.zeros((height, width), dtype=bool)
    ph, pw = piece.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ph, height), min(left + pw, width)
    if y1 > y0 and x1 > x0:
        full[y0:y1, x0:x1] = piece[y0 - top : y1 - top, x0 - left : x1 - left]
    return full


def rle_from_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE (str counts) of a binary [height, width] mask (non-zero = inside)."""
    from pycocotools import mask as mask_utils

    return _str_counts(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def mask_from_rle(rle: dict[str, Any]) -> np.ndarray:
    """uint8 [height, width] binary mask of a COCO RLE (compressed or not)."""
    from pycocotools import mask as mask_utils

    if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    m = mask_utils.decode(rle)
    return m[:, :, 0] if m.ndim == 3 else m


def rle_area(rle: dict[str, Any]) -> float:
    """Number of pixels inside a compressed RLE."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(rle))


def rle_bbox(rle: dict[str, Any]) -> BBox:
    """Tight (x, y, w, h) box of a compressed RLE, in pixels (whole pixels: a mask pixel
    (i, j) contributes [i, i + 1) x [j, j + 1))."""
    from pycocotools import mask as mask_utils

    x, y, w, h = mask_utils.toBbox(rle)
    return (float(x), float(y), float(w), float(h))


def bbox_of_mask(mask: np.ndarray) -> BBox | None:
    """Tight (x, y, w, h) box of the non-zero pixels of a [height, width] mask; None if
    the mask is empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    x0, y0 = float(xs.min()), float(ys.min())
    return (x0, y0, float(xs.max() + 1) - x0, float(ys.max() + 1) - y0)


def polygons_from_rle(rle: dict[str, Any]) -> Polygons:
    """Outer contours of a COCO RLE mask as flat polygons, in continuous pixels.

    Points are pixel centres (contour index + 0.5) of the boundary pixels, so the polygon
    runs through the middle of the mask's edge pixels; holes are dropped (outer contours
    only). A region too thin for a contour of 3 points (a single pixel, a 1-pixel line)
    becomes the outline of its pixels' box, so no region is lost.
    """
    import cv2

    m = np.ascontiguousarray(mask_from_rle(rle), dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts: Polygons = []
    for c in contours:
        if len(c) >= 3:
            parts.append([float(v) + 0.5 for v in c.reshape(-1)])
        else:
            x, y, w, h = cv2.boundingRect(c)
            parts.append([float(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h)])
    return parts


def _str_counts(rle: dict[str, Any]) -> dict[str, Any]:
    # pycocotools hands out bytes counts; JSON and the database want str.
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def rle_run_lengths(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE counts string (pycocotools' rleFrString,
    in Python so that a hostile string is checked before the C code reads it).

    Raises ValueError for a character outside the format's alphabet, a string cut
    inside a number, or a negative run (what an overlong or corrupt string decodes to).
    """
    runs: list[int] = []
    p, n = 0, len(counts)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("the counts string ends inside a number")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[p]!r} is not RLE counts text")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError(f"run {len(runs) + 1} has a negative length")
        runs.append(x)
    return runs

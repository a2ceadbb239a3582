"""Checking shapes and building annotation rows: shared by edits, imports and the canvas.

Coordinates are pixels of the image as displayed (after EXIF orientation), floats;
a box is (x, y, w, h) with its origin at the top-left corner.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.geometry import bbox_of_polygons
from studio.core.kinds import ShapeKind, Source
from studio.core.records import ATTRIBUTE_FIELDS, FLAG_FIELDS, KINDS, SOURCES, BBox


def validate_bbox(bbox: Sequence[float]) -> None:
    """Raise `StudioError` unless `bbox` is 4 finite numbers with positive w and h."""
    if len(bbox) != 4:
        raise StudioError(f"a box needs 4 numbers (x, y, w, h), got {len(bbox)}")
    if not all(map(_finite, bbox)):
        raise StudioError(f"box {tuple(bbox)} has a non-finite coordinate")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise StudioError(f"box {tuple(bbox)} has zero or negative size")


def validate_polygons(polygons: Sequence[Sequence[float]]) -> None:
    """Raise `StudioError` unless every part has at least 3 finite x, y points."""
    if not polygons:
        raise StudioError("a polygon needs at least one part")
    for part in polygons:
        if len(part) % 2 or len(part) < 6:
            raise StudioError(
                f"a polygon part needs at least 3 points (x, y pairs), got {len(part)} numbers"
            )
        if not all(map(_finite, part)):
            raise StudioError("a polygon has a non-finite coordinate")


def _finite(v: float) -> bool:
    return v == v and v not in (math.inf, -math.inf)


def make_annotation_row(
    image_id: int,
    class_id: int,
    kind: str,
    bbox: BBox | None = None,
    polygons: list[list[float]] | None = None,
    rle: dict | None = None,
    source: str = Source.MANUAL,
    score: float | None = None,
    iscrowd: bool = False,
) -> dict:
    """A validated row for the annotations table (without id). Polygons get their box
    derived; masks need their RLE and box."""
    if kind not in KINDS:
        raise StudioError(f"unknown shape kind {kind!r}; use one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise StudioError(f"unknown source {source!r}")
    poly_json = rle_json = None
    if kind == ShapeKind.POLYGON:
        if polygons is None:
            raise StudioError("a polygon needs points")
        polygons = [list(map(float, p)) for p in polygons]
        validate_polygons(polygons)
        bbox = bbox_of_polygons(polygons)
        poly_json = json.dumps(polygons)
    elif kind == ShapeKind.MASK:
        if rle is None or bbox is None:
            raise StudioError("a mask needs its RLE and its box")
        rle_json = json.dumps(rle)
    if bbox is None:
        raise StudioError("a box needs x, y, w, h")
    validate_bbox(bbox)
    now = S.utcnow()
    return {
        "image_id": image_id, "class_id": class_id, "kind": str(kind),
        "x": float(bbox[0]), "y": float(bbox[1]), "w": float(bbox[2]), "h": float(bbox[3]),
        "polygons": poly_json, "rle": rle_json, "iscrowd": bool(iscrowd), "source": str(source),
        "score": score, "created_at": now, "updated_at": now,
    }  # fmt: skip


def shape_changes(change: dict[str, Any]) -> dict[str, Any]:
    """Annotation columns for one edit {"bbox"?, "polygons"?, "class_id"?} (None values
    ignored), validated. New polygons replace the box with the one around them."""
    fields: dict[str, Any] = {}
    if change.get("polygons") is not None:
        polys = [list(map(float, p)) for p in change["polygons"]]
        validate_polygons(polys)
        fields["polygons"] = json.dumps(polys)
        fields.update(zip("xywh", bbox_of_polygons(polys), strict=True))
    elif change.get("bbox") is not None:
        validate_bbox(change["bbox"])
        fields.update(zip("xywh", map(float, change["bbox"]), strict=True))
    if change.get("class_id") is not None:
        fields["class_id"] = int(change["class_id"])
    return fields


def attribute_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Annotation columns for an attribute edit {occluded?, truncated?, difficult?,
    group_id?, notes?}, validated: flags must be bools, group_id an int >= 0 or None,
    notes text ("" is stored as NULL: no notes)."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in FLAG_FIELDS:
            if not isinstance(value, bool):
                raise StudioError(f"attribute {name} must be true or false, got {value!r}")
            out[name] = value
        elif name == "group_id":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise StudioError(f"group id must be a whole number >= 0, got {value!r}")
            out[name] = value
        elif name == "notes":
            if not isinstance(value, str):
                raise StudioError(f"notes must be text, got {value!r}")
            out[name] = value or None
        else:
            raise StudioError(
                f"unknown attribute {name!r}; use one of {', '.join(ATTRIBUTE_FIELDS)}"
            )
    return out

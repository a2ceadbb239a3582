"""COCO writer (see `studio.core.formats.coco` for the reader): one JSON file, with the
images beside it when the export is a folder."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path, PurePath
from typing import Any

from studio.core.formats.attributes import coco_attributes_dict
from studio.core.formats.common import (
    atomic_output,
    link_or_copy,
    relative_posix,
    unique_stems,
)
from studio.core.geometry import bbox_of_polygons, compressed_rle, polygon_area, rle_area, rle_bbox
from studio.core.kinds import ShapeKind
from studio.core.records import AnnotationRecord, ExportSnapshot, ImageRecord


def write_coco(snapshot: ExportSnapshot, out: Path) -> list[str]:
    """Write the snapshot as COCO; return warnings (none so far).

    `out` is a folder (then `out/annotations.json`, with the images hard-linked, else
    copied, into `out/images/` under unique names, which file_name gives: the folder
    moves whole to another machine or tool) or a .json file (then file_name is each
    image's path relative to the file's folder, and no image is copied). Image and
    category ids are the database ids; width/height are the displayed size. `area` is
    the one the shape was imported with while it is unedited, else COCO's convention:
    the polygon's area (shoelace, summed over parts) for polygons, the pixel count for
    RLE masks, w*h for boxes; a mask's bbox comes from its RLE. The file appears whole
    or not at all (written under a temporary name, then renamed). Loads in
    `pycocotools.coco.COCO`.
    """
    out = Path(out)
    names: dict[int, str] = {}
    if out.is_dir() or out.suffix.lower() != ".json":
        stems = unique_stems(snapshot.images, nested=False)
        for im in snapshot.images:
            names[im.id] = stems[im.id] + PurePath(im.path).suffix
            link_or_copy(im.abs_path, out / "images" / names[im.id])
        out = out / "annotations.json"
    else:
        names = {im.id: relative_posix(im.abs_path, out.parent) for im in snapshot.images}
    data = coco_dict(snapshot, file_names=names)
    with atomic_output(out) as f:
        json.dump(data, f, ensure_ascii=False)
    return []


def coco_dict(snapshot: ExportSnapshot, file_names: dict[int, str] | None = None) -> dict[str, Any]:
    """The COCO structure `write_coco` writes. file_name: `file_names[image id]`, else
    the image's stored path with "/" separators (relative to the project folder for an
    image inside it)."""
    images = {im.id: im for im in snapshot.images}
    classes = sorted(snapshot.classes, key=lambda c: c.position)

    def file_name(im: ImageRecord) -> str:
        if file_names is not None:
            return file_names[im.id]
        return PurePath(im.path).as_posix()

    return {
        "info": _info(),
        "licenses": [],
        "images": [
            {"id": im.id, "file_name": file_name(im), "width": im.width, "height": im.height}
            for im in snapshot.images
        ],
        "categories": [{"id": c.id, "name": c.name, "supercategory": ""} for c in classes],
        "annotations": [_coco_annotation(a, images[a.image_id]) for a in snapshot.annotations],
    }


def _info() -> dict[str, Any]:
    now = _dt.datetime.now(_dt.UTC)
    return {
        "description": "Exported from Studio",
        "version": "1.0",
        "year": now.year,
        "contributor": "",
        "url": "",
        "date_created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _coco_annotation(a: AnnotationRecord, im: ImageRecord) -> dict[str, Any]:
    """One COCO annotation: segmentation, area and bbox as pycocotools computes them."""
    if a.kind == ShapeKind.MASK and a.rle is not None:
        seg: Any = compressed_rle(a.rle)
        area = rle_area(seg)
        bbox = list(rle_bbox(seg))
    elif a.kind == ShapeKind.POLYGON and a.polygons:
        seg = [[float(v) for v in p] for p in a.polygons]
        # COCO's files hold the polygon's own area, not its rasterised pixel count.
        area = sum(polygon_area(p) for p in seg)
        bbox = list(bbox_of_polygons(seg))
    else:
        x, y, w, h = (float(v) for v in a.bbox)
        seg, area, bbox = [], w * h, [x, y, w, h]
    if a.area is not None:
        # The area the shape was imported with, kept while the shape is unedited.
        area = a.area
    ann: dict[str, Any] = {
        "id": a.id,
        "image_id": a.image_id,
        "category_id": a.class_id,
        "bbox": bbox,
        "area": area,
        "segmentation": seg,
        "iscrowd": int(a.iscrowd),
        "attributes": coco_attributes_dict(a.attributes),
    }
    if a.score is not None:
        ann["score"] = float(a.score)
    return ann

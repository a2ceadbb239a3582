"""labelme JSON (one file per image, labelme 5.x schema): reader and writer.

labelme points are continuous pixel coordinates of the image as displayed (labelme
applies EXIF orientation when it loads an image), origin at the top-left corner: the
same convention as Studio, so nothing is shifted.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.core.errors import FormatError
from studio.core.formats.common import (
    MAX_DECLARED_SIDE,
    NOT_A_CLASS,
    ImageResolver,
    declared_side,
    first_seen_classes,
    is_number,
    load_json,
    relative_posix,
    unique_stems,
    without_not_a_class,
    write_text_atomic,
)
from studio.core.geometry import (
    MAX_MASK_PIXELS,
    bbox_of_polygons,
    place_piece,
    polygons_from_rle,
    rle_bbox,
    rle_from_mask,
)
from studio.core.imageinfo import iter_image_files
from studio.core.kinds import ShapeKind
from studio.core.records import (
    FLAG_FIELDS,
    NO_ATTRIBUTES,
    AnnotationRecord,
    AnnotationSpec,
    Attributes,
    DatasetSpec,
    ExportSnapshot,
    ImageSpec,
)

LABELME_VERSION = "5.5.0"
_SKIPPED_TYPES = ("line", "linestrip", "point", "points")
_CIRCLE_POINTS = 32  # a labelme circle becomes a polygon of this many points
# labelme's own conventions for "not a class": regions to ignore and the background;
# shapes so labelled are skipped and counted, and never become trainable classes.
IGNORED_LABELS = NOT_A_CLASS

# --- reading -------------------------------------------------------------------------------


def read_labelme(
    path: Path,
    images_dir: Path | None = None,
    class_names: list[str] | None = None,
    *,
    unlabelled: bool = True,
) -> DatasetSpec:
    """Read one labelme .json file or a folder of them (recursive).

    rectangle -> box (corners in any order); polygon -> polygon; shapes sharing a label
    and a non-null group_id are one instance (labelme's meaning of group_id) and become
    one multi-part polygon (a rectangle in such a group counts as its 4 corners).
    X-AnyLabeling's rotation -> polygon (its 4 corners); circle -> a 32-point polygon;
    mask (labelme 5.5: a PNG of the box its points give) -> mask; line/linestrip/point
    shapes are skipped, with one warning per type. X-AnyLabeling's "difficult" and
    "score" beside a shape's flags are kept. A folder's images that no JSON names come
    too, without shapes (`unlabelled=False`: not).
    imagePath is looked up relative to the JSON file first, then in the usual places.
    Image keys are the JSON paths relative to the folder read, without ".json"; labelme's
    imageWidth/imageHeight are the declared size. Attributes: group_id is kept as the
    shape's group id, description as its notes, and the shape flags occluded, truncated
    and difficult as those flags (a grouped instance takes its first part's). Classes: `class_names` first (if given),
    then the labels found, in order of appearance.
    """
    path = Path(path)
    root, files = _json_files(path)
    spec = DatasetSpec()
    resolver = ImageResolver(images_dir)
    keys_by_path: dict[Path, str] = {}
    found: dict[str, None] = {}
    skipped: Counter[str] = Counter()
    for f in files:
        rel = f.relative_to(root).with_suffix("").as_posix()
        data = load_json(f)
        if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
            raise FormatError(f, "shapes", 'not a labelme file: no "shapes" list')
        img = _image_path(f, data, resolver)
        key = keys_by_path.get(img)
        if key is None:
            key = keys_by_path[img] = rel
            w, h = (_dim(f, data, k) for k in ("imageWidth", "imageHeight"))
            spec.images.append(ImageSpec(key, img, w, h, None, f"{rel}.json"))
        for ann in _shapes(f, rel, key, data, skipped):
            found[ann.class_name] = None
            spec.annotations.append(ann)
    if path.is_dir() and unlabelled:
        _unlabelled_images(root, keys_by_path, spec)
    spec.classes = first_seen_classes(found, without_not_a_class(class_names, spec.warnings))
    for t, n in sorted(skipped.items()):
        spec.rejected[_skip_reason(t)] = n
    return spec


def _json_files(path: Path) -> tuple[Path, list[Path]]:
    """(the folder keys are relative to, the labelme files) of a file or folder."""
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise FormatError(path, "", "no such file or folder")
    # is_file(): a FIFO or device named *.json would block the import forever.
    files = sorted(p for p in path.rglob("*.json") if p.is_file())
    if not files:
        raise FormatError(path, "", "no .json files in this folder")
    return path, files


def _skip_reason(t: str) -> str:
    if t == "short_polygon":
        return "polygons with fewer than 3 points skipped"
    if t.startswith("label:"):
        return f"shapes labelled {t[6:]} skipped (labelme's not-a-class label)"
    return f"shapes of type {t!r} skipped (not supported)"


def _unlabelled_images(root: Path, keys_by_path: dict[Path, str], spec: DatasetSpec) -> None:
    """The folder's images that no JSON names: imported too, without shapes (labelme
    writes no file for an image left unlabelled)."""
    named = {p.resolve() for p in keys_by_path}
    n = 0
    for img in iter_image_files(root):
        if img.resolve() not in named:
            key = "image:" + img.relative_to(root).as_posix()
            spec.images.append(ImageSpec(key, img.absolute(), None, None, None, key[6:]))
            n += 1
    if n:
        spec.warnings.append(f"{n} images have no labelme file; they were imported without shapes")


def _image_path(f: Path, data: dict, resolver: ImageResolver) -> Path:
    name = data.get("imagePath")
    if not isinstance(name, str) or not name:
        raise FormatError(f, "imagePath", "missing; the file does not name its image")
    prefer = [f.parent / name.replace("\\", "/")]
    try:
        return resolver.resolve(name, f, "imagePath", prefer=prefer)
    except FormatError:
        if data.get("imageData"):
            raise FormatError(
                f,
                "imageData",
                f"image {name!r} not found; images embedded in labelme files are not "
                "supported yet: put the image file next to the JSON file",
            ) from None
        raise


def _dim(f: Path, data: dict, k: str) -> int | None:
    v = data.get(k)
    if v is None:
        return None
    if not declared_side(v):
        raise FormatError(
            f, k, f"must be a whole number of pixels up to {MAX_DECLARED_SIDE}, not {v!r:.40}"
        )
    return int(v)


def _points(f: Path, where: str, pts: Any) -> list[float]:
    if not isinstance(pts, list):
        raise FormatError(f, f"{where}.points", "must be a list of [x, y] points")
    flat: list[float] = []
    for k, p in enumerate(pts):
        if not (isinstance(p, list) and len(p) == 2 and is_number(p[0]) and is_number(p[1])):
            raise FormatError(f, f"{where}.points[{k}]", f"not an [x, y] point: {p!r}")
        flat += (float(p[0]), float(p[1]))
    return flat


def _shapes(f: Path, rel: str, key: str, data: dict, skipped: Counter[str]) -> list[AnnotationSpec]:
    shapes: list = data["shapes"]
    size = (data.get("imageHeight"), data.get("imageWidth"))
    out: list[AnnotationSpec] = []
    # (label, group_id) -> index in `out` of the instance the group's parts are added to.
    groups: dict[tuple[str, Any], int] = {}
    for i, s in enumerate(shapes):
        where = f"shapes[{i}]"
        if not isinstance(s, dict):
            raise FormatError(f, where, "must be an object")
        label = s.get("label")
        if not isinstance(label, str) or not label.strip():
            raise FormatError(f, f"{where}.label", "missing, or not a string")
        label = label.strip()
        if label in IGNORED_LABELS:
            skipped[f"label:{label}"] += 1
            continue
        # labelme treats a missing shape_type as a polygon.
        stype = s.get("shape_type") or "polygon"
        if stype not in ("rectangle", "polygon", "rotation", "circle", "mask"):
            skipped[str(stype)] += 1
            continue
        made = _one_shape(f, where, key, label, stype, s, size)
        if made is None:
            skipped["short_polygon"] += 1
            continue
        ann, part = made
        ann.where = f"{rel}: {where}"
        ann.attributes = _attributes(f, where, s)
        score = s.get("score")  # X-AnyLabeling: a model's confidence, kept
        ann.score = float(score) if is_number(score) and 0 <= score <= 1 else None
        if part is None:
            out.append(ann)
            continue
        gid = s.get("group_id")
        if gid is not None:
            g = groups.get((label, gid))
            if g is not None:
                first = out[g]
                if first.kind == ShapeKind.BOX:
                    x, y, w, h = first.bbox
                    first.polygons = [[x, y, x + w, y, x + w, y + h, x, y + h]]
                    first.kind = ShapeKind.POLYGON
                first.polygons.append(part)
                first.bbox = bbox_of_polygons(first.polygons)
                continue
            groups[(label, gid)] = len(out)
        out.append(ann)
    return out


def _one_shape(
    f: Path, where: str, key: str, label: str, stype: str, s: dict, size: tuple
) -> tuple[AnnotationSpec, list[float] | None] | None:
    """(shape, its outline for grouping: None for a mask) of one labelme shape; None
    for a polygon of fewer than 3 points."""
    pts = _points(f, where, s.get("points"))
    if stype == "mask":
        return _mask_shape(f, where, key, label, pts, s.get("mask"), size), None
    if stype == "rectangle":
        if len(pts) < 4:
            raise FormatError(f, f"{where}.points", "a rectangle needs 2 corner points")
        x0, x1 = min(pts[0::2]), max(pts[0::2])
        y0, y1 = min(pts[1::2]), max(pts[1::2])
        part = [x0, y0, x1, y0, x1, y1, x0, y1]
        return AnnotationSpec(key, label, ShapeKind.BOX, (x0, y0, x1 - x0, y1 - y0)), part
    # X-AnyLabeling's "rotation" is its 4 turned corners; a circle its centre and a
    # point on it.
    part = _circle(f, where, pts) if stype == "circle" else pts
    if len(part) < 6:
        return None
    box = bbox_of_polygons([part])
    return AnnotationSpec(key, label, ShapeKind.POLYGON, box, polygons=[part]), part


def _circle(f: Path, where: str, pts: list[float]) -> list[float]:
    """A labelme circle (centre, a point on it) as a polygon of `_CIRCLE_POINTS`."""
    if len(pts) != 4:
        raise FormatError(f, f"{where}.points", "a circle needs its centre and a point on it")
    cx, cy, px, py = pts
    r = math.hypot(px - cx, py - cy)
    out: list[float] = []
    for k in range(_CIRCLE_POINTS):
        t = 2 * math.pi * k / _CIRCLE_POINTS
        out += [round(cx + r * math.cos(t), 3), round(cy + r * math.sin(t), 3)]
    return out if r > 0 else []


def _mask_shape(
    f: Path, where: str, key: str, label: str, pts: list[float], data: Any, size: tuple
) -> AnnotationSpec:
    """labelme 5.5's "mask" shape: a PNG (base64) of the mask inside the box its two
    points give, placed on an image of the file's imageHeight x imageWidth."""
    h, w = size
    if not (isinstance(data, str) and len(pts) == 4 and declared_side(h) and declared_side(w)):
        raise FormatError(
            f, f"{where}.mask", "a mask needs its PNG, 2 corner points and the image's size"
        )
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as im:
            part = np.asarray(im.convert("L")) > 0
    except (ValueError, OSError) as e:
        raise FormatError(f, f"{where}.mask", f"not a base64 PNG: {e}") from None
    if int(w) * int(h) > MAX_MASK_PIXELS:
        raise FormatError(f, f"{where}.mask", f"a mask on a {w} x {h} image is too large to read")
    left, top = (math.floor(v) for v in pts[:2])
    rle = rle_from_mask(place_piece(part, left, top, int(w), int(h)))
    return AnnotationSpec(key, label, ShapeKind.MASK, rle_bbox(rle), rle=rle)


def _attributes(f: Path, where: str, s: dict) -> Attributes:
    gid = s.get("group_id")
    if gid is not None and (isinstance(gid, bool) or not isinstance(gid, int) or gid < 0):
        raise FormatError(f, f"{where}.group_id", f"must be a whole number >= 0 or null: {gid!r}")
    notes = s.get("description")
    notes = notes.strip() if isinstance(notes, str) else ""
    flags = s.get("flags")
    flags = dict(flags) if isinstance(flags, dict) else {}
    if s.get("difficult") is True:  # X-AnyLabeling keeps it beside the flags
        flags["difficult"] = True
    found = Attributes(*(flags.get(k) is True for k in FLAG_FIELDS), gid, notes)
    return NO_ATTRIBUTES if found.is_default() else found


# --- writing -------------------------------------------------------------------------------


def write_labelme(snapshot: ExportSnapshot, out: Path) -> list[str]:
    """Write one labelme 5.x JSON per image under `out`, mirroring the images' folders.

    Boxes are rectangles (top-left and bottom-right corners), polygons polygons; a
    multi-part shape is written as one polygon per part sharing a group_id (labelme's way
    of marking one instance); masks become the polygons of their outer contours. A
    shape's group id is written as its group_id (a multi-part shape without one gets a
    number no shape on the image uses), its notes as description, its flags as shape
    flags. Crowd regions (COCO iscrowd) are left out, as in YOLO exports.
    imagePath is relative to the JSON file; imageData is null. Returns warnings.
    """
    out = Path(out)
    names = {c.id: c.name for c in snapshot.classes}
    by_image: dict[int, list[AnnotationRecord]] = defaultdict(list)
    for a in snapshot.annotations:
        by_image[a.image_id].append(a)
    stems = unique_stems(snapshot.images, nested=True)
    counts: Counter[str] = Counter()
    for im in snapshot.images:
        dst = out / f"{stems[im.id]}.json"
        doc = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": _image_shapes(by_image.get(im.id, ()), names, counts),
            "imagePath": relative_posix(im.abs_path, dst.parent),
            "imageData": None,
            "imageHeight": im.height,
            "imageWidth": im.width,
        }
        write_text_atomic(dst, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    warnings = []
    if counts["mask"]:
        warnings.append(
            f"{counts['mask']} masks written as polygons of their outer contours "
            "(labelme files here hold no masks; holes are lost)"
        )
    if counts["empty_mask"]:
        warnings.append(f"{counts['empty_mask']} empty masks left out")
    if counts["crowd"]:
        warnings.append(
            f"{counts['crowd']} crowd regions (iscrowd) left out: labelme has no crowd flag, "
            "and a crowd region is not one object"
        )
    return warnings


def _image_shapes(
    anns: Iterable[AnnotationRecord], names: dict[int, str], counts: Counter[str]
) -> list[dict]:
    """labelme shapes of one image's annotations; counts masks and empty masks."""
    shapes: list[dict] = []
    anns = list(anns)
    next_group = 1 + max((a.attributes.group_id or 0 for a in anns), default=0)
    for a in anns:
        label = names[a.class_id]
        if a.iscrowd:  # labelme has no crowd flag, and a crowd region is not one object
            counts["crowd"] += 1
            continue
        if a.kind == ShapeKind.MASK and a.rle is not None:
            parts = polygons_from_rle(a.rle)
            counts["mask"] += 1
            if not parts:
                counts["empty_mask"] += 1
                continue
        elif a.kind == ShapeKind.POLYGON and a.polygons:
            parts = a.polygons
        else:
            x, y, w, h = (float(v) for v in a.bbox)
            shapes.append(_shape(label, [[x, y], [x + w, y + h]], "rectangle", a.attributes))
            continue
        at = a.attributes
        if len(parts) > 1 and at.group_id is None:
            at, next_group = replace(at, group_id=next_group), next_group + 1
        for part in parts:
            pts = [[float(px), float(py)] for px, py in zip(part[0::2], part[1::2], strict=True)]
            shapes.append(_shape(label, pts, "polygon", at))
    return shapes


def _shape(label: str, points: list[list[float]], shape_type: str, at: Attributes) -> dict:
    flags = {k: getattr(at, k) for k in FLAG_FIELDS} if any(
        getattr(at, k) for k in FLAG_FIELDS
    ) else {}  # fmt: skip
    return {
        "label": label,
        "points": points,
        "group_id": at.group_id,
        "description": at.notes,
        "shape_type": shape_type,
        "flags": flags,
    }

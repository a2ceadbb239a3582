"""labelme JSON (one file per image, labelme 5.x schema): reader and writer.

labelme points are continuous pixel coordinates of the image as displayed (labelme
applies EXIF orientation when it loads an image), origin at the top-left corner: the
same convention as Studio, so nothing is shifted.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from studio.core.geometry import bbox_of_polygons, polygons_from_rle
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
_SKIPPED_TYPES = ("circle", "line", "linestrip", "point", "points", "mask")
# labelme's own conventions for "not a class": regions to ignore and the background;
# shapes so labelled are skipped and counted, and never become trainable classes.
IGNORED_LABELS = NOT_A_CLASS

# --- reading -------------------------------------------------------------------------------


def read_labelme(
    path: Path, images_dir: Path | None = None, class_names: list[str] | None = None
) -> DatasetSpec:
    """Read one labelme .json file or a folder of them (recursive).

    rectangle -> box (corners in any order); polygon -> polygon; shapes sharing a label
    and a non-null group_id are one instance (labelme's meaning of group_id) and become
    one multi-part polygon (a rectangle in such a group counts as its 4 corners).
    circle/line/linestrip/point/mask shapes are skipped, with one warning per type.
    imagePath is looked up relative to the JSON file first, then in the usual places.
    Image keys are the JSON paths relative to the folder read, without ".json"; labelme's
    imageWidth/imageHeight are the declared size. Attributes: group_id is kept as the
    shape's group id, description as its notes, and the shape flags occluded, truncated
    and difficult as those flags (a grouped instance takes its first part's). Classes: `class_names` first (if given),
    then the labels found, in order of appearance.
    """
    path = Path(path)
    if path.is_file():
        root, files = path.parent, [path]
    elif path.is_dir():
        root = path
        # is_file(): a FIFO or device named *.json would block the import forever.
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise FormatError(path, "", "no .json files in this folder")
    else:
        raise FormatError(path, "", "no such file or folder")

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
            spec.images.append(ImageSpec(key, img, w, h, None, rel))
        for ann in _shapes(f, rel, key, data["shapes"], skipped):
            found[ann.class_name] = None
            spec.annotations.append(ann)
    spec.classes = first_seen_classes(found, without_not_a_class(class_names, spec.warnings))
    for t, n in sorted(skipped.items()):
        if t == "short_polygon":
            reason = "polygons with fewer than 3 points skipped"
        elif t.startswith("label:"):
            reason = f"shapes labelled {t[6:]} skipped (labelme's not-a-class label)"
        else:
            reason = f"shapes of type {t!r} skipped (not supported)"
        spec.rejected[reason] = n
    return spec


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


def _shapes(
    f: Path, rel: str, key: str, shapes: list, skipped: Counter[str]
) -> list[AnnotationSpec]:
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
        if stype not in ("rectangle", "polygon"):
            skipped[str(stype)] += 1
            continue
        pts = _points(f, where, s.get("points"))
        if stype == "rectangle":
            if len(pts) < 4:
                raise FormatError(f, f"{where}.points", "a rectangle needs 2 corner points")
            x0, x1 = min(pts[0::2]), max(pts[0::2])
            y0, y1 = min(pts[1::2]), max(pts[1::2])
            part = [x0, y0, x1, y0, x1, y1, x0, y1]
            ann = AnnotationSpec(key, label, ShapeKind.BOX, (x0, y0, x1 - x0, y1 - y0))
        else:
            if len(pts) < 6:
                skipped["short_polygon"] += 1
                continue
            part = pts
            ann = AnnotationSpec(
                key, label, ShapeKind.POLYGON, bbox_of_polygons([pts]), polygons=[pts]
            )
        ann.where = f"{rel}: {where}"
        ann.attributes = _attributes(f, where, s)
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


def _attributes(f: Path, where: str, s: dict) -> Attributes:
    gid = s.get("group_id")
    if gid is not None and (isinstance(gid, bool) or not isinstance(gid, int) or gid < 0):
        raise FormatError(f, f"{where}.group_id", f"must be a whole number >= 0 or null: {gid!r}")
    notes = s.get("description")
    notes = notes.strip() if isinstance(notes, str) else ""
    flags = s.get("flags")
    flags = flags if isinstance(flags, dict) else {}
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
    flags.
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

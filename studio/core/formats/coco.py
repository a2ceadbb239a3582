"""COCO detection / instance segmentation JSON: the reader (the writer: `coco_writer`).

Coordinates in COCO files are continuous pixel coordinates with the origin at the
top-left corner of the image, the same convention as Studio, so nothing is shifted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from studio.core.errors import FormatError
from studio.core.formats.attributes import coco_attributes
from studio.core.formats.common import (
    MAX_DECLARED_SIDE,
    ImageResolver,
    declared_side,
    gc_paused,
    is_number,
    load_json,
)
from studio.core.geometry import (
    bbox_of_polygons,
    compressed_rle,
    rle_bbox,
    rle_run_lengths,
    rotated_box,
)
from studio.core.kinds import ShapeKind
from studio.core.records import (
    NO_ATTRIBUTES,
    AnnotationSpec,
    DatasetSpec,
    ImageSpec,
)

_INF = math.inf
_NO_POLYGON: list = [[]]
# Plain strings in the hot loop: specs carry the stored values.
_BOX, _POLYGON, _MASK = ShapeKind.BOX.value, ShapeKind.POLYGON.value, ShapeKind.MASK.value


def _find_json(path: Path) -> Path:
    """The COCO file to read when the user gave a folder: annotations.json or the only
    .json there, else the only one in its annotations/ folder (CVAT's and COCO's own
    layout: annotations/instances_default.json), preferring an instances_*.json."""
    if not path.is_dir():
        return path
    default = path / "annotations.json"
    if default.is_file():
        return default
    found = sorted(path.glob("*.json")) or sorted((path / "annotations").glob("*.json"))
    instances = [f for f in found if f.name.startswith("instances_")]
    if len(found) == 1 or len(instances) == 1:
        return found[0] if len(found) == 1 else instances[0]
    if not found:
        problem = "no .json file in this folder or its annotations/ folder"
    else:
        names = ", ".join(f.name for f in found[:4]) + (", ..." if len(found) > 4 else "")
        problem = f"more than one .json file here ({names})"
    raise FormatError(path, "", f"{problem}; give the COCO annotation file itself")


def read_coco(
    path: Path, images_dir: Path | None = None, class_names: list[str] | None = None
) -> DatasetSpec:
    """Read a COCO JSON file (or the folder holding it) into a `DatasetSpec`.

    Classes are the categories sorted by category id (`class_names` is ignored: a COCO
    file names its classes). Image keys are the COCO image ids as text; images' declared
    width/height are kept. Polygons keep the file's numbers as parsed (ints stay ints);
    their bbox is the tight box of the points, not the file's "bbox". RLE masks (compressed
    or not) become compressed RLE with str counts and bbox from `pycocotools` toBbox.
    Structural problems raise `FormatError` naming e.g. "annotations[12].bbox".
    """
    path = _find_json(Path(path))
    with gc_paused():
        return _read(path, images_dir)


def _read(path: Path, images_dir: Path | None) -> DatasetSpec:
    data = load_json(path)
    if isinstance(data, list):
        raise FormatError(
            path,
            "top level",
            "this is a list (a COCO results file?); expected an object with "
            '"images", "annotations" and "categories"',
        )
    if not isinstance(data, dict):
        raise FormatError(path, "top level", "expected a JSON object")
    spec = DatasetSpec()
    cat_names = _read_categories(path, data, spec)
    image_keys = _read_images(path, data, spec, ImageResolver(images_dir))
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise FormatError(path, "annotations", "must be a list")
    spec.annotations, rotated = _read_annotations(path, anns, image_keys, cat_names)
    if rotated:
        spec.warnings.append(
            f'{rotated} rotated box{"es" if rotated > 1 else ""} (CVAT\'s "rotation" '
            "attribute) imported as 4-point polygons"
        )
    return spec


def _read_categories(path: Path, data: dict, spec: DatasetSpec) -> dict[Any, str]:
    cats = data.get("categories", [])
    if not isinstance(cats, list):
        raise FormatError(path, "categories", "must be a list")
    by_id: dict[int, str] = {}
    for i, c in enumerate(cats):
        if not isinstance(c, dict):
            raise FormatError(path, f"categories[{i}]", "must be an object")
        cid, name = c.get("id"), c.get("name")
        if type(cid) is not int:
            raise FormatError(path, f"categories[{i}].id", f"must be an integer, not {cid!r}")
        if not isinstance(name, str) or not name.strip():
            raise FormatError(path, f"categories[{i}].name", "must be a non-empty string")
        if cid in by_id:
            raise FormatError(path, f"categories[{i}].id", f"duplicate category id {cid}")
        by_id[cid] = name.strip()
    classes: dict[str, None] = {}
    for cid in sorted(by_id):
        name = by_id[cid]
        if name in classes:
            spec.warnings.append(
                f"{path.name}: category name {name!r} is used by more than one category id; "
                "their annotations are merged into one class"
            )
        classes[name] = None
    spec.classes = list(classes)
    return by_id


def _read_images(
    path: Path, data: dict, spec: DatasetSpec, resolver: ImageResolver
) -> dict[Any, str]:
    images = data.get("images")
    if not isinstance(images, list):
        raise FormatError(path, "images", "missing, or not a list")
    keys: dict[Any, str] = {}
    used: set[str] = set()
    fname = path.name
    for i, im in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            raise FormatError(path, where, "must be an object")
        iid = im.get("id")
        if type(iid) not in (int, str):
            raise FormatError(path, f"{where}.id", f"must be an integer or string, not {iid!r}")
        key = str(iid)
        if iid in keys or key in used:
            raise FormatError(path, f"{where}.id", f"duplicate image id {iid!r}")
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            raise FormatError(path, f"{where}.file_name", "missing, or not a string")
        size = []
        for k in ("width", "height"):
            v = im.get(k)
            if v is not None and not declared_side(v):
                raise FormatError(
                    path,
                    f"{where}.{k}",
                    f"must be a whole number of pixels up to {MAX_DECLARED_SIDE}, not {_short(v)}",
                )
            size.append(int(v) if v is not None else None)
        img_path = resolver.resolve(name, path, f"{where}.file_name")
        keys[iid] = key
        used.add(key)
        spec.images.append(ImageSpec(key, img_path, size[0], size[1], None, f"{fname}: {where}"))
    return keys


def _rle(seg: dict) -> tuple[tuple[float, float, float, float], dict]:
    """(bbox, compressed RLE with str counts) of a COCO RLE; raises ValueError/TypeError."""
    size = seg["size"]
    h, w = size
    if type(h) is not int or type(w) is not int or h <= 0 or w <= 0:
        raise ValueError("size")
    counts = seg["counts"]
    if type(counts) is list:
        if sum(counts) != h * w:
            raise ValueError("counts")
        rle = compressed_rle(seg)
    elif type(counts) is str:
        # pycocotools trusts the string: an overlong one decodes past the image and
        # gives a box millions of pixels wide. The runs must cover the image exactly.
        total = sum(rle_run_lengths(counts))
        if total != h * w:
            raise ValueError(f"run lengths add up to {total}, not height*width = {h * w}")
        rle = {"size": [h, w], "counts": counts}
    else:
        raise TypeError("counts")
    return rle_bbox(rle), rle


def _parts_bbox(seg: list) -> tuple[float, float, float, float]:
    """Tight box of a multi-part polygon; raises ValueError/TypeError on a bad part."""
    x0 = y0 = _INF
    x1 = y1 = -_INF
    for part in seg:
        n = len(part)
        if not n or n & 1 or not math.isfinite(sum(part)):
            raise ValueError("segmentation")
        xs = part[0::2]
        ys = part[1::2]
        x0 = min(x0, min(xs))
        x1 = max(x1, max(xs))
        y0 = min(y0, min(ys))
        y1 = max(y1, max(ys))
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def _segment_shape(seg: Any) -> tuple[str, tuple[float, float, float, float], Any, Any]:
    """(kind, bbox, polygons, rle) of a non-empty segmentation; raises on a bad one."""
    if type(seg) is list:
        if len(seg) != 1:
            return _POLYGON, _parts_bbox(seg), seg, None
        # Nearly every polygon has one part: no running min/max needed.
        part = seg[0]
        n = len(part)
        if not n or n & 1 or not math.isfinite(sum(part)):
            raise ValueError("segmentation")
        xs = part[0::2]
        ys = part[1::2]
        x0 = min(xs)
        y0 = min(ys)
        bbox = (float(x0), float(y0), float(max(xs) - x0), float(max(ys) - y0))
        return _POLYGON, bbox, seg, None
    if type(seg) is dict:
        bbox, rle = _rle(seg)
        return _MASK, bbox, None, rle
    raise TypeError("segmentation")


def _read_annotations(
    path: Path, anns: list, image_keys: dict[Any, str], cat_names: dict[int, str]
) -> tuple[list[AnnotationSpec], int]:
    """The annotations, and how many were rotated boxes (made 4-point polygons).

    The hot loop of the million-annotation benchmark: locals only, no per-item numpy,
    and minimal checks whose failure (any exception included) hands over to _diagnose
    for a precise message. sum() rejects non-numbers and turns NaN/inf into a non-finite
    total, so one C-level call validates a whole polygon part."""
    out: list[AnnotationSpec] = []
    append, isfinite, spec_cls, box = out.append, math.isfinite, AnnotationSpec, _BOX
    prefix = f"{path.name}: annotations["
    ids: set = set()
    add_id = ids.add
    n_ids = rotated = 0
    for i, a in enumerate(anns):
        try:
            key = image_keys[a["image_id"]]
            cls = cat_names[a["category_id"]]
            seg = a.get("segmentation")
            # [[]] is how some tools say "no segmentation" too.
            if not seg or seg == _NO_POLYGON:
                x, y, w, h = a["bbox"]
                # JSON true/false are ints to Python; a box of booleans is no box.
                if not isfinite(x + y + w + h) or bool in (type(x), type(y), type(w), type(h)):
                    raise ValueError("bbox")
                kind, bbox, polys, rle = box, (float(x), float(y), float(w), float(h)), None, None
            else:
                kind, bbox, polys, rle = _segment_shape(seg)
            crowd = a.get("iscrowd", 0)
            if crowd != 0 and crowd != 1:
                raise ValueError("iscrowd")
            score = a.get("score")
            if score is not None and not isfinite(score):
                raise ValueError("score")
            aid = a.get("id")
            if aid is not None:
                add_id(aid)
                n_ids += 1
            area = a.get("area")
            # Kept as declared (COCO evaluation buckets by it); anything odd is recomputed.
            if area is not None and (type(area) not in (int, float) or not 0 <= area < _INF):
                area = None
            raw = a.get("attributes")
            attrs = coco_attributes(raw) if raw else NO_ATTRIBUTES
            if raw and kind is box and raw.get("rotation"):  # CVAT's rotated box
                kind, bbox, polys, rotated = *_turned(bbox, raw["rotation"]), rotated + 1
        except Exception as e:
            _diagnose(path, i, a, image_keys, cat_names)
            raise FormatError(path, f"annotations[{i}]", f"invalid annotation ({e})") from e
        append(
            spec_cls(
                key, cls, kind, bbox, polys, rle, crowd == 1, score, f"{prefix}{i}]",
                None if area is None else float(area), attrs,
            )
        )  # fmt: skip
    if len(ids) != n_ids:
        _raise_duplicate_id(path, anns)
    return out, rotated


def _turned(bbox: tuple[float, float, float, float], degrees: float) -> tuple:
    """(kind, bbox, polygons) of a box turned `degrees` about its centre."""
    polys = [rotated_box(bbox, degrees)]
    return _POLYGON, bbox_of_polygons(polys), polys


def _raise_duplicate_id(path: Path, anns: list) -> None:
    seen: set = set()
    for i, a in enumerate(anns):
        aid = a.get("id")
        if aid is not None:
            if aid in seen:
                raise FormatError(path, f"annotations[{i}].id", f"duplicate id {aid!r}")
            seen.add(aid)


def _diagnose(
    path: Path, i: int, a: Any, image_keys: dict[Any, str], cat_names: dict[int, str]
) -> None:
    """Raise a `FormatError` saying exactly what is wrong with annotation `i`, if found."""
    where = f"annotations[{i}]"
    if not isinstance(a, dict):
        raise FormatError(path, where, "must be an object")
    for k, table, what in (
        ("image_id", image_keys, "image"),
        ("category_id", cat_names, "category"),
    ):
        if k not in a:
            raise FormatError(path, f"{where}.{k}", "missing")
        v = a[k]
        try:
            known = v in table
        except TypeError:
            known = False
        if not known:
            raise FormatError(path, f"{where}.{k}", f"no {what} with id {v!r}")
    seg = a.get("segmentation")
    if not seg or seg == _NO_POLYGON:
        _diagnose_bbox(path, where, a)
    elif isinstance(seg, list):
        _diagnose_polygons(path, where, seg)
    elif isinstance(seg, dict):
        _diagnose_rle(path, f"{where}.segmentation", seg)
    else:
        raise FormatError(
            path, f"{where}.segmentation", "must be a list of polygons or an RLE object"
        )
    _diagnose_fields(path, where, a)


def _diagnose_bbox(path: Path, where: str, a: dict) -> None:
    if "bbox" not in a:
        raise FormatError(path, f"{where}.bbox", "missing (and no segmentation)")
    b = a["bbox"]
    if not isinstance(b, list) or len(b) != 4:
        raise FormatError(path, f"{where}.bbox", f"must be a list of 4 numbers, not {b!r}")
    for j, v in enumerate(b):
        if not is_number(v):
            raise FormatError(path, f"{where}.bbox[{j}]", f"not a finite number: {_short(v)}")


def _short(v: Any) -> str:
    """repr of a value cut to fit one message line (a 400-digit number, a long string)."""
    text = repr(v)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _diagnose_polygons(path: Path, where: str, seg: list) -> None:
    for j, part in enumerate(seg):
        pw = f"{where}.segmentation[{j}]"
        if not isinstance(part, list):
            raise FormatError(path, pw, "a polygon must be a list of numbers")
        if not part:
            raise FormatError(path, pw, "empty polygon")
        if len(part) % 2:
            raise FormatError(path, pw, f"odd number of coordinates ({len(part)}); need x, y pairs")
        for k, v in enumerate(part):
            if not is_number(v):
                raise FormatError(path, f"{pw}[{k}]", f"not a finite number: {_short(v)}")


def _diagnose_rle(path: Path, sw: str, seg: dict) -> None:
    size, counts = seg.get("size"), seg.get("counts")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(type(v) is int and v > 0 for v in size)
    ):
        raise FormatError(path, f"{sw}.size", f"must be [height, width], not {size!r}")
    if isinstance(counts, list):
        if not all(type(v) is int and v >= 0 for v in counts):
            raise FormatError(path, f"{sw}.counts", "must be non-negative integers")
        if sum(counts) != size[0] * size[1]:
            raise FormatError(
                path,
                f"{sw}.counts",
                f"run lengths add up to {sum(counts)}, not height*width = {size[0] * size[1]}",
            )
    elif not isinstance(counts, str):
        raise FormatError(path, f"{sw}.counts", "must be a string or a list of integers")
    try:
        _rle(seg)
    except Exception as e:
        raise FormatError(path, sw, f"not a valid RLE ({e})") from e


def _diagnose_fields(path: Path, where: str, a: dict) -> None:
    crowd = a.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, float | str):
        raise FormatError(path, f"{where}.iscrowd", f"must be 0 or 1, not {crowd!r}")
    score = a.get("score")
    if score is not None and not is_number(score):
        raise FormatError(path, f"{where}.score", f"not a finite number: {score!r}")
    aid = a.get("id")
    if aid is not None and type(aid) not in (int, str):
        raise FormatError(path, f"{where}.id", f"must be an integer or string, not {aid!r}")

"""CVAT's own XML, "CVAT for images 1.1" (one annotations.xml for a task): the reader.

An <image name width height [subset]> holds its shapes: <box xtl ytl xbr ybr
[rotation]>, <polygon points="x,y;x,y;...">, <ellipse cx cy rx ry [rotation]> and
<mask rle left top width height> (run lengths over the mask's box, row by row,
starting with background), each with a label, an `occluded` flag and <attribute
name="...">value</attribute> children. Coordinates are continuous pixels of the image
as displayed with the origin at its top-left corner, Studio's convention. Boxes CVAT
turned become 4-point polygons and ellipses 32-point ones; polylines, points, tags and
skeletons have no Studio shape and are counted as left out. "CVAT for video" (tracks)
is refused with what to export instead.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np

from studio.core.errors import FormatError
from studio.core.formats.common import (
    ImageResolver,
    declared_side,
    first_seen_classes,
    parse_xml,
)
from studio.core.geometry import (
    MAX_MASK_PIXELS,
    bbox_of_polygons,
    place_piece,
    rle_bbox,
    rle_from_mask,
    rotated_box,
)
from studio.core.kinds import ShapeKind, Split
from studio.core.records import NO_ATTRIBUTES, AnnotationSpec, Attributes, DatasetSpec, ImageSpec

_ELLIPSE_POINTS = 32
_SPLITS = {
    "train": Split.TRAIN, "training": Split.TRAIN,
    "val": Split.VAL, "valid": Split.VAL, "validation": Split.VAL,
    "test": Split.TEST, "testing": Split.TEST,
}  # fmt: skip
_NOT_SHAPES = ("polyline", "points", "tag", "skeleton", "cuboid")


def is_cvat_xml(root: ET.Element) -> bool:
    """Whether an XML root is CVAT's (<annotations> with a <version> or <meta>)."""
    return root.tag == "annotations" and (
        root.find("version") is not None or root.find("meta") is not None
    )


def read_cvat(
    path: Path, images_dir: Path | None = None, class_names: list[str] | None = None
) -> DatasetSpec:
    """Read CVAT's annotations.xml (or the folder holding it) into a `DatasetSpec`.

    Classes: `class_names`, then the task's labels in <meta>, then labels found. Image
    keys are the <image> ids; an image's `subset` (Train, Validation, Test) is its split.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.xml"
    if not path.is_file():
        raise FormatError(path, "", "no such file; give CVAT's annotations.xml")
    root = parse_xml(path)
    if not is_cvat_xml(root):
        raise FormatError(path, "root", f"<{root.tag}> is not CVAT's <annotations>")
    if root.find("track") is not None:
        raise FormatError(
            path, "track", 'this is "CVAT for video 1.1"; export the task from CVAT as '
            '"CVAT for images 1.1" (or COCO 1.0) and import that',
        )  # fmt: skip
    spec = DatasetSpec()
    resolver = ImageResolver(images_dir)
    found: dict[str, None] = dict.fromkeys(
        (el.text or "").strip() for el in root.iterfind("meta/*/labels/label/name")
    )
    left_out: Counter[str] = Counter()
    for i, im in enumerate(root.iterfind("image")):
        where = f"image[{i}]"
        key = im.get("id") or str(i)
        name = im.get("name") or ""
        if not name:
            raise FormatError(path, f"{where}.name", "missing; the image is not named")
        img = resolver.resolve(name, path, f"{where} ({name})")
        w, h = (_side(path, where, im, k) for k in ("width", "height"))
        split = _SPLITS.get((im.get("subset") or "").strip().lower())
        spec.images.append(ImageSpec(key, img, w, h, split, f"{path.name}: {where}"))
        for j, el in enumerate(im):
            ann = _shape(path, f"{where}.{el.tag}[{j}]", key, el, (h, w), left_out)
            if ann is not None:
                found[ann.class_name] = None
                spec.annotations.append(ann)
    found.pop("", None)
    spec.classes = first_seen_classes(found, class_names)
    for tag, n in sorted(left_out.items()):
        reason = (
            "CVAT image tags skipped (Studio labels shapes, not whole images)"
            if tag == "tag"
            else f"CVAT {tag} shapes skipped (Studio has no such shape)"
        )
        spec.rejected[reason] = n
    return spec


def _side(path: Path, where: str, im: ET.Element, k: str) -> int | None:
    v = im.get(k)
    if v is None:
        return None
    try:
        n = int(v)
    except ValueError:
        n = 0
    if not declared_side(n):
        raise FormatError(path, f"{where}.{k}", f"not a size in pixels: {v!r}")
    return n


def _num(path: Path, where: str, el: ET.Element, k: str) -> float:
    try:
        v = float(el.get(k, ""))
    except ValueError:
        raise FormatError(path, f"{where}.{k}", f"not a number: {el.get(k)!r}") from None
    if not math.isfinite(v):
        raise FormatError(path, f"{where}.{k}", f"not a finite number: {el.get(k)!r}")
    return v


def _shape(
    path: Path, where: str, key: str, el: ET.Element, size: tuple, left_out: Counter[str]
) -> AnnotationSpec | None:
    """One shape element of an image; None for what Studio has no shape for."""
    if el.tag in _NOT_SHAPES:
        left_out[el.tag] += 1
        return None
    if el.tag not in ("box", "polygon", "ellipse", "mask"):
        return None
    label = (el.get("label") or "").strip()
    if not label:
        raise FormatError(path, f"{where}.label", "missing")
    num = lambda k: _num(path, where, el, k)  # noqa: E731
    turn = num("rotation") if el.get("rotation") else 0.0
    if el.tag == "box":
        x0, y0, x1, y1 = num("xtl"), num("ytl"), num("xbr"), num("ybr")
        bbox = (x0, y0, x1 - x0, y1 - y0)
        ann = AnnotationSpec(key, label, ShapeKind.BOX, bbox)
        if turn:
            ann = _polygon(key, label, rotated_box(bbox, turn))
    elif el.tag == "polygon":
        ann = _polygon(key, label, _points(path, where, el.get("points") or ""))
    elif el.tag == "ellipse":
        ann = _polygon(key, label, _ellipse(num("cx"), num("cy"), num("rx"), num("ry"), turn))
    else:
        ann = _mask(path, where, key, label, el, size)
    ann.where = f"{path.name}: {where}"
    ann.attributes = _attributes(el)
    return ann


def _polygon(key: str, label: str, part: list[float]) -> AnnotationSpec:
    return AnnotationSpec(key, label, ShapeKind.POLYGON, bbox_of_polygons([part]), [part])


def _points(path: Path, where: str, text: str) -> list[float]:
    try:
        flat = [float(v) for pair in text.split(";") for v in pair.split(",")]
    except ValueError:
        raise FormatError(path, f"{where}.points", f"not x,y;x,y;... points: {text:.60}") from None
    if len(flat) < 6 or len(flat) % 2 or not all(map(math.isfinite, flat)):
        raise FormatError(path, f"{where}.points", "a polygon needs at least 3 x,y points")
    return flat


def _ellipse(cx: float, cy: float, rx: float, ry: float, degrees: float) -> list[float]:
    t0 = math.radians(degrees)
    c, s = math.cos(t0), math.sin(t0)
    out: list[float] = []
    for k in range(_ELLIPSE_POINTS):
        t = 2 * math.pi * k / _ELLIPSE_POINTS
        dx, dy = rx * math.cos(t), ry * math.sin(t)
        out += [round(cx + dx * c - dy * s, 3), round(cy + dx * s + dy * c, 3)]
    return out


def _mask(
    path: Path, where: str, key: str, label: str, el: ET.Element, size: tuple
) -> AnnotationSpec:
    """A CVAT mask: run lengths over its box (left, top, width, height), row by row."""
    h, w = size
    left, top = (int(_num(path, where, el, k)) for k in ("left", "top"))
    bw, bh = (int(_num(path, where, el, k)) for k in ("width", "height"))
    try:
        runs = [int(v) for v in (el.get("rle") or "").split(",")]
    except ValueError:
        raise FormatError(path, f"{where}.rle", "not comma-separated run lengths") from None
    if h is None or w is None or bw <= 0 or bh <= 0 or sum(runs) != bw * bh or min(runs) < 0:
        raise FormatError(
            path, f"{where}.rle", "run lengths must cover the mask's width x height, "
            "on an image whose size is given",
        )  # fmt: skip
    if max(w * h, bw * bh) > MAX_MASK_PIXELS:
        raise FormatError(path, f"{where}", f"a {bw} x {bh} mask on a {w} x {h} image is too large")
    values = np.repeat((np.arange(len(runs)) % 2).astype(bool), runs).reshape(bh, bw)
    rle = rle_from_mask(place_piece(values, left, top, w, h))
    return AnnotationSpec(key, label, ShapeKind.MASK, rle_bbox(rle), rle=rle)


def _attributes(el: ET.Element) -> Attributes:
    """occluded (CVAT's own flag), and attributes named truncated or difficult."""
    named = {
        a.get("name", "").lower(): (a.text or "").strip().lower() for a in el.iter("attribute")
    }
    flags = {k: named.get(k) in ("true", "1", "yes") for k in ("truncated", "difficult")}
    occluded = el.get("occluded") == "1" or named.get("occluded") in ("true", "1")
    found = Attributes(occluded=occluded, **flags)
    return NO_ATTRIBUTES if found.is_default() else found

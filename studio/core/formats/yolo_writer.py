"""Ultralytics YOLO dataset writer (see `studio.core.formats.yolo` for the layout and
the reader). Coordinates are written normalised by the displayed image size."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path, PurePath

import numpy as np
import yaml

from studio.core.formats.common import link_or_copy, unique_stems, write_text_atomic
from studio.core.geometry import polygons_from_rle
from studio.core.kinds import ShapeKind, Split
from studio.core.records import SPLITS, AnnotationRecord, ExportSnapshot


def _num(v: float) -> str:
    # 9 significant digits: a normalised coordinate keeps ~2e-5 px at 20,000 px.
    return f"{v:.9g}"


def join_parts(parts: list[list[float]]) -> list[float]:
    """One outline for a multi-part polygon: each further part is spliced into the first
    at the closest pair of points, with a zero-width bridge out and back (as Ultralytics'
    own COCO converter does), since a YOLO line holds one polygon.
    """
    if len(parts) == 1:
        return list(parts[0])
    hub = np.asarray(parts[0], dtype=np.float64).reshape(-1, 2)
    detours: dict[int, list[np.ndarray]] = defaultdict(list)
    for part in parts[1:]:
        pts = np.asarray(part, dtype=np.float64).reshape(-1, 2)
        d = ((hub[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
        hi, pi = np.unravel_index(int(d.argmin()), d.shape)
        detours[int(hi)].append(np.concatenate([np.roll(pts, -int(pi), axis=0), pts[pi : pi + 1]]))
    out: list[np.ndarray] = []
    for i in range(len(hub)):
        out.append(hub[i : i + 1])
        for loop in detours.get(i, ()):
            out += [loop, hub[i : i + 1]]
    return np.concatenate(out).reshape(-1).tolist()


def write_yolo(snapshot: ExportSnapshot, out: Path) -> list[str]:
    """Write an Ultralytics dataset folder: data.yaml, images/<split>/, labels/<split>/.

    Images are hard-linked where possible, else copied; names that clash are prefixed with
    their folder ("sub__a.jpg"). Every image gets a label file, empty for background images.
    If any shape is a polygon or mask, every shape is written as a polygon (boxes as their
    4 corners clockwise from the top-left), since Ultralytics mis-reads files mixing boxes
    and polygons; masks become their outer contours, and multi-part shapes one outline.
    Crowd regions (COCO iscrowd) are left out, as Ultralytics' own COCO converter does:
    a crowd is not an object to detect. Returns warnings about what the format could not
    keep. Each file appears whole or not at all.
    """
    out = Path(out)
    warnings: list[str] = []
    classes = sorted(snapshot.classes, key=lambda c: c.position)
    index = {c.id: i for i, c in enumerate(classes)}
    by_image: dict[int, list[AnnotationRecord]] = defaultdict(list)
    for a in snapshot.annotations:
        by_image[a.image_id].append(a)
    crowds = sum(a.iscrowd for a in snapshot.annotations)
    as_polygons = any(
        a.kind in (ShapeKind.POLYGON, ShapeKind.MASK) and not a.iscrowd
        for a in snapshot.annotations
    )
    stems = unique_stems(snapshot.images, nested=False)
    counts: Counter[str] = Counter()
    written: set[Path] = set()
    split_counts: Counter[str] = Counter()

    for im in snapshot.images:
        split = im.split if im.split in SPLITS else Split.TRAIN.value
        if split != im.split:
            counts["unknown_split"] += 1
        split_counts[split] += 1
        stem = stems[im.id]
        dst = out / "images" / split / (stem + PurePath(im.path).suffix)
        link_or_copy(im.abs_path, dst)
        lines = []
        for a in by_image.get(im.id, ()):
            if a.iscrowd:
                continue
            line = _label_line(a, index[a.class_id], im.width, im.height, as_polygons, counts)
            if line is not None:
                lines.append(line)
        lbl = out / "labels" / split / (stem + ".txt")
        write_text_atomic(lbl, "".join(line + "\n" for line in lines))
        written.update((dst, lbl))

    for sub in ("images/train", "labels/train"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    warnings += _write_data_yaml(out, classes, split_counts)
    warnings += _count_warnings(counts, split_counts)
    warnings += _stale_warning(out, written)
    warnings += _left_out_warnings(snapshot, crowds)
    return warnings


def _left_out_warnings(snapshot: ExportSnapshot, crowds: int) -> list[str]:
    """What YOLO cannot hold: crowd regions and attributes."""
    warnings = []
    if crowds:
        warnings.append(
            f"{crowds} crowd regions (iscrowd) left out: YOLO has no crowd flag, and a "
            "crowd region is not one object"
        )
    with_attrs = sum(not a.attributes.is_default() for a in snapshot.annotations)
    if with_attrs:
        warnings.append(
            f"attributes of {with_attrs} shapes (occluded, truncated, difficult, group id, "
            "notes) not written: YOLO label files have no place for them"
        )
    return warnings


def _write_data_yaml(out: Path, classes: list, split_counts: Counter[str]) -> list[str]:
    """Write data.yaml (absolute root, the splits that have images, the names)."""
    warnings = []
    cfg: dict = {"path": out.absolute().as_posix(), "train": "images/train"}
    if split_counts[Split.VAL]:
        cfg["val"] = "images/val"
    else:
        cfg["val"] = "images/train"
        warnings.append(
            "the val split is empty, so data.yaml points val at images/train "
            "(Ultralytics needs a val set); validation scores will be optimistic"
        )
    if split_counts[Split.TEST]:
        cfg["test"] = "images/test"
    cfg["nc"] = len(classes)
    cfg["names"] = {i: c.name for i, c in enumerate(classes)}
    write_text_atomic(out / "data.yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return warnings


def _count_warnings(counts: Counter[str], split_counts: Counter[str]) -> list[str]:
    """Warnings about what the export changed or left out, from its counts."""
    warnings = []
    if not split_counts[Split.TRAIN]:
        warnings.append("the train split is empty")
    if counts["mask"]:
        warnings.append(
            f"{counts['mask']} masks written as polygons of their outer contours "
            "(YOLO has no masks; holes are lost)"
        )
    if counts["empty_mask"]:
        warnings.append(f"{counts['empty_mask']} empty masks left out")
    if counts["multipart"]:
        warnings.append(
            f"{counts['multipart']} multi-part shapes joined into one outline each "
            "(a YOLO line holds one polygon)"
        )
    if counts["box_as_polygon"]:
        warnings.append(
            f"{counts['box_as_polygon']} boxes written as 4-corner polygons, since the "
            "dataset has polygons and Ultralytics mis-reads label files mixing the two"
        )
    if counts["unknown_split"]:
        warnings.append(f"{counts['unknown_split']} images without a known split put in train")
    return warnings


def _stale_warning(out: Path, written: set[Path]) -> list[str]:
    """A warning if images/ or labels/ hold files this export did not write."""
    stale = sum(
        1
        for sub in ("images", "labels")
        if (out / sub).is_dir()
        for f in (out / sub).rglob("*")
        if f.is_file() and f not in written
    )
    if not stale:
        return []
    return [
        f"{stale} files in {out} were there before this export and were left in place; "
        "Ultralytics will use them too"
    ]


def _label_line(
    a: AnnotationRecord, c: int, w: int, h: int, as_polygons: bool, counts: Counter[str]
) -> str | None:
    if a.kind == ShapeKind.MASK and a.rle is not None:
        parts = polygons_from_rle(a.rle)
        if not parts:
            counts["empty_mask"] += 1
            return None
        counts["mask"] += 1
    elif a.kind == ShapeKind.POLYGON and a.polygons:
        parts = a.polygons
    else:
        x, y, bw, bh = a.bbox
        if not as_polygons:
            vals = ((x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h)
            return " ".join([str(c), *map(_num, vals)])
        counts["box_as_polygon"] += 1
        parts = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
    if len(parts) > 1:
        counts["multipart"] += 1
    pts = join_parts(parts)
    return " ".join(
        [str(c), *(_num(v / w) if i % 2 == 0 else _num(v / h) for i, v in enumerate(pts))]
    )

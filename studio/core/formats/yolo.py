"""Ultralytics YOLO datasets (detection and segmentation): reader and writer.

Label lines hold coordinates normalised by the displayed image size (after EXIF
orientation, as Ultralytics loads images), continuous, origin at the top-left corner:
"c cx cy w h" for a box, "c x1 y1 x2 y2 ..." for a polygon.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path, PurePath

import numpy as np
import yaml

from studio.core.errors import FormatError
from studio.core.formats.common import display_size, link_or_copy, mask_to_polygons, unique_stems
from studio.core.imageinfo import iter_image_files
from studio.core.records import (
    SPLITS,
    AnnotationRecord,
    AnnotationSpec,
    DatasetSpec,
    ExportSnapshot,
    ImageSpec,
)

_YAML_NAMES = ("data.yaml", "data.yml")


# --- reading -------------------------------------------------------------------------------


def label_path(image: Path) -> Path:
    """Ultralytics' label file for an image: the last "images" folder becomes "labels",
    the suffix ".txt"; an image with no "images" folder in its path has its label beside it.
    """
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def read_yolo(
    path: Path, images_dir: Path | None = None, class_names: list[str] | None = None
) -> DatasetSpec:
    """Read an Ultralytics dataset (its folder or its data.yaml) into a `DatasetSpec`.

    With a data.yaml: the names and every split listed (train/val/test; a folder, a .txt
    list of images, or a list of those); ImageSpec.split is the split. Without one: `path`
    is a plain folder of images and .txt labels, and the class names come from
    `class_names` or the folder's classes.txt. Explicit `class_names` take precedence over
    data.yaml's names. `images_dir` is not used: YOLO pairs images and labels by path.

    Image keys are paths relative to the dataset root with "/". An axis-aligned 4-point
    polygon that is exactly a rectangle is read as a box (the writer writes boxes that way
    in datasets with polygons). Images without a label file get no shapes (one warning).
    """
    path = Path(path)
    spec = DatasetSpec()
    yaml_file: Path | None = None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        yaml_file = path
    elif path.is_dir():
        yaml_file = next((path / n for n in _YAML_NAMES if (path / n).is_file()), None)
    else:
        raise FormatError(path, "", "not a dataset folder or a data.yaml file")

    if yaml_file is not None:
        cfg = _load_yaml(yaml_file)
        names = _yaml_names(yaml_file, cfg)
        root = _yaml_root(yaml_file, cfg, spec)
        listed = _yaml_images(yaml_file, cfg, root)
        names_source = yaml_file.name
    else:
        root = path
        if class_names is None:
            names = _classes_txt(path)
            names_source = "classes.txt"
        else:
            names = []
            names_source = "the class names given"
        listed = [(p, None) for p in iter_image_files(path)]
    if class_names is not None:
        if names and list(class_names) != names:
            spec.warnings.append(
                f"{names_source} names differ from the class names given; using the latter"
            )
        names = [str(n) for n in class_names]
        names_source = "the class names given"
    spec.classes = names

    seen: dict[str, str | None] = {}
    dup_splits = 0
    unlabelled = 0
    for img, split in listed:
        key = _key(img, root)
        if key in seen:
            dup_splits += 1
            continue
        seen[key] = split
        lbl = label_path(img)
        lbl_text = _key(lbl, root)
        spec.images.append(ImageSpec(key, Path(img).absolute(), None, None, split, key))
        if not lbl.is_file():
            unlabelled += 1
            continue
        _read_label(lbl, lbl_text, img, key, names, names_source, spec)
    if dup_splits:
        spec.warnings.append(
            f"{dup_splits} images are listed in more than one split; each was kept in the "
            "first split that lists it (train, val, test)"
        )
    if unlabelled:
        spec.warnings.append(
            f"{unlabelled} images have no label file; they were imported without shapes"
        )
    return spec


def _key(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _load_yaml(path: Path) -> dict:
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise FormatError(path, where, f"invalid YAML: {e.problem or e}") from e
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise FormatError(path, "", f"cannot read the YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise FormatError(path, "top level", "expected a mapping with names, train and val")
    return cfg


def _yaml_names(path: Path, cfg: dict) -> list[str]:
    names = cfg.get("names")
    if isinstance(names, list):
        out = [str(n) for n in names]
    elif isinstance(names, dict):
        try:
            idx = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as e:
            raise FormatError(path, "names", "keys must be class indices 0, 1, 2, ...") from e
        if sorted(idx) != list(range(len(idx))):
            raise FormatError(path, "names", "class indices must run 0, 1, 2, ... without gaps")
        out = [idx[i] for i in range(len(idx))]
    else:
        raise FormatError(path, "names", "missing; expected a list or {index: name} mapping")
    nc = cfg.get("nc")
    if nc is not None and nc != len(out):
        raise FormatError(path, "nc", f"nc is {nc} but there are {len(out)} names")
    return out


def _yaml_root(path: Path, cfg: dict, spec: DatasetSpec) -> Path:
    # Ultralytics resolves a relative `path` against its own datasets folder; here the
    # YAML's folder is the only sensible anchor. A dataset moved since it was written has
    # a stale absolute `path`, so fall back to the YAML's folder with a note.
    here = path.parent.absolute()
    p = cfg.get("path")
    if not p:
        return here
    root = Path(str(p))
    if not root.is_absolute():
        root = here / root
    if root.is_dir():
        return root
    spec.warnings.append(f"{path.name}: path {p!r} does not exist; using {here} instead")
    return here


def _yaml_images(path: Path, cfg: dict, root: Path) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for split in SPLITS:
        entry = cfg.get(split)
        if not entry:
            continue
        for e in entry if isinstance(entry, list) else [entry]:
            if not isinstance(e, str):
                raise FormatError(path, split, f"expected a folder or .txt file, not {e!r}")
            p = Path(e)
            p = p if p.is_absolute() else root / p
            if not p.exists() and e.startswith("../"):
                # Roboflow writes "../train/images" for a folder beside data.yaml;
                # Ultralytics retries without the "../", and so do we.
                p = root / e[3:]
            if p.is_dir():
                imgs = list(iter_image_files(p))
            elif p.is_file() and p.suffix.lower() == ".txt":
                imgs = _list_file(p)
            else:
                raise FormatError(path, split, f"{e!r}: no such folder or image list ({p})")
            out += [(f, split) for f in sorted(imgs)]
    return out


def _list_file(p: Path) -> list[Path]:
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        f = Path(line)
        f = f if f.is_absolute() else p.parent / f
        if not f.is_file():
            raise FormatError(p, f"line {n}", f"image {line!r} not found")
        out.append(f)
    return out


def _classes_txt(folder: Path) -> list[str]:
    f = folder / "classes.txt"
    if not f.is_file():
        raise FormatError(
            folder,
            "",
            "no data.yaml and no classes.txt here, so the class names are unknown; "
            "add a data.yaml or classes.txt (one name a line), or give the class names",
        )
    return [s.strip() for s in f.read_text(encoding="utf-8").splitlines() if s.strip()]


def _is_rectangle(v: list[float]) -> bool:
    # Exact comparisons on purpose: the writer prints equal numbers identically, and a
    # polygon that only nearly is a rectangle must stay a polygon.
    x0, y0, x1, y1, x2, y2, x3, y3 = v
    if x0 == x2 or y0 == y2:
        return False
    return (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0) or (
        x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0
    )


def _read_label(
    lbl: Path,
    lbl_text: str,
    img: Path,
    key: str,
    names: list[str],
    names_source: str,
    spec: DatasetSpec,
) -> None:
    try:
        text = lbl.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(lbl, "", f"cannot read the label file: {e}") from e
    size: tuple[int, int] | None = None
    nc = len(names)
    append = spec.annotations.append
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if not toks:
            continue
        where = f"line {n}"
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            bad = next(t for t in toks if not _is_float(t))
            raise FormatError(lbl, where, f"{bad!r} is not a number") from None
        if not all(math.isfinite(v) for v in vals):
            raise FormatError(lbl, where, "NaN or infinite value")
        c = vals[0]
        if not c.is_integer() or not 0 <= c < nc:
            raise FormatError(
                lbl,
                where,
                f"class index {toks[0]} is out of range ({names_source} has {nc} names, "
                f"0..{nc - 1})",
            )
        coords = vals[1:]
        m = len(coords)
        if m != 4 and (m < 6 or m % 2):
            raise FormatError(
                lbl,
                where,
                f"{len(vals)} numbers; expected 5 (class cx cy w h) or a class and at least "
                "3 x y pairs",
            )
        if size is None:
            size = display_size(img)
        w, h = size
        if m == 4:
            cx, cy, bw, bh = coords
            bbox = ((cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h)
            append(AnnotationSpec(key, names[int(c)], "box", bbox, where=f"{lbl_text}: {where}"))
            continue
        if m == 8 and _is_rectangle(coords):
            xs, ys = coords[0::2], coords[1::2]
            x0, y0 = min(xs) * w, min(ys) * h
            bbox = (x0, y0, max(xs) * w - x0, max(ys) * h - y0)
            append(AnnotationSpec(key, names[int(c)], "box", bbox, where=f"{lbl_text}: {where}"))
            continue
        pts = [v * (w if i % 2 == 0 else h) for i, v in enumerate(coords)]
        xs, ys = pts[0::2], pts[1::2]
        bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        append(
            AnnotationSpec(
                key, names[int(c)], "polygon", bbox, polygons=[pts], where=f"{lbl_text}: {where}"
            )
        )


def _is_float(t: str) -> bool:
    try:
        float(t)
    except ValueError:
        return False
    return True


# --- writing -------------------------------------------------------------------------------


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
    Returns warnings about what the format could not keep.
    """
    out = Path(out)
    warnings: list[str] = []
    classes = sorted(snapshot.classes, key=lambda c: c.position)
    index = {c.id: i for i, c in enumerate(classes)}
    by_image: dict[int, list[AnnotationRecord]] = defaultdict(list)
    for a in snapshot.annotations:
        by_image[a.image_id].append(a)
    as_polygons = any(a.kind in ("polygon", "mask") for a in snapshot.annotations)
    stems = unique_stems(snapshot.images, nested=False)
    counts: Counter[str] = Counter()
    written: set[Path] = set()
    split_counts: Counter[str] = Counter()

    for im in snapshot.images:
        split = im.split if im.split in SPLITS else "train"
        if split != im.split:
            counts["unknown_split"] += 1
        split_counts[split] += 1
        stem = stems[im.id]
        dst = out / "images" / split / (stem + PurePath(im.path).suffix)
        link_or_copy(im.abs_path, dst)
        lines = []
        for a in by_image.get(im.id, ()):
            line = _label_line(a, index[a.class_id], im.width, im.height, as_polygons, counts)
            if line is not None:
                lines.append(line)
        lbl = out / "labels" / split / (stem + ".txt")
        lbl.parent.mkdir(parents=True, exist_ok=True)
        lbl.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        written.update((dst, lbl))

    for sub in ("images/train", "labels/train"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    cfg: dict = {"path": out.absolute().as_posix(), "train": "images/train"}
    if split_counts["val"]:
        cfg["val"] = "images/val"
    else:
        cfg["val"] = "images/train"
        warnings.append(
            "the val split is empty, so data.yaml points val at images/train "
            "(Ultralytics needs a val set); validation scores will be optimistic"
        )
    if split_counts["test"]:
        cfg["test"] = "images/test"
    cfg["nc"] = len(classes)
    cfg["names"] = {i: c.name for i, c in enumerate(classes)}
    (out / "data.yaml").write_text(
        yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )

    if not split_counts["train"]:
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
    stale = sum(
        1
        for sub in ("images", "labels")
        if (out / sub).is_dir()
        for f in (out / sub).rglob("*")
        if f.is_file() and f not in written
    )
    if stale:
        warnings.append(
            f"{stale} files in {out} were there before this export and were left in place; "
            "Ultralytics will use them too"
        )
    return warnings


def _label_line(
    a: AnnotationRecord, c: int, w: int, h: int, as_polygons: bool, counts: Counter[str]
) -> str | None:
    if a.kind == "mask" and a.rle is not None:
        parts = mask_to_polygons(a.rle)
        if not parts:
            counts["empty_mask"] += 1
            return None
        counts["mask"] += 1
    elif a.kind == "polygon" and a.polygons:
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

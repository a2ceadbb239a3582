"""Ultralytics YOLO datasets (detection and segmentation): reader and writer.

Label lines hold coordinates normalised by the displayed image size (after EXIF
orientation, as Ultralytics loads images), continuous, origin at the top-left corner:
"c cx cy w h" for a box, "c x1 y1 x2 y2 ..." for a polygon.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from studio.core.errors import FormatError
from studio.core.formats.common import display_size, read_text_file, with_cli_hint

# The writer lives in its own module; imported here so `formats.yolo` offers both.
from studio.core.formats.yolo_writer import join_parts, write_yolo
from studio.core.imageinfo import iter_image_files
from studio.core.kinds import ShapeKind
from studio.core.records import (
    SPLITS,
    AnnotationSpec,
    DatasetSpec,
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
    is a plain folder of images and .txt labels (a label beside its image, or in a
    "labels" folder beside it, as X-AnyLabeling writes), or, with `images_dir`, `path` is
    the folder of labels and `images_dir` that of the images (paired by relative path, or
    by name). Class names come from `class_names` or a classes.txt. Explicit `class_names`
    take precedence over data.yaml's names. Label files that match no image are counted
    as rejected; if no label file matches an image, `FormatError` names some of them.

    Image keys are paths relative to the dataset root with "/". An axis-aligned 4-point
    polygon that is exactly a rectangle is read as a box (the writer writes boxes that way
    in datasets with polygons). Images without a label file get no shapes (one warning).
    """
    path = Path(path)
    spec = DatasetSpec()
    root, names, names_source, listed, pose = _dataset_layout(path, class_names, spec, images_dir)
    spec.classes = names
    has_yaml = path.is_file() or any((path / n).is_file() for n in _YAML_NAMES)
    # Labels in one folder, images in another: only without a data.yaml, which says
    # where everything is itself.
    labels_dir = path if images_dir is not None and not has_yaml else None
    used: set[Path] = set()

    seen: dict[str, str | None] = {}
    dup_splits = 0
    unlabelled = 0
    for img, split in listed:
        key = _key(img, root)
        if key in seen:
            dup_splits += 1
            continue
        seen[key] = split
        lbl = _find_label(img, root, labels_dir)
        spec.images.append(ImageSpec(key, Path(img).absolute(), None, None, split, key))
        if lbl is None:
            unlabelled += 1
            continue
        used.add(lbl.absolute())
        lbl_text = _key(lbl, labels_dir or root)
        _read_label(lbl, lbl_text, img, key, (names, names_source, pose), spec)
    if labels_dir is not None or not listed:
        # An explicit labels folder must pair up; a dataset without images must say why.
        _orphan_labels(labels_dir or (path if path.is_dir() else None), used, spec)
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


def _find_label(img: Path, root: Path, labels_dir: Path | None) -> Path | None:
    """The label file of an image, or None: in `labels_dir` by the image's path relative
    to `root` (then by name alone); else Ultralytics' place (see `label_path`), then a
    "labels" folder beside the image (X-AnyLabeling's layout)."""
    if labels_dir is not None:
        rel = Path(_key(img, root)).with_suffix(".txt")
        cands = [labels_dir / rel, labels_dir / rel.name, labels_dir / "labels" / rel.name]
    else:
        cands = [label_path(img), img.parent / "labels" / (img.stem + ".txt")]
    return next((c for c in cands if c.is_file()), None)


def _orphan_labels(folder: Path | None, used: set[Path], spec: DatasetSpec) -> None:
    """Label files under `folder` that no image matched: rejected, and a `FormatError`
    when not a single label file matched (the images are somewhere else)."""
    if folder is None or not folder.is_dir():
        return
    orphans = sorted(
        f
        for f in folder.rglob("*.txt")
        if f.name != "classes.txt" and f.is_file() and f.absolute() not in used
    )
    if not orphans:
        return
    names = ", ".join(f.name for f in orphans[:3]) + (", ..." if len(orphans) > 3 else "")
    if not used:
        raise with_cli_hint(
            FormatError(
                folder, "", f"no image found for any of its {len(orphans)} label files ({names})"
            ),
            "; pass --images with the folder that holds the images",
        )
    spec.rejected[f"label files without an image skipped ({names})"] = len(orphans)


def _dataset_layout(
    path: Path, class_names: list[str] | None, spec: DatasetSpec, images_dir: Path | None
) -> tuple[Path, list[str], str, list[tuple[Path, str | None]], int]:
    """(root, class names, where the names came from, [(image, split)], keypoint
    numbers a line holds after its box: 0 unless a pose dataset) of a dataset folder
    or data.yaml; warnings go to `spec`."""
    pose = 0
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
        pose = _pose_numbers(yaml_file, cfg, spec)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            spec.warnings.append(
                f"{yaml_file.name}: class name(s) {', '.join(map(repr, twice))} used by more "
                "than one class index; their shapes are merged into one class each"
            )
    else:
        root = Path(images_dir) if images_dir is not None else path
        if class_names is None:
            names = _classes_txt(path, root)
            names_source = "classes.txt"
        else:
            names = []
            names_source = "the class names given"
        listed = [(p, None) for p in iter_image_files(root)]
    if class_names is not None:
        if names and list(class_names) != names:
            spec.warnings.append(
                f"{names_source} names differ from the class names given; using the latter"
            )
        names = [str(n) for n in class_names]
        names_source = "the class names given"
    return root, names, names_source, listed, pose


def _pose_numbers(path: Path, cfg: dict, spec: DatasetSpec) -> int:
    """How many keypoint numbers follow each box of a pose dataset (kpt_shape: [K, D]
    gives K * D); 0 for any other dataset. Studio keeps the boxes and says so."""
    shape = cfg.get("kpt_shape")
    if shape is None:
        return 0
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(v) is int for v in shape)):
        raise FormatError(path, "kpt_shape", f"expected [keypoints, 2 or 3], not {shape!r}")
    spec.warnings.append(
        f"{path.name}: a pose dataset (kpt_shape {shape}): its boxes are imported, "
        "its keypoints left out (Studio labels boxes, polygons and masks)"
    )
    return shape[0] * shape[1]


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
    for n, line in enumerate(read_text_file(p, "image list").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        f = Path(line)
        f = f if f.is_absolute() else p.parent / f
        if not f.is_file():
            raise FormatError(p, f"line {n}", f"image {line!r} not found")
        out.append(f)
    return out


def _classes_txt(folder: Path, images: Path) -> list[str]:
    """Names of the classes.txt in the labels folder, else in the images folder."""
    f = next((d / "classes.txt" for d in (folder, images) if (d / "classes.txt").is_file()), None)
    if f is None:
        raise with_cli_hint(
            FormatError(
                folder,
                "",
                "no data.yaml and no classes.txt here, so the class names are unknown; "
                "add a data.yaml or classes.txt (one name a line)",
            ),
            ", or give the class names (--classes FILE)",
        )
    return [s.strip() for s in read_text_file(f, "classes file").splitlines() if s.strip()]


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
    classes: tuple[list[str], str, int],
    spec: DatasetSpec,
) -> None:
    """The shapes of one label file; `classes`: (names, where they came from, pose
    keypoint numbers per line)."""
    names, names_source, pose = classes
    text = read_text_file(lbl, "label file")
    size: tuple[int, int] | None = None
    nc = len(names)
    append = spec.annotations.append
    for n, line in enumerate(text.splitlines(), 1):
        toks = line.split()
        if not toks:
            continue
        where = f"line {n}"
        if pose and len(toks) != 5 + pose:
            raise FormatError(
                lbl, where, f"{len(toks)} numbers; a pose line has 5 + {pose} (kpt_shape)"
            )
        c, coords = _label_numbers(lbl, where, toks[:5] if pose else toks, nc, names_source)
        if size is None:
            size = display_size(img)
        kind, bbox, polys = _label_shape(coords, *size)
        append(
            AnnotationSpec(key, names[c], kind, bbox, polygons=polys, where=f"{lbl_text}: {where}")
        )


def _label_numbers(
    lbl: Path, where: str, toks: list[str], nc: int, names_source: str
) -> tuple[int, list[float]]:
    """(class index, normalised coordinates) of one label line; `FormatError` if bad."""
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
            f"class index {toks[0]} is out of range ({names_source} has {nc} names, 0..{nc - 1})",
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
    return int(c), coords


def _label_shape(
    coords: list[float], w: int, h: int
) -> tuple[str, tuple[float, float, float, float], list[list[float]] | None]:
    """(kind, bbox, polygons) in pixels of normalised YOLO coordinates on a w x h image."""
    if len(coords) == 4:
        cx, cy, bw, bh = coords
        return ShapeKind.BOX, ((cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h), None
    if len(coords) == 8 and _is_rectangle(coords):
        xs, ys = coords[0::2], coords[1::2]
        x0, y0 = min(xs) * w, min(ys) * h
        return ShapeKind.BOX, (x0, y0, max(xs) * w - x0, max(ys) * h - y0), None
    pts = [v * (w if i % 2 == 0 else h) for i, v in enumerate(coords)]
    xs, ys = pts[0::2], pts[1::2]
    bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    return ShapeKind.POLYGON, bbox, [pts]


def _is_float(t: str) -> bool:
    try:
        float(t)
    except ValueError:
        return False
    return True


__all__ = ["join_parts", "label_path", "read_yolo", "write_yolo"]

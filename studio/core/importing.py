"""Imports and exports: image folders and annotation files, landing whole or not at all.

Every import reads and checks everything first and writes at the end, in ONE
transaction, with bulk statements. A malformed file raises before anything is written;
a process killed midway leaves the database as it was (SQLite rolls the open
transaction back). Problems that do not stop an import (a corrupt image in a folder, a
box partly outside its image) are collected in the `ImportReport`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from studio.core import schema as S
from studio.core.errors import FormatError, ImageFileError, StudioError
from studio.core.geometry import bbox_of_polygons, clip_bbox, inside, polygon_area
from studio.core.imageinfo import (
    IMAGE_EXTENSIONS,
    ImageFileInfo,
    iter_image_files,
    orient_points,
    read_image_info,
)
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import SPLITS, AnnotationSpec, DatasetSpec

FORMATS = ("images", "coco", "yolo", "voc", "labelme")
EXPORT_FORMATS = ("coco", "yolo", "voc", "labelme")
# Reports list at most this many examples per kind of problem; the counts are exact.
MAX_EXAMPLES = 20
# SQLite page cache for bulk imports, and SQLite's default, in KiB.
BULK_CACHE_KIB = 262_144
DEFAULT_CACHE_KIB = 2_000


@dataclass
class ImportReport:
    added_images: int = 0
    added_annotations: int = 0
    added_classes: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)  # ids of the images touched

    # Annotation problems, counted by kind, with a few examples each.
    _problems: Counter = field(default_factory=Counter)

    def problem(self, kind: str, example: str) -> None:
        self._problems[kind] += 1
        if self._problems[kind] <= MAX_EXAMPLES:
            self.warnings.append(f"{kind}: {example}")

    @property
    def problem_counts(self) -> dict[str, int]:
        return dict(self._problems)

    def summary(self) -> str:
        parts = [f"{self.added_images} images"]
        if self.added_annotations:
            parts.append(f"{self.added_annotations} shapes")
        if self.added_classes:
            parts.append(f"{len(self.added_classes)} new classes")
        text = "imported " + ", ".join(parts)
        if self.skipped:
            text += f"; skipped {len(self.skipped)} files"
        for kind, n in self._problems.items():
            text += f"; {n} {kind}"
        return text


def default_split(checksum: str, val: float, test: float) -> str:
    """A stable split for a new image, from its checksum: re-importing the same file
    anywhere gives the same split, with no random state to keep."""
    u = int(checksum[:8], 16) / 0x1_0000_0000
    return "test" if u < test else "val" if u < test + val else "train"


def split_fractions(project: Project) -> tuple[float, float]:
    fr = project.get_setting("split_fractions", {"val": 0.2, "test": 0.0})
    return float(fr.get("val", 0.2)), float(fr.get("test", 0.0))


# --- images ----------------------------------------------------------------------------------


# Image files we cannot import; listed as skipped (other files in a folder, such as
# annotation files, are not images and are passed over silently).
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset(
    {".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".svg", ".ico", ".psd", ".dng",
     ".cr2", ".nef", ".arw", ".pgm", ".ppm", ".pbm", ".exr", ".hdr", ".jxl"}
)  # fmt: skip


def collect_image_files(paths: Iterable[Path], report: ImportReport) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(iter_image_files(p))
            for other in sorted(p.rglob("*")):
                if other.suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS and other.is_file():
                    report.skipped.append((str(other), "unsupported extension"))
        elif p.is_file():
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(p)
            else:
                report.skipped.append((str(p), "unsupported extension"))
        else:
            raise StudioError(f"{p}: no such file or folder")
    return files


def _image_row(project: Project, stored: str, info: ImageFileInfo, split: str) -> dict:
    now = S.utcnow()
    return {
        "path": stored, "width": info.width, "height": info.height,
        "orientation": info.orientation, "checksum": info.checksum,
        "file_size": info.file_size, "status": "new", "split": split,
        "created_at": now, "updated_at": now,
    }  # fmt: skip


def import_images(
    project: Project, paths: Sequence[Path | str], progress: Progress | None = None
) -> ImportReport:
    """Add image files and folders (recursively). Sizes come from the headers; files
    already in the project or with the checksum of one that is are skipped, and so are
    corrupt, truncated, empty and unsupported files, each listed with its reason."""
    progress = progress or Progress()
    report = ImportReport()
    files = collect_image_files(map(Path, paths), report)
    known_paths, known_sums = project.known_paths_and_checksums()
    id_to_path = {i: p for p, i in known_paths.items()}
    by_sum = {s: id_to_path[i] for s, i in known_sums.items()}
    val, test = split_fractions(project)
    rows: list[dict] = []
    progress.start(len(files), "reading image headers")
    for f in files:
        progress.step()
        stored = project.stored_path(f)
        if stored in known_paths:
            report.skipped.append((str(f), "already in the project"))
            continue
        try:
            info = read_image_info(f)
        except ImageFileError as e:
            report.skipped.append((str(f), e.reason))
            continue
        if info.checksum in by_sum:
            report.skipped.append((str(f), f"duplicate of {by_sum[info.checksum]}"))
            continue
        by_sum[info.checksum] = stored
        known_paths[stored] = -1
        rows.append(_image_row(project, stored, info, default_split(info.checksum, val, test)))
    progress.check()
    if rows:
        with project.engine.begin() as conn:
            _bulk_insert(conn, S.Image.__table__, rows)
        new_ids, _ = project.known_paths_and_checksums()
        report.image_ids = [new_ids[r["path"]] for r in rows]
    report.added_images = len(rows)
    if rows:
        project.events.images_changed.emit(None)
    return report


def _bulk_insert(conn, table, rows: list[dict]) -> None:
    """executemany through the DB-API cursor: SQLAlchemy's per-row work is the
    bottleneck for a million rows, SQLite itself is not."""
    if not rows:
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    conn.exec_driver_sql(sql, [tuple(r[c] for c in cols) for r in rows])


# --- annotations -----------------------------------------------------------------------------


def read_class_names(classes_file: Path | None) -> list[str] | None:
    if classes_file is None:
        return None
    try:
        lines = Path(classes_file).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise StudioError(f"{classes_file}: cannot read the classes file: {e.strerror or e}") from e
    names = [ln.strip() for ln in lines if ln.strip()]
    if not names:
        raise StudioError(f"{classes_file}: the classes file is empty")
    return names


def import_annotations(
    project: Project,
    fmt: str,
    path: Path | str,
    images_dir: Path | str | None = None,
    classes_file: Path | str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an annotation file or folder in one of `FORMATS` (or a folder of images
    for "images"). Lands whole or not at all."""
    if fmt == "images":
        return import_images(project, [Path(path)], progress)
    from studio.core.formats import READERS

    if fmt not in READERS:
        raise StudioError(f"unknown format {fmt!r}; use one of images, {', '.join(READERS)}")
    path = Path(path)
    if not path.exists():
        raise StudioError(f"{path}: no such file or folder")
    names = read_class_names(Path(classes_file) if classes_file else None)
    spec = READERS[fmt](path, Path(images_dir) if images_dir else None, names)
    return import_dataset(project, spec, progress=progress)


def import_dataset(
    project: Project,
    spec: DatasetSpec,
    progress: Progress | None = None,
    source: str = "imported",
    status: str | None = None,
) -> ImportReport:
    """Apply what a reader produced: add missing images, map coordinates to displayed
    pixels, clip and check shapes, then write classes, images and shapes in one
    transaction."""
    progress = progress or Progress()
    report = ImportReport(warnings=list(spec.warnings))
    progress.start(len(spec.images) + len(spec.annotations), "checking images")

    # 1. Images: existing ones by path, then by checksum; new ones read from headers.
    known_paths, known_sums = project.known_paths_and_checksums()
    existing = {im.id: im for im in project.images()} if known_paths else {}
    val, test = split_fractions(project)
    key_to_ref: dict[str, object] = {}  # image key -> existing id, or index into new_rows
    dims: dict[str, tuple[int, int]] = {}
    new_rows: list[dict] = []
    new_by_sum: dict[str, int] = {}
    transforms: dict[str, tuple[int, int, int]] = {}  # key -> (orientation, raw_w, raw_h)
    for im in spec.images:
        progress.step()
        stored = project.stored_path(im.path)
        info: ImageFileInfo | None = None
        if stored in known_paths:
            rec = existing[known_paths[stored]]
            key_to_ref[im.key] = rec.id
            dims[im.key] = (rec.width, rec.height)
            orientation, w, h = rec.orientation, rec.width, rec.height
            raw_w, raw_h = (h, w) if orientation >= 5 else (w, h)
        else:
            try:
                info = read_image_info(im.path)
            except ImageFileError as e:
                raise FormatError(e.path, im.where, f"cannot use this image: {e.reason}") from e
            if info.checksum in known_sums:
                rec = existing[known_sums[info.checksum]]
                key_to_ref[im.key] = rec.id
            elif info.checksum in new_by_sum:
                key_to_ref[im.key] = ("new", new_by_sum[info.checksum])
            else:
                split = im.split if im.split in SPLITS else default_split(info.checksum, val, test)
                row = _image_row(project, stored, info, split)
                if status:
                    row["status"] = status
                new_by_sum[info.checksum] = len(new_rows)
                key_to_ref[im.key] = ("new", len(new_rows))
                new_rows.append(row)
            dims[im.key] = (info.width, info.height)
            orientation, raw_w, raw_h = info.orientation, info.raw_width, info.raw_height
        w, h = dims[im.key]
        if im.width is not None and im.height is not None and (im.width, im.height) != (w, h):
            if orientation >= 5 and (im.width, im.height) == (raw_w, raw_h):
                # The file's coordinates refer to the stored pixels of an EXIF-rotated
                # photo (as tools that ignore EXIF write them): rotate them at the edge.
                transforms[im.key] = (orientation, raw_w, raw_h)
            else:
                report.warnings.append(
                    f"{im.where or im.path}: declared size {im.width}x{im.height} differs from "
                    f"the image's {w}x{h}; coordinates kept as they are"
                )
        elif spec.raw_orientation and orientation != 1:
            transforms[im.key] = (orientation, raw_w, raw_h)

    # 2. One transaction: classes and images, then each shape checked (mapped to displayed
    # pixels, clipped, degenerate ones rejected and reported) and written in one pass.
    progress.check()
    progress.text = "checking shapes"
    anns = spec.annotations
    used_classes = dict.fromkeys([*spec.classes, *{a.class_name: None for a in anns}])
    before = {c.name for c in project.classes()}
    now = S.utcnow()
    with project.engine.begin() as conn:
        # A big page cache keeps the index B-trees in memory during a million-row insert;
        # the connection goes back to the pool afterwards, so restore the default.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            missing = [n for n in used_classes if n not in before]
            if missing:
                project._insert_classes(conn, missing)
            class_ids = dict(conn.exec_driver_sql("SELECT name, id FROM label_classes").all())
            first_new_id = None
            if new_rows:
                _bulk_insert(conn, S.Image.__table__, new_rows)
                first_new_id = conn.execute(
                    select(S.Image.id).where(S.Image.path == new_rows[0]["path"])
                ).scalar_one()
            # New image ids are consecutive from the first (one writer, one transaction,
            # AUTOINCREMENT key): avoids a round trip per image.
            key_to_id = {
                k: (first_new_id + ref[1] if isinstance(ref, tuple) else ref)
                for k, ref in key_to_ref.items()
            }
            payload = []
            append = payload.append
            for i, a in enumerate(anns):
                if i % 4096 == 0:
                    progress.step(min(4096, len(anns) - i))
                key = a.image_key
                if key not in dims:
                    raise FormatError(
                        "", a.where, f"refers to image {key!r}, which is not in the file"
                    )
                w, h = dims[key]
                checked = _check_shape(a, w, h, transforms.get(key), report)
                if checked is None:
                    continue
                bb, polys, rle = checked
                append((
                    key_to_id[key], class_ids[a.class_name], a.kind, bb[0], bb[1], bb[2], bb[3],
                    polygons_json(polys) if polys is not None else None,
                    json.dumps(rle) if rle is not None else None,
                    1 if a.iscrowd else 0, source, a.score, now, now,
                ))  # fmt: skip
            progress.check()
            if payload:
                conn.exec_driver_sql(
                    "INSERT INTO annotations (image_id, class_id, kind, x, y, w, h, polygons, "
                    "rle, iscrowd, source, score, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    payload,
                )
            progress.check()
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
    report.added_images = len(new_rows)
    report.added_annotations = len(payload)
    report.added_classes = missing
    report.image_ids = sorted(set(key_to_id.values()))
    if missing:
        project.events.classes_changed.emit()
    project.events.images_changed.emit(None)
    project.events.annotations_changed.emit(None)
    return report


def polygons_json(polygons: list[list[float]]) -> str:
    """JSON text of float polygon parts; 5x faster than json.dumps for a million shapes
    (repr of a finite float is valid JSON)."""
    return "[" + ",".join("[" + ",".join(map(repr, part)) + "]" for part in polygons) + "]"


def _check_shape(
    a: AnnotationSpec,
    w: int,
    h: int,
    transform: tuple[int, int, int] | None,
    report: ImportReport,
) -> tuple[tuple[float, float, float, float], list | None, dict | None] | None:
    where = a.where or a.image_key
    bbox, polys, rle = a.bbox, a.polygons, a.rle
    if transform is not None:
        orientation, raw_w, raw_h = transform
        if polys is not None:
            polys = [
                orient_points(np.asarray(p, float).reshape(-1, 2), orientation, raw_w, raw_h)
                .ravel()
                .tolist()
                for p in polys
            ]
        corners = np.array([[bbox[0], bbox[1]], [bbox[0] + bbox[2], bbox[1] + bbox[3]]], float)
        c = orient_points(corners, orientation, raw_w, raw_h)
        x0, y0 = c.min(0)
        x1, y1 = c.max(0)
        bbox = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        if rle is not None:
            report.problem("masks not rotated for EXIF orientation", where)
    if a.kind == "mask":
        if rle is None or list(rle.get("size", [])) != [h, w]:
            report.problem("masks rejected (size differs from the image)", where)
            return None
        if bbox[2] <= 0 or bbox[3] <= 0:
            report.problem("empty masks rejected", where)
            return None
        return tuple(map(float, bbox)), None, rle
    if a.kind == "polygon":
        if polys is None:
            report.problem("polygons rejected (no points)", where)
            return None
        out = []
        clipped = False
        for part in polys:
            part = list(map(float, part))
            xs, ys = part[0::2], part[1::2]
            if min(xs) < 0 or min(ys) < 0 or max(xs) > w or max(ys) > h:
                clipped = True
                part[0::2] = [min(max(v, 0.0), w) for v in xs]
                part[1::2] = [min(max(v, 0.0), h) for v in ys]
            if len(part) >= 6 and polygon_area(part) > 0:
                out.append(part)
        if not out:
            report.problem("degenerate polygons rejected (fewer than 3 points or zero area)", where)
            return None
        if clipped:
            report.problem("polygons clipped to the image", where)
        return bbox_of_polygons(out), out, None
    # box
    if not (bbox[2] > 0 and bbox[3] > 0):
        report.problem("zero-area boxes rejected", where)
        return None
    if not inside(bbox, w, h):
        clipped = clip_bbox(bbox, w, h)
        if not (clipped[2] > 0 and clipped[3] > 0):
            report.problem("boxes outside the image rejected", where)
            return None
        report.problem("boxes clipped to the image", where)
        bbox = clipped
    return (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])), None, None


# --- export ----------------------------------------------------------------------------------


def export_annotations(
    project: Project, fmt: str, out: Path | str, split: str | None = None
) -> list[str]:
    """Write the project's annotations (one split, or all) in `fmt`; returns warnings."""
    from studio.core.formats import WRITERS

    if fmt not in WRITERS:
        raise StudioError(f"unknown export format {fmt!r}; use one of {', '.join(WRITERS)}")
    if split is not None and split not in SPLITS:
        raise StudioError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    snap = project.snapshot(split)
    return WRITERS[fmt](snap, Path(out))


def detect_format(path: Path | str) -> str | None:
    """Guess what a dropped file or folder is: "images", "coco", "yolo", "voc",
    "labelme", or None."""
    p = Path(path)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            return "images"
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".xml":
            return "voc"
        if suffix == ".json":
            head = p.read_text(encoding="utf-8", errors="replace")[:100_000]
            if '"shapes"' in head:
                return "labelme"
            if '"annotations"' in head or '"images"' in head:
                return "coco"
        return None
    if not p.is_dir():
        return None
    if (p / "data.yaml").is_file() or (p / "dataset.yaml").is_file():
        return "yolo"
    jsons = sorted(p.glob("*.json"))[:20] or sorted(p.rglob("*.json"))[:20]
    for j in jsons:
        fmt = detect_format(j)
        if fmt:
            return fmt
    if any(p.rglob("*.xml")):
        return "voc"
    if next(iter_image_files(p), None) is not None:
        return "images"
    return None

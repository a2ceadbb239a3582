"""Imports: image folders and annotation files, landing whole or not at all.

Every import reads and checks everything first and writes at the end, in ONE
transaction, with bulk statements. A malformed file raises before anything is written;
a process killed midway leaves the database as it was (SQLite rolls the open
transaction back). Problems that do not stop an import (a corrupt image in a folder, a
box partly outside its image) are collected in the `ImportReport`.
Exports live in `studio.core.exporting` (re-exported here for older callers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core import schema as S
from studio.core.errors import FormatError, ImageFileError, StudioError
from studio.core.exporting import EXPORT_FORMATS, export_annotations
from studio.core.imageinfo import (
    IMAGE_EXTENSIONS,
    ImageFileInfo,
    iter_image_files,
    read_image_info,
)
from studio.core.import_checks import Orientation, check_shape
from studio.core.import_report import MAX_EXAMPLES, ImportReport
from studio.core.kinds import ImageStatus, Source, Split
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import SPLITS, DatasetSpec, ImageSpec

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "MAX_EXAMPLES",
    "ImportReport",
    "default_split",
    "detect_format",
    "export_annotations",
    "import_annotations",
    "import_dataset",
    "import_images",
    "polygons_json",
    "split_fractions",
]

FORMATS = ("images", "coco", "yolo", "voc", "labelme")
# SQLite page cache for bulk imports, and SQLite's default, in KiB.
BULK_CACHE_KIB = 262_144
DEFAULT_CACHE_KIB = 2_000


def default_split(checksum: str, val: float, test: float) -> str:
    """A stable split for a new image, from its checksum: re-importing the same file
    anywhere gives the same split, with no random state to keep."""
    u = int(checksum[:8], 16) / 0x1_0000_0000
    return Split.TEST if u < test else Split.VAL if u < test + val else Split.TRAIN


def split_fractions(project: Project) -> tuple[float, float]:
    """(val, test) fractions new images are split by (the project's setting)."""
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
    """Image files of the given files and folders (recursively); unsupported image
    files go to `report.skipped`."""
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


def _image_row(stored: str, info: ImageFileInfo, split: str, status: str | None = None) -> dict:
    now = S.utcnow()
    return {
        "path": stored, "width": info.width, "height": info.height,
        "orientation": info.orientation, "checksum": info.checksum,
        "file_size": info.file_size, "status": str(status or ImageStatus.NEW),
        "split": str(split), "created_at": now, "updated_at": now,
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
        rows.append(_image_row(stored, info, default_split(info.checksum, val, test)))
    progress.check()
    if rows:
        with project.engine.begin() as conn:
            project.store.images.insert_many(conn, rows)
        new_ids, _ = project.known_paths_and_checksums()
        report.image_ids = [new_ids[r["path"]] for r in rows]
        project.events.images_changed.emit(None)
    report.added_images = len(rows)
    return report


# --- annotations -----------------------------------------------------------------------------


def read_class_names(classes_file: Path | None) -> list[str] | None:
    """Class names of a text file, one a line (None for no file)."""
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


@dataclass
class _ImageMatch:
    """How each image key of a `DatasetSpec` maps to the project."""

    # key -> existing image id, or ("new", index into new_rows)
    refs: dict[str, int | tuple[str, int]] = field(default_factory=dict)
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> displayed w, h
    new_rows: list[dict] = field(default_factory=list)
    new_by_sum: dict[str, int] = field(default_factory=dict)
    # key -> orientation of images whose file coordinates are in stored pixels
    transforms: dict[str, Orientation] = field(default_factory=dict)

    def ids(self, first_new_id: int | None) -> dict[str, int]:
        # New image ids are consecutive from the first (one writer, one transaction,
        # AUTOINCREMENT key): avoids a round trip per image.
        return {
            k: (first_new_id + ref[1] if isinstance(ref, tuple) else ref)
            for k, ref in self.refs.items()
        }


def import_dataset(
    project: Project,
    spec: DatasetSpec,
    progress: Progress | None = None,
    source: str = Source.IMPORTED,
    status: str | None = None,
) -> ImportReport:
    """Apply what a reader produced: add missing images, map coordinates to displayed
    pixels, clip and check shapes, then write classes, images and shapes in one
    transaction."""
    progress = progress or Progress()
    report = ImportReport(warnings=list(spec.warnings))
    progress.start(len(spec.images) + len(spec.annotations), "checking images")
    match = _match_images(project, spec, progress, report, status)
    progress.check()
    progress.text = "checking shapes"
    _write_dataset(project, spec, match, progress, report, str(source))
    if report.added_classes:
        project.events.classes_changed.emit()
    project.events.images_changed.emit(None)
    project.events.annotations_changed.emit(None)
    return report


def _match_images(
    project: Project,
    spec: DatasetSpec,
    progress: Progress,
    report: ImportReport,
    status: str | None,
) -> _ImageMatch:
    """Existing images by path, then by checksum; new ones read from their headers."""
    known_paths, known_sums = project.known_paths_and_checksums()
    existing = {im.id: im for im in project.images()} if known_paths else {}
    val, test = split_fractions(project)
    m = _ImageMatch()
    for im in spec.images:
        progress.step()
        stored = project.stored_path(im.path)
        if stored in known_paths:
            rec = existing[known_paths[stored]]
            m.refs[im.key] = rec.id
            m.dims[im.key] = (rec.width, rec.height)
            orientation, w, h = rec.orientation, rec.width, rec.height
            raw_w, raw_h = (h, w) if orientation >= 5 else (w, h)
        else:
            try:
                info = read_image_info(im.path)
            except ImageFileError as e:
                raise FormatError(e.path, im.where, f"cannot use this image: {e.reason}") from e
            if info.checksum in known_sums:
                m.refs[im.key] = existing[known_sums[info.checksum]].id
            elif info.checksum in m.new_by_sum:
                m.refs[im.key] = ("new", m.new_by_sum[info.checksum])
            else:
                split = im.split if im.split in SPLITS else default_split(info.checksum, val, test)
                m.new_by_sum[info.checksum] = len(m.new_rows)
                m.refs[im.key] = ("new", len(m.new_rows))
                m.new_rows.append(_image_row(stored, info, split, status))
            m.dims[im.key] = (info.width, info.height)
            orientation, raw_w, raw_h = info.orientation, info.raw_width, info.raw_height
        _note_orientation(m, im, (orientation, raw_w, raw_h), spec.raw_orientation, report)
    return m


def _note_orientation(
    m: _ImageMatch, im: ImageSpec, o: Orientation, raw_declared: bool, report: ImportReport
) -> None:
    """Decide whether the file's coordinates for `im` refer to stored pixels."""
    orientation, raw_w, raw_h = o
    w, h = m.dims[im.key]
    if im.width is not None and im.height is not None and (im.width, im.height) != (w, h):
        if orientation >= 5 and (im.width, im.height) == (raw_w, raw_h):
            # The file's coordinates refer to the stored pixels of an EXIF-rotated
            # photo (as tools that ignore EXIF write them): rotate them at the edge.
            m.transforms[im.key] = o
        else:
            report.warnings.append(
                f"{im.where or im.path}: declared size {im.width}x{im.height} differs from "
                f"the image's {w}x{h}; coordinates kept as they are"
            )
    elif raw_declared and orientation != 1:
        m.transforms[im.key] = o


def _write_dataset(
    project: Project,
    spec: DatasetSpec,
    m: _ImageMatch,
    progress: Progress,
    report: ImportReport,
    source: str,
) -> None:
    """One transaction: classes and images, then each shape checked (mapped to displayed
    pixels, clipped, degenerate ones rejected and reported) and written in one pass."""
    store = project.store
    anns = spec.annotations
    used_classes = dict.fromkeys([*spec.classes, *{a.class_name: None for a in anns}])
    before = {c.name for c in project.classes()}
    missing = [n for n in used_classes if n not in before]
    with project.engine.begin() as conn:
        # A big page cache keeps the index B-trees in memory during a million-row insert;
        # the connection goes back to the pool afterwards, so restore the default.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            if missing:
                store.classes.insert_names(conn, missing)
            class_ids = store.classes.ids_by_name(conn)
            key_to_id = m.ids(store.images.insert_many(conn, m.new_rows))
            values = _shape_values(anns, m, key_to_id, class_ids, progress, report, source)
            progress.check()
            store.annotations.insert_values(conn, values)
            progress.check()
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
    report.added_images = len(m.new_rows)
    report.added_annotations = len(values)
    report.added_classes = missing
    report.image_ids = sorted(set(key_to_id.values()))


def _shape_values(
    anns: list,
    m: _ImageMatch,
    key_to_id: dict[str, int],
    class_ids: dict[str, int],
    progress: Progress,
    report: ImportReport,
    source: str,
) -> list[tuple]:
    """Checked shapes as tuples in `AnnotationRepo.INSERT_COLUMNS` order."""
    now = S.utcnow()
    dims, transforms, problem = m.dims, m.transforms, report.problem
    values: list[tuple] = []
    append = values.append
    for i, a in enumerate(anns):
        if i % 4096 == 0:
            progress.step(min(4096, len(anns) - i))
        key = a.image_key
        if key not in dims:
            raise FormatError("", a.where, f"refers to image {key!r}, which is not in the file")
        w, h = dims[key]
        checked = check_shape(a, w, h, transforms.get(key), problem)
        if checked is None:
            continue
        bb, polys, rle = checked
        append((
            key_to_id[key], class_ids[a.class_name], a.kind, bb[0], bb[1], bb[2], bb[3],
            polygons_json(polys) if polys is not None else None,
            json.dumps(rle) if rle is not None else None,
            1 if a.iscrowd else 0, source, a.score, now, now,
        ))  # fmt: skip
    return values


def polygons_json(polygons: list[list[float]]) -> str:
    """JSON text of float polygon parts; 5x faster than json.dumps for a million shapes
    (repr of a finite float is valid JSON)."""
    return "[" + ",".join("[" + ",".join(map(repr, part)) + "]" for part in polygons) + "]"


def detect_format(path: Path | str) -> str | None:
    """Guess what a dropped file or folder is: "images", "coco", "yolo", "voc",
    "labelme", or None."""
    p = Path(path)
    if p.is_file():
        return _detect_file_format(p)
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


def _detect_file_format(p: Path) -> str | None:
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

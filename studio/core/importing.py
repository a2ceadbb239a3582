"""Imports: image folders and annotation files, landing whole or not at all.

Every import reads and checks everything first (image headers, every shape, what is
already in the project) and then writes in ONE short transaction with bulk statements,
so other processes (a training run recording metrics, another command) wait for the
write lock as little as possible. A malformed file raises before anything is written; a
process killed midway leaves the database as it was (SQLite rolls the open transaction
back). Images are matched by stored path only: each file is its own image, byte-identical
twins are reported, never merged (see `import_match`). Problems that do not stop an
import (a corrupt image in a folder, a box partly outside its image) are collected in
the `ImportReport`. Exports live in `studio.core.exporting` (re-exported here for older
callers).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from studio.core import schema as S
from studio.core.errors import ImageFileError, StudioError
from studio.core.exporting import EXPORT_FORMATS, export_annotations
from studio.core.formats.common import RESOLVING, Resolving, read_text_file, with_cli_hint
from studio.core.imageinfo import IMAGE_EXTENSIONS, iter_image_files, read_image_info
from studio.core.import_match import (
    ImageMatch,
    Twins,
    default_split,
    image_row,
    match_images,
    split_fractions,
    utf8_name,
)
from studio.core.import_report import MAX_EXAMPLES, ImportReport
from studio.core.import_shapes import (
    Shape,
    checked_shapes,
    existing_signatures,
    insert_tuples,
    polygons_json,
)
from studio.core.kinds import Source
from studio.core.progress import Progress
from studio.core.project import DB_NAME, Project
from studio.core.records import DatasetSpec

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
    "read_annotations",
    "split_fractions",
]

FORMATS = ("images", "coco", "yolo", "voc", "labelme", "cvat")
# SQLite page cache for bulk imports, and SQLite's default, in KiB.
BULK_CACHE_KIB = 262_144
DEFAULT_CACHE_KIB = 2_000


# --- images ----------------------------------------------------------------------------------


# Image files we cannot import; listed as skipped (other files in a folder, such as
# annotation files, are not images and are passed over silently).
UNSUPPORTED_IMAGE_EXTENSIONS = frozenset(
    {".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".svg", ".ico", ".psd", ".dng",
     ".cr2", ".nef", ".arw", ".pgm", ".ppm", ".pbm", ".exr", ".hdr", ".jxl"}
)  # fmt: skip


def collect_image_files(paths: Iterable[Path], report: ImportReport) -> list[Path]:
    """Image files of the given files and folders (recursively); unsupported image
    files and names the database cannot store go to `report.skipped`."""
    files: list[Path] = []
    for p in map(Path, paths):
        if os.path.isdir(p) and (p / DB_NAME).is_file():
            raise StudioError(
                f"{p}: is a Studio project, not a folder of images; open it as a project "
                "(its images would come with its thumbnails)"
            )
        if os.path.isdir(p):
            files.extend(iter_image_files(p))
            for other in sorted(p.rglob("*")):
                if other.suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS and other.is_file():
                    report.skipped.append((str(other), "unsupported extension"))
        elif os.path.isfile(p):
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(p)
            else:
                report.skipped.append((str(p), "unsupported extension"))
        else:
            raise StudioError(f"{p}: {source_problem(p)}")
    kept = [f for f in files if utf8_name(f)]
    for f in files:
        if not utf8_name(f):
            # Shown with its odd bytes escaped: the name itself cannot be printed or stored.
            shown = os.fsencode(f).decode("utf-8", "backslashreplace")
            report.skipped.append((shown, "file name is not valid UTF-8"))
    return kept


def source_problem(p: Path) -> str:
    """Why `p` cannot be read as a source, in a few words ("no such file or folder")."""
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return "no such file or folder"
        return e.strerror or str(e)
    except ValueError as e:  # a NUL byte in the name
        return str(e)
    return "not a regular file or folder"


def import_images(
    project: Project, paths: Sequence[Path | str], progress: Progress | None = None
) -> ImportReport:
    """Add image files and folders (recursively). Sizes come from the headers; files
    already in the project (same stored path) are counted as present, corrupt,
    truncated, empty and unsupported files skipped with their reason. A file with the
    bytes of another is imported as its own image and reported as a duplicate pair."""
    progress = progress or Progress()
    report = ImportReport()
    files = collect_image_files(map(Path, paths), report)
    report.source_entries = len(files) + len(report.skipped)
    known_paths, _ = project.known_paths_and_checksums()
    twins = Twins(project, report)
    val, test = split_fractions(project)
    rows: list[dict] = []
    progress.start(len(files), "reading image headers")
    for f in files:
        progress.step()
        stored = project.stored_path(f)
        if stored in known_paths:
            report.present_images += 1
            continue
        try:
            info = read_image_info(f)
        except ImageFileError as e:
            report.skipped.append((str(f), e.reason))
            continue
        split = default_split(info.checksum, val, test)
        twins.note(stored, info.checksum, split)
        known_paths[stored] = -1
        rows.append(image_row(stored, info, split))
    twins.finish()
    progress.check()
    if rows:
        with write_transaction(project) as conn:
            first = project.store.images.insert_many(conn, rows)
        report.image_ids = list(range(first, first + len(rows)))
        project.events.images_changed.emit(None)
    report.added_images = len(rows)
    return report


# --- annotations -----------------------------------------------------------------------------


def read_class_names(classes_file: Path | None) -> list[str] | None:
    """Class names of a text file, one a line (None for no file)."""
    if classes_file is None:
        return None
    lines = read_text_file(Path(classes_file), "classes file").splitlines()
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
    skip_missing: bool = False,
) -> ImportReport:
    """Import an annotation file or folder in one of `FORMATS` (or a folder of images
    for "images"). Lands whole or not at all. An image the file names that is not found
    where it says is looked up among the project's images by file name (used when one
    image has that name); still missing, it fails the import (`MissingImageError`), or
    with `skip_missing` is left out with its shapes and listed in `report.missing`."""
    if fmt == "images":
        return import_images(project, [Path(path)], progress)
    spec, missing = read_annotations(project, fmt, path, images_dir, classes_file, skip_missing)
    report = import_dataset(project, spec, progress=progress)
    report.missing = missing
    return report


def read_annotations(
    project: Project,
    fmt: str,
    path: Path | str,
    images_dir: Path | str | None = None,
    classes_file: Path | str | None = None,
    skip_missing: bool = False,
    coming: Sequence[Path] = (),
) -> tuple[DatasetSpec, list[str]]:
    """Read and check an annotation file or folder without writing anything: the spec
    `import_dataset` applies, and the images left out as missing (`skip_missing`). A
    drop of several files reads them all first, so a bad one stops them all; `coming`:
    image files the same drop brings in, found by file name as the project's are."""
    from studio.core.formats import READERS

    if fmt not in READERS:
        raise StudioError(f"unknown format {fmt!r}; use one of images, {', '.join(READERS)}")
    path = Path(path)
    if not os.path.exists(path):
        raise StudioError(f"{path}: {source_problem(path)}")
    if images_dir is not None and not os.path.isdir(images_dir):
        raise with_cli_hint(
            StudioError(f"{images_dir}: {source_problem(Path(images_dir))}"), " (given as --images)"
        )
    names = read_class_names(Path(classes_file) if classes_file else None)
    known = project_images_by_name(project)
    for f in coming:  # a name two files share stays ambiguous (None)
        p = os.path.abspath(f)
        known[f.name] = p if known.get(f.name, p) == p else None
    ctx = Resolving(known, skip_missing)
    token = RESOLVING.set(ctx)
    try:
        spec = READERS[fmt](path, Path(images_dir) if images_dir else None, names)
    finally:
        RESOLVING.reset(token)
    return spec, drop_missing(spec, ctx.missing)


def project_images_by_name(project: Project) -> dict[str, str | None]:
    """File name -> absolute path of the project's images; None where several images
    share a name (which one a file means cannot be told)."""
    out: dict[str, str | None] = {}
    for im in project.images():
        name = im.abs_path.name
        out[name] = None if name in out else str(im.abs_path)
    return out


def drop_missing(spec: DatasetSpec, missing: dict[str, str]) -> list[str]:
    """Leave the images noted missing (by placeholder path) and their shapes out of
    `spec`; returns "annotation file: where: name" of each, in the file's order."""
    if not missing:
        return []
    gone = {im.key for im in spec.images if str(im.path) in missing}
    used_before = {a.class_name for a in spec.annotations}
    spec.images = [im for im in spec.images if im.key not in gone]
    spec.annotations = [a for a in spec.annotations if a.image_key not in gone]
    # A class only the left-out shapes had is not made; one a class list declares is.
    only_gone = used_before - {a.class_name for a in spec.annotations}
    spec.classes = [c for c in spec.classes if c not in only_gone]
    return list(missing.values())


def import_dataset(
    project: Project,
    spec: DatasetSpec,
    progress: Progress | None = None,
    source: str = Source.IMPORTED,
    status: str | None = None,
) -> ImportReport:
    """Apply what a reader produced: match images by path (adding the missing ones),
    map coordinates to displayed pixels, clip and check shapes, leave out those already
    there, then write classes, images and shapes in one short transaction."""
    progress = progress or Progress()
    report = ImportReport(warnings=list(spec.warnings))
    for reason, n in spec.rejected.items():
        report.problem(reason, "", n)
    report.source_entries = len(spec.images) + len(spec.annotations) + sum(spec.rejected.values())
    progress.start(len(spec.images) + len(spec.annotations), "checking images")
    match = match_images(project, spec, progress, report, status)
    progress.check()
    progress.text = "checking shapes"
    existing = existing_signatures(project.engine, match.existing_ids())
    shapes = checked_shapes(spec.annotations, match, existing, progress, report)
    _write_dataset(project, spec, match, shapes, report, str(source))
    if report.added_classes:
        project.events.classes_changed.emit()
    project.events.images_changed.emit(None)
    project.events.annotations_changed.emit(None)
    return report


@contextmanager
def write_transaction(project: Project) -> Iterator[Connection]:
    """One write transaction on the project, with the database's failures said in one
    line: a full disk, a lock held too long by another process, or another process that
    added the same image first."""
    try:
        with project.engine.begin() as conn:
            yield conn
    except IntegrityError as e:
        if "images.path" in str(e.orig):
            raise StudioError(
                f"{project.path}: some of these images were just imported by another process; "
                "nothing was imported: run the import again to add the rest"
            ) from None
        raise StudioError(
            f"{project.db_path}: the import conflicts with the project: {e.orig}"
        ) from None
    except OperationalError as e:
        raise StudioError(f"{project.db_path}: cannot write the project: {e.orig}") from None


def _write_dataset(
    project: Project,
    spec: DatasetSpec,
    m: ImageMatch,
    shapes: list[Shape],
    report: ImportReport,
    source: str,
) -> None:
    """One short transaction: classes, images, then the checked shapes (only name to id
    lookups happen inside it, so other writers wait as little as possible)."""
    store = project.store
    used_classes = dict.fromkeys([*spec.classes, *(s[1] for s in shapes)])
    before = {c.name for c in project.classes()}
    missing = [n for n in used_classes if n not in before]
    now = S.utcnow()
    with write_transaction(project) as conn:
        # A big page cache keeps the index B-trees in memory during a million-row insert;
        # the connection goes back to the pool afterwards, so restore the default.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            missing = [n for n in missing if n not in store.classes.ids_by_name(conn)]
            if missing:
                store.classes.insert_names(conn, missing)
            class_ids = store.classes.ids_by_name(conn)
            key_to_id = m.ids(store.images.insert_many(conn, m.new_rows))
            values = insert_tuples(shapes, key_to_id, class_ids, source, now)
            store.annotations.insert_values(conn, values)
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
    report.added_images = len(m.new_rows)
    report.added_annotations = len(values)
    report.added_classes = missing
    report.image_ids = sorted(set(key_to_id.values()))


def detect_format(path: Path | str) -> str | None:
    """Guess what a dropped file or folder is: "images", "coco", "yolo", "voc",
    "labelme", "cvat", "project" (a Studio project folder), or None."""
    p = Path(path)
    if p.is_file():
        return _detect_file_format(p)
    if not p.is_dir():
        return None
    if (p / DB_NAME).is_file():
        return "project"  # a Studio project: opened, never imported as images
    if (p / "data.yaml").is_file() or (p / "dataset.yaml").is_file():
        return "yolo"
    jsons = sorted(p.glob("*.json"))[:20] or sorted(p.rglob("*.json"))[:20]
    for j in jsons:
        fmt = detect_format(j)
        if fmt:
            return fmt
    if (p / "annotations.xml").is_file():
        return detect_format(p / "annotations.xml")
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
        # CVAT's own XML starts <annotations><version>; VOC's <annotation>.
        with open(p, "rb") as f:
            head = f.read(2000)
        return "cvat" if b"<annotations>" in head and b"<version>" in head else "voc"
    if suffix == ".json":
        head = p.read_text(encoding="utf-8", errors="replace")[:100_000]
        if '"shapes"' in head:
            return "labelme"
        if '"annotations"' in head or '"images"' in head:
            return "coco"
    return None

"""Open a folder of images with the labels beside them in one step.

`studio FOLDER` and the window's File ▸ Open folder… both call `open_folder`: it makes a
project for the folder (or reopens the one made before), imports every image under it
and the sidecar label files it recognises by their content:

- labelme: ``*.json`` files with a ``"shapes"`` list (one per image);
- LabelImg / Pascal VOC: ``*.xml`` files whose root element is ``<annotation>``;
- LabelImg / YOLO: a folder holding ``classes.txt`` and ``*.txt`` label files, beside
  the images (or in a folder of labels whose parent holds the images);
- Ultralytics YOLO: a ``data.yaml`` (or ``dataset.yaml``) at the top of the folder.

Where the project goes: ``FOLDER/.studio`` by default (`default_project_dir`). The
user's folder gains one entry and no more, the project travels with the folder, and a
second open finds it again without asking. The name starts with "." on purpose: the
image import skips hidden folders, so the project's own thumbnails and run outputs are
never imported as images. The images stay where they are; the project stores their
absolute paths (they lie outside the project folder).

A second open imports only what is new: image files not in the project yet, and sidecar
files not imported before (their paths relative to FOLDER are kept in the project
setting `SIDECARS_SETTING`). A sidecar imported once is not read again, so shapes the
user has since edited in Studio are never duplicated from the old file.

Everything is read and checked before anything is written: a malformed sidecar raises a
`StudioError` naming it, and no project is created. Images a sidecar names that cannot
be found are left out with their shapes and listed in the report (`missing`); those
that cannot be read (a corrupt file) are left out with their shapes, with a warning
naming the sidecar.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.formats import read_labelme, read_voc, read_yolo
from studio.core.formats.common import RESOLVING, Resolving
from studio.core.imageinfo import IMAGE_EXTENSIONS, iter_image_files
from studio.core.import_report import ImportReport, count_of
from studio.core.importing import drop_missing, import_dataset, import_images
from studio.core.progress import Progress
from studio.core.project import DB_NAME, Project
from studio.core.records import DatasetSpec

__all__ = [
    "PROJECT_DIR_NAME",
    "SIDECARS_SETTING",
    "FolderOpened",
    "Sidecars",
    "default_project_dir",
    "existing_project_dir",
    "find_sidecars",
    "is_project",
    "open_folder",
]

PROJECT_DIR_NAME = ".studio"
# Project setting: {opened folder (absolute): sorted POSIX paths relative to it of the
# sidecar files already imported (labelme .json, VOC .xml, YOLO .txt)}. Keyed by folder:
# a project made elsewhere (`project_dir`) may be given several folders.
SIDECARS_SETTING = "open_folder.sidecars"
# How much of a file is read to recognise it. labelme writes "shapes" before the
# (possibly megabytes of) base64 "imageData"; a VOC root element comes first.
SNIFF_BYTES = 65_536
CLASSES_TXT = "classes.txt"


@dataclass
class Sidecars:
    """The label files found under a folder, by format (absolute paths, sorted)."""

    labelme: list[Path] = field(default_factory=list)  # *.json with a "shapes" list
    voc: list[Path] = field(default_factory=list)  # *.xml with an <annotation> root
    yolo: list[Path] = field(default_factory=list)  # folders holding classes.txt + labels
    yolo_labels: dict[Path, list[Path]] = field(default_factory=dict)  # folder -> *.txt

    def files(self) -> list[Path]:
        """Every sidecar file (YOLO: its label files, not classes.txt)."""
        return [*self.labelme, *self.voc, *(f for d in self.yolo for f in self.yolo_labels[d])]


@dataclass
class FolderOpened:
    """What `open_folder` did."""

    folder: Path
    project_dir: Path
    created: bool  # a new project, or one made by an earlier open
    images: ImportReport
    labels: list[tuple[str, ImportReport]]  # (format, report) per format with new sidecars
    sidecar_files: int  # new sidecar files read

    @property
    def added_annotations(self) -> int:
        return sum(r.added_annotations for _, r in self.labels)

    def summary_lines(self) -> list[str]:
        """What happened, for stderr and the window's report: the project, one headline
        ("imported 3 images, 10 shapes (labelme: 10), 2 new classes"), then a line for
        each thing worth knowing (images already there, skipped, not found)."""
        verb = "created" if self.created else "opened"
        reports = [self.images, *(r for _, r in self.labels)]
        parts = [count_of(sum(r.added_images for r in reports), "image")]
        if self.added_annotations:
            per_format = ", ".join(f"{f}: {r.added_annotations}" for f, r in self.labels)
            parts.append(f"{count_of(self.added_annotations, 'shape')} ({per_format})")
        new_classes = {c for r in reports for c in r.added_classes}
        if new_classes:
            parts.append(count_of(len(new_classes), "new class", "new classes"))
        lines = [f"{verb} project {self.project_dir} for {self.folder}"]
        lines.append("imported " + ", ".join(parts))
        for n, what in (
            (self.images.present_images, "images were already in the project"),
            (sum(len(r.skipped) for r in reports), "files skipped (see the details)"),
            (sum(len(r.missing) for r in reports), "images named by label files not found"),
            (sum(r.present_annotations for r in reports), "shapes were already there"),
        ):
            if n:
                lines.append(f"{n} {what}")
        for fmt, report in self.labels:  # shapes clipped or not imported, per format
            lines += [f"{fmt} {ln}" for ln in report.summary().splitlines() if ln[:7] == "shapes:"]
        if not self.labels:
            lines.append("no new label files")
        return lines

    def details(self) -> list[str]:
        """Skipped files, images not found and warnings: one line each."""
        reports = [self.images, *(r for _, r in self.labels)]
        out = [f"{f}: {why}" for r in reports for f, why in r.skipped]
        out += [f"image not found, skipped: {m}" for r in reports for m in r.missing]
        out += [f"warning: {w}" for r in reports for w in r.warnings]
        return out


# --- where the project is ---------------------------------------------------------------


def is_project(folder: Path | str) -> bool:
    """True when `folder` is itself a project folder (it holds studio.db)."""
    return (Path(folder) / DB_NAME).is_file()


def default_project_dir(folder: Path | str) -> Path:
    """Where `open_folder` puts the project of an image folder: FOLDER/.studio."""
    return Path(folder).expanduser().resolve() / PROJECT_DIR_NAME


def existing_project_dir(folder: Path | str) -> Path | None:
    """The project an earlier open made for `folder` (FOLDER/.studio), or None."""
    p = default_project_dir(folder)
    return p if is_project(p) else None


def _check_project_dir(folder: Path, project_dir: Path) -> None:
    """A project folder inside the image folder must be hidden (or its thumbnails and
    run outputs would be imported as images on the next open)."""
    if project_dir == folder:
        raise StudioError(f"{folder}: choose a project folder other than the image folder itself")
    try:
        rel = project_dir.relative_to(folder)
    except ValueError:
        return
    if not any(part.startswith(".") for part in rel.parts):
        raise StudioError(
            f"{project_dir}: a project inside the image folder must be a hidden folder "
            f"(such as {PROJECT_DIR_NAME}), or its files would be imported as images"
        )


# --- finding sidecars -------------------------------------------------------------------


def _walk(folder: Path):
    """(folder, file names) under `folder`, hidden entries skipped, in sorted order."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield Path(root), sorted(f for f in files if not f.startswith("."))


def _head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""  # unreadable: not recognised (the image import reports real problems)


def _is_labelme(path: Path) -> bool:
    return '"shapes"' in _head(path)


# The XML declaration, comments and a DOCTYPE may come before the root element.
_PROLOG = re.compile(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", re.S)
_FIRST_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)")


def _is_voc(path: Path) -> bool:
    tag = _FIRST_TAG.search(_PROLOG.sub("", _head(path)))
    return tag is not None and tag.group(1) == "annotation"


def find_sidecars(folder: Path | str, known: frozenset[str] = frozenset()) -> Sidecars:
    """Label files under `folder` (recursively, hidden folders skipped), recognised by
    their content rather than their extension alone. JSON and XML files whose POSIX path
    relative to `folder` is in `known` (imported before) are neither read nor listed, so
    a reopen reads only what is new."""
    folder = Path(folder)
    found = Sidecars()
    for root, files in _walk(folder):
        prefix = _prefix(folder, root)
        for name in files:
            suffix = os.path.splitext(name)[1].lower()
            if prefix + name in known:
                continue
            if suffix == ".json" and _is_labelme(root / name):
                found.labelme.append(root / name)
            elif suffix == ".xml" and _is_voc(root / name):
                found.voc.append(root / name)
        labels = [n for n in files if n.lower().endswith(".txt") and n != CLASSES_TXT]
        inside_other = any(root.is_relative_to(d) for d in found.yolo)
        if CLASSES_TXT in files and labels and not inside_other:
            found.yolo.append(root)
    for d in found.yolo:
        found.yolo_labels[d] = [
            r / n
            for r, files in _walk(d)
            for n in files
            if n.lower().endswith(".txt") and n != CLASSES_TXT
        ]
    return found


# --- reading ----------------------------------------------------------------------------


def _images_by_name(folder: Path, project: Project | None) -> dict[str, str | None]:
    """File name -> absolute path of the folder's (and the project's) images; None where
    several share a name. Lets a sidecar whose image path is stale (another machine's
    absolute <path>, an imagePath into a folder since renamed) find its image."""
    out: dict[str, str | None] = {}
    paths = [str(p) for p in iter_image_files(folder)]
    if project is not None:
        paths += [str(im.abs_path) for im in project.images()]
    for p in dict.fromkeys(os.path.abspath(p) for p in paths):
        name = os.path.basename(p)
        out[name] = None if name in out else p
    return out


def _merge(parts: list[tuple[str, DatasetSpec]]) -> DatasetSpec:
    """One spec of several read from different folders: image keys prefixed with the
    folder (relative to the opened one) so they stay unique, an image named by two files
    kept once."""
    out = DatasetSpec()
    key_of_path: dict[str, str] = {}
    classes: dict[str, None] = {}
    for prefix, spec in parts:
        remap: dict[str, str] = {}
        for im in spec.images:
            key = key_of_path.get(str(im.path))
            if key is None:
                key = key_of_path[str(im.path)] = f"{prefix}{im.key}"
                out.images.append(replace(im, key=key, where=f"{prefix}{im.where}"))
            remap[im.key] = key
        for a in spec.annotations:
            out.annotations.append(
                replace(a, image_key=remap[a.image_key], where=f"{prefix}{a.where}")
            )
        classes.update(dict.fromkeys(spec.classes))
        out.warnings += spec.warnings
        for reason, n in spec.rejected.items():
            out.rejected[reason] = out.rejected.get(reason, 0) + n
        out.raw_orientation = out.raw_orientation or spec.raw_orientation
    out.classes = list(classes)
    return out


def _prefix(folder: Path, d: Path) -> str:
    rel = d.relative_to(folder).as_posix()
    return "" if rel == "." else rel + "/"


def _read_yolo_folder(folder: Path, d: Path, new: set[Path]) -> tuple[str, DatasetSpec]:
    """A LabelImg YOLO folder: labels beside the images, or a folder of labels whose
    parent holds the images. Only the shapes of label files in `new` are kept."""
    has_images = any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(d))
    base = d if has_images else d.parent
    spec = read_yolo(d, None if has_images else d.parent)
    # The reader names each shape's label file relative to `d` ("a.txt: line 3").
    spec.annotations = [a for a in spec.annotations if (d / a.where.rsplit(": line", 1)[0]) in new]
    return _prefix(folder, base), spec


def _read_units(d: Path, wanted: set[Path], glob: str, skip: str | None) -> list[tuple[Path, int]]:
    """(folder or file, wanted files in it) to hand a reader so that it reads exactly the
    `wanted` files under `d`: `d` itself when every file the reader would read there
    (`glob`, recursively, leaving out folders named `skip`) is wanted, else its wanted
    files one by one and its sub-folders the same way. A reader given a folder lists
    each image folder once; given files one by one it lists the folder per file."""
    mine = [p for p in wanted if p.is_relative_to(d)]
    if not mine:
        return []
    reads = {
        p
        for p in d.rglob(glob)
        if not (skip and skip in p.relative_to(d).parts[:-1]) and p.is_file()
    }
    if reads <= wanted:
        return [(d, len(mine))]
    out = [(p, 1) for p in sorted(mine) if p.parent == d]
    for sub in sorted({d / p.relative_to(d).parts[0] for p in mine if p.parent != d}):
        out += _read_units(sub, wanted, glob, skip)
    return out


def _drop_unreadable(spec: DatasetSpec, unreadable: dict[str, str]) -> None:
    """Leave out of `spec` the images the image import skipped as unreadable (a corrupt
    file, say), with their shapes, saying which label files named them: the rest of the
    folder's labels still land, and the next open does not fail on them again."""
    gone = {im.key: im for im in spec.images if str(im.path) in unreadable}
    if not gone:
        return
    drop_missing(spec, {str(im.path): "" for im in gone.values()})
    examples = "; ".join(
        f"{im.where or im.key}: {im.path.name} ({unreadable[str(im.path)]})"
        for im in list(gone.values())[:3]
    )
    spec.warnings.append(
        f"{len(gone)} label file(s) name an image that cannot be read; their shapes were "
        f"left out: {examples}"
    )


def _read_labels(
    folder: Path, project: Project | None, done: set[str], progress: Progress
) -> tuple[list[tuple[str, DatasetSpec, list[str]]], set[Path], str | None]:
    """(format, spec, missing images) per format with new label files, the new label
    files, and a note when a data.yaml turned out to be no dataset; read and checked,
    nothing written."""
    found = find_sidecars(folder, frozenset(done))
    new = {f for f in found.files() if f.relative_to(folder).as_posix() not in done}
    ctx = Resolving(_images_by_name(folder, project), skip_missing=True)
    specs = _read_sidecars(folder, found, new, ctx, progress)
    dataset = _ultralytics_yaml(folder, done)
    if dataset is not None:  # an Ultralytics dataset: its data.yaml says it all
        try:
            specs.append(("yolo", read_yolo(dataset), []))
            new.add(dataset)
        except StudioError as e:  # a yaml of something else: the images still come
            return specs, new, f"{dataset.name} is not a YOLO dataset Studio can read ({e})"
    return specs, new, None


def _ultralytics_yaml(folder: Path, done: set[str]) -> Path | None:
    """The folder's data.yaml (or dataset.yaml) when it looks like an Ultralytics
    dataset (class names and a train or val entry) not imported before; a yaml of
    anything else (an experiment's settings) is none of Studio's business."""
    for name in ("data.yaml", "dataset.yaml"):
        f = folder / name
        if f.is_file() and name not in done:
            try:
                head = f.read_text(encoding="utf-8", errors="replace")[:100_000]
            except OSError:
                return None
            keys = {line.split(":", 1)[0].strip() for line in head.splitlines() if ":" in line}
            if "names" in keys and keys & {"train", "val"}:
                return f
    return None


def _read_sidecars(
    folder: Path, found: Sidecars, new: set[Path], ctx: Resolving, progress: Progress
) -> list[tuple[str, DatasetSpec, list[str]]]:
    """(format, spec, missing images) per format with new sidecar files; raises on the
    first malformed file, before anything is written."""
    out = []
    progress.start(len(new), "reading label files")
    for fmt, files, reader, glob, skip in (
        # The folder's other images come in through the image import.
        ("labelme", found.labelme, partial(read_labelme, unlabelled=False), "*.json", None),
        ("voc", found.voc, read_voc, "*.xml", "ImageSets"),  # as read_voc skips them
    ):
        parts = []
        ctx.missing = {}
        token = RESOLVING.set(ctx)
        try:
            for unit, n in _read_units(folder, {f for f in files if f in new}, glob, skip):
                progress.step(n)
                base = unit if unit.is_dir() else unit.parent
                parts.append((_prefix(folder, base), reader(unit, None, None)))
        finally:
            RESOLVING.reset(token)
        if parts:
            spec = _merge(parts)
            out.append((fmt, spec, drop_missing(spec, ctx.missing)))
    dirs = [d for d in found.yolo if any(f in new for f in found.yolo_labels[d])]
    if dirs:
        progress.step(sum(len(found.yolo_labels[d]) for d in dirs))
        spec = _merge([_read_yolo_folder(folder, d, new) for d in dirs])
        out.append(("yolo", spec, []))
    return out


# --- the one step -----------------------------------------------------------------------


def open_folder(
    folder: Path | str, project_dir: Path | str | None = None, progress: Progress | None = None
) -> FolderOpened:
    """Make (or reopen) the project of an image folder and import what is new in it.

    `project_dir`: where the project is (default FOLDER/.studio, see the module's
    docstring); an existing project there is reopened. Shapes land in displayed pixels of
    their images, as every import does. Raises `StudioError` naming the file for a
    folder that cannot be read or a malformed sidecar; nothing is created or written then.
    """
    progress = progress or Progress()
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise StudioError(f"{folder}: not a folder")
    if is_project(folder):
        raise StudioError(f"{folder}: is a project folder; open it as a project")
    target = (
        Path(project_dir).expanduser().resolve() if project_dir else default_project_dir(folder)
    )
    _check_project_dir(folder, target)
    created = not is_project(target)
    project = None if created else Project.open(target)
    before: set[str] | None = None  # what a folder chosen for the project held already
    try:
        by_folder: dict[str, list[str]] = (
            project.get_setting(SIDECARS_SETTING, {}) if project else {}
        )
        done = set(by_folder.get(str(folder), []))
        specs, new, yolo_note = _read_labels(folder, project, done, progress)
        if project is None:
            before = set(os.listdir(target)) if target.is_dir() else None
            project = Project.create(target)
        images = import_images(project, [folder], progress)
        unreadable = {os.path.abspath(f): reason for f, reason in images.skipped}
        labels = []
        for fmt, spec, missing in specs:
            _drop_unreadable(spec, unreadable)
            report = import_dataset(project, spec, progress=progress)
            report.missing = missing
            labels.append((fmt, report))
        recorded = done | {f.relative_to(folder).as_posix() for f in new}
        project.set_setting(SIDECARS_SETTING, {**by_folder, str(folder): sorted(recorded)})
    except BaseException:
        # Cancelled (or failed) before any image landed: the project made for it goes
        # too, so the folder is as it was and the next open starts afresh.
        if created and project is not None and project.image_count() == 0:
            project.close()
            project = None
            _remove_made(target, before)
        raise
    finally:
        if project is not None:
            project.close()
    if yolo_note:
        images.warnings.append(yolo_note)
    return FolderOpened(folder, target, created, images, labels, len(new))


def _remove_made(target: Path, before: set[str] | None) -> None:
    """Remove what making the project at `target` made: the folder if it did not exist
    (`before` None), else only the entries it did not hold (a folder the user chose may
    hold their files, or the images themselves)."""
    if before is None:
        shutil.rmtree(target, ignore_errors=True)
        return
    for name in set(os.listdir(target)) - before:
        p = target / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)

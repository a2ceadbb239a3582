"""Exports: the project's annotations written in an annotation file format."""

from __future__ import annotations

import os
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import SPLITS

# The formats Studio itself writes (plugins may add more to `formats.WRITERS`).
EXPORT_FORMATS = ("coco", "yolo", "voc", "labelme")


def export_annotations(
    project: Project, fmt: str, out: Path | str, split: str | None = None
) -> list[str]:
    """Write the project's annotations (one split, or all) in `fmt`; returns warnings
    about what the format could not keep. Coordinates are converted at this edge."""
    from studio.core.formats import WRITERS

    if fmt not in WRITERS:
        raise StudioError(f"unknown export format {fmt!r}; use one of {', '.join(WRITERS)}")
    if split is not None and split not in SPLITS:
        raise StudioError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    out = Path(out)
    _check_target(out, fmt)
    snap = project.snapshot(split)
    if _copies_images(fmt, out):
        _check_images(snap.images)
    try:
        return WRITERS[fmt](snap, out)
    except OSError as e:  # a writer's own error; Studio's writers say StudioError themselves
        where = e.filename or out
        raise StudioError(f"{where}: cannot write the export: {e.strerror or e}") from e


def _check_target(out: Path, fmt: str) -> None:
    """Refuse, before anything is written, an output the format cannot be written to."""
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StudioError(f"{out}: cannot export here: {parent} is a file, not a folder")
            break
    single_file = fmt == "coco" and out.suffix.lower() == ".json"
    if out.exists() and not out.is_dir() and not single_file:
        raise StudioError(f"{out}: exists and is a file; {fmt} exports to a folder")


def _copies_images(fmt: str, out: Path) -> bool:
    """Whether the export copies the images (a dataset folder): YOLO, VOC, COCO to a folder."""
    return fmt in ("yolo", "voc") or (fmt == "coco" and out.suffix.lower() != ".json")


def _check_images(images: list) -> None:
    """Refuse, before anything is written, an export whose images are not all there: it
    used to stop at the first, leaving half a dataset in the folder."""
    gone = [im.abs_path for im in images if not os.path.isfile(im.abs_path)]
    if gone:
        raise StudioError(
            f"{gone[0]}: image not found ({len(gone)} of the {len(images)} images to export "
            "are missing on disk); nothing was exported"
        )

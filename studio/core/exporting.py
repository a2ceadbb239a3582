"""Exports: the project's annotations written in an annotation file format."""

from __future__ import annotations

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
    snap = project.snapshot(split)
    return WRITERS[fmt](snap, Path(out))

"""Annotation file formats: readers into `DatasetSpec`, writers from `ExportSnapshot`.

Readers validate structure only and raise `FormatError(file, where, problem)`; the
import step checks shapes against the images. Writers return warnings about what the
format could not keep. All coordinates are Studio's (see `studio.core.records`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.core.formats.coco import read_coco
from studio.core.formats.coco_writer import write_coco
from studio.core.formats.cvat import read_cvat
from studio.core.formats.labelme import read_labelme, write_labelme
from studio.core.formats.voc import read_voc, write_voc
from studio.core.formats.yolo import read_yolo, write_yolo
from studio.core.records import DatasetSpec, ExportSnapshot

Reader = Callable[[Path, Path | None, list[str] | None], DatasetSpec]
Writer = Callable[[ExportSnapshot, Path], list[str]]

READERS: dict[str, Reader] = {
    "coco": read_coco,
    "yolo": read_yolo,
    "voc": read_voc,
    "labelme": read_labelme,
    "cvat": read_cvat,
}
WRITERS: dict[str, Writer] = {
    "coco": write_coco,
    "yolo": write_yolo,
    "voc": write_voc,
    "labelme": write_labelme,
}

__all__ = [
    "READERS",
    "WRITERS",
    "Reader",
    "Writer",
    "read_coco",
    "read_cvat",
    "read_labelme",
    "read_voc",
    "read_yolo",
    "write_coco",
    "write_labelme",
    "write_voc",
    "write_yolo",
]

"""Plain data handed out by the project API and passed between core, ml and ui.

None of these hold a database session: they are snapshots, safe to send to another
thread or process. Geometry is in pixels of the image *as displayed* (after EXIF
orientation), as floats, origin at the top-left corner of the top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.core.kinds import ImageStatus, ShapeKind, Source, Split, values

KINDS = values(ShapeKind)
SOURCES = values(Source)
STATUSES = values(ImageStatus)
SPLITS = values(Split)

BBox = tuple[float, float, float, float]  # x, y, width, height
Polygons = list[list[float]]  # one flat [x0, y0, x1, y1, ...] list per part


@dataclass(frozen=True, slots=True)
class ClassRecord:
    id: int
    name: str
    color: str  # "#rrggbb"
    position: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: int
    path: str  # as stored: relative to the project folder where possible, else absolute
    abs_path: Path
    width: int  # after EXIF orientation
    height: int
    orientation: int  # EXIF orientation tag 1..8 (1 = as stored)
    checksum: str
    file_size: int
    status: str
    split: str

    @property
    def name(self) -> str:
        return self.abs_path.name


@dataclass(frozen=True, slots=True)
class Attributes:
    """What an annotator says about a shape beyond its geometry and class: VOC's flags
    (occluded, truncated, difficult), a group id tying parts of one object together
    (labelme's group_id), and free-text notes. Kept by every format that has them."""

    occluded: bool = False
    truncated: bool = False
    difficult: bool = False
    group_id: int | None = None
    notes: str = ""

    def is_default(self) -> bool:
        return self == NO_ATTRIBUTES


NO_ATTRIBUTES = Attributes()
# Attribute names, as the database columns and `Project.set_attributes` spell them.
ATTRIBUTE_FIELDS = ("occluded", "truncated", "difficult", "group_id", "notes")
FLAG_FIELDS = ("occluded", "truncated", "difficult")


@dataclass(frozen=True, slots=True)
class AnnotationRecord:
    id: int
    image_id: int
    class_id: int
    kind: str  # one of KINDS
    bbox: BBox  # x, y, w, h; for polygons and masks the tight box around the shape
    polygons: Polygons | None = None
    rle: dict | None = None  # COCO compressed RLE {"size": [h, w], "counts": str}
    iscrowd: bool = False
    source: str = Source.MANUAL
    score: float | None = None
    # Square pixels as an imported file gave it (COCO `area`); None when the shape was
    # edited since or its source had none (exporters then compute it from the geometry).
    area: float | None = None
    attributes: Attributes = NO_ATTRIBUTES


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    name: str
    model: str
    task: str
    status: str  # queued / running / finished / stopped / failed
    epoch: int
    best_metric: float | None
    best_metric_name: str | None
    config: dict
    created_at: str
    finished_at: str | None
    error: str | None
    dir: Path


# --- interchange for importers ----------------------------------------------------------


@dataclass(slots=True)
class ImageSpec:
    """An image an annotation file refers to, before it is in the project."""

    key: str  # unique within one DatasetSpec (a COCO image id, a relative path, ...)
    path: Path  # absolute path of the image file
    width: int | None = None  # as declared by the annotation file, if it declares one
    height: int | None = None
    split: str | None = None
    where: str = ""  # "file.json: images[3]", for error messages


@dataclass(slots=True)
class AnnotationSpec:
    """One shape read from an annotation file, in the file's pixel coordinates."""

    image_key: str
    class_name: str
    kind: str  # a ShapeKind
    bbox: BBox
    polygons: Polygons | None = None
    rle: dict | None = None
    iscrowd: bool = False
    score: float | None = None
    where: str = ""  # "labels/train/a.txt: line 4", for reports
    area: float | None = None  # square pixels, as the file declares it (COCO `area`)
    attributes: Attributes = NO_ATTRIBUTES


@dataclass(slots=True)
class DatasetSpec:
    """What an importer read: validated for structure, not yet checked against images."""

    classes: list[str] = field(default_factory=list)  # in the file's order
    images: list[ImageSpec] = field(default_factory=list)
    annotations: list[AnnotationSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # {reason: count} of shapes the reader left out (unsupported types, ignore labels).
    rejected: dict[str, int] = field(default_factory=dict)
    # The annotation coordinates refer to the stored pixels (before EXIF orientation)
    # rather than the displayed ones. Importers set it when the file says so.
    raw_orientation: bool = False


@dataclass(slots=True)
class ExportSnapshot:
    """Everything an exporter writes, read in one transaction."""

    project_dir: Path
    classes: list[ClassRecord]
    images: list[ImageRecord]
    annotations: list[AnnotationRecord]

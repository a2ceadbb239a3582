"""Which project image each image of an import is: matched by stored path only.

A file already in the project (same stored path) is the same image, so re-importing it
adds nothing. A file with the same bytes under another name is its own image: each has
its own labels, and merging them would attach one file's boxes to the other. Such twins
are reported as duplicate pairs, with a warning when they sit in different splits (which
leaks validation images into training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.core import schema as S
from studio.core.errors import FormatError, ImageFileError
from studio.core.imageinfo import ImageFileInfo, read_image_info
from studio.core.import_checks import Orientation
from studio.core.import_report import ImportReport
from studio.core.kinds import ImageStatus, Split
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import SPLITS, DatasetSpec, ImageSpec


def default_split(checksum: str, val: float, test: float) -> str:
    """A stable split for a new image, from its checksum: re-importing the same file
    anywhere gives the same split, with no random state to keep."""
    u = int(checksum[:8], 16) / 0x1_0000_0000
    return Split.TEST if u < test else Split.VAL if u < test + val else Split.TRAIN


def split_fractions(project: Project) -> tuple[float, float]:
    """(val, test) fractions new images are split by (the project's setting)."""
    fr = project.get_setting("split_fractions", {"val": 0.2, "test": 0.0})
    return float(fr.get("val", 0.2)), float(fr.get("test", 0.0))


def image_row(stored: str, info: ImageFileInfo, split: str, status: str | None = None) -> dict:
    """An images-table row for a new image file."""
    now = S.utcnow()
    return {
        "path": stored, "width": info.width, "height": info.height,
        "orientation": info.orientation, "checksum": info.checksum,
        "file_size": info.file_size, "status": str(status or ImageStatus.NEW),
        "split": str(split), "created_at": now, "updated_at": now,
    }  # fmt: skip


def utf8_name(path: object) -> bool:
    """False for a path the database cannot store: a file name in another encoding
    reaches Python as lone surrogates, which UTF-8 cannot encode."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Twins:
    """Images by checksum (the project's and those of this import), to report files with
    the same bytes under different names as duplicate pairs."""

    def __init__(self, project: Project, report: ImportReport):
        self.report = report
        self.by_sum: dict[str, tuple[str, str]] = {}  # checksum -> (stored path, split)
        for im in project.images():
            self.by_sum.setdefault(im.checksum, (im.path, im.split))
        self.split_leaks = 0

    def note(self, stored: str, checksum: str, split: str) -> None:
        """Record a new image; report it if another image has the same bytes."""
        twin = self.by_sum.get(checksum)
        if twin is None:
            self.by_sum[checksum] = (stored, split)
            return
        self.report.duplicates.append((stored, twin[0]))
        if twin[1] != split:
            self.split_leaks += 1
            if self.split_leaks <= 5:
                self.report.warnings.append(
                    f"{stored} ({split}) has the same bytes as {twin[0]} ({twin[1]}): "
                    "the same picture in two splits leaks validation into training"
                )

    def finish(self) -> None:
        if self.split_leaks > 5:
            self.report.warnings.append(
                f"{self.split_leaks} duplicate pairs sit in different splits in all"
            )


@dataclass
class ImageMatch:
    """How each image key of a `DatasetSpec` maps to the project."""

    # key -> existing image id, or ("new", index into new_rows)
    refs: dict[str, int | tuple[str, int]] = field(default_factory=dict)
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> displayed w, h
    new_rows: list[dict] = field(default_factory=list)
    # key -> orientation of images whose file coordinates are in stored pixels
    transforms: dict[str, Orientation] = field(default_factory=dict)

    def ids(self, first_new_id: int | None) -> dict[str, int]:
        # New image ids are consecutive from the first (one writer, one transaction,
        # AUTOINCREMENT key): avoids a round trip per image.
        return {
            k: (first_new_id + ref[1] if isinstance(ref, tuple) else ref)
            for k, ref in self.refs.items()
        }

    def existing_ids(self) -> set[int]:
        return {ref for ref in self.refs.values() if not isinstance(ref, tuple)}


def match_images(
    project: Project,
    spec: DatasetSpec,
    progress: Progress,
    report: ImportReport,
    status: str | None,
) -> ImageMatch:
    """Existing images by stored path; new ones read from their headers (each file its
    own image, twins reported). Counts images already present into `report`."""
    known_paths, _ = project.known_paths_and_checksums()
    existing = {im.id: im for im in project.images()} if known_paths else {}
    twins = Twins(project, report)
    val, test = split_fractions(project)
    m = ImageMatch()
    new_by_path: dict[str, int] = {}
    for im in spec.images:
        progress.step()
        if not utf8_name(im.path):
            raise FormatError(im.path, im.where, "the file name is not valid UTF-8")
        stored = project.stored_path(im.path)
        if stored in known_paths:
            rec = existing[known_paths[stored]]
            m.refs[im.key] = rec.id
            m.dims[im.key] = (rec.width, rec.height)
            orientation, w, h = rec.orientation, rec.width, rec.height
            raw_w, raw_h = (h, w) if orientation >= 5 else (w, h)
            report.present_images += 1
        else:
            try:
                info = read_image_info(im.path)
            except ImageFileError as e:
                raise FormatError(e.path, im.where, f"cannot use this image: {e.reason}") from e
            if stored in new_by_path:  # two entries of one file name the same image
                m.refs[im.key] = ("new", new_by_path[stored])
            else:
                split = im.split if im.split in SPLITS else default_split(info.checksum, val, test)
                twins.note(stored, info.checksum, split)
                new_by_path[stored] = len(m.new_rows)
                m.refs[im.key] = ("new", len(m.new_rows))
                m.new_rows.append(image_row(stored, info, split, status))
            m.dims[im.key] = (info.width, info.height)
            orientation, raw_w, raw_h = info.orientation, info.raw_width, info.raw_height
        _note_orientation(m, im, (orientation, raw_w, raw_h), spec.raw_orientation, report)
    twins.finish()
    return m


def _note_orientation(
    m: ImageMatch, im: ImageSpec, o: Orientation, raw_declared: bool, report: ImportReport
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

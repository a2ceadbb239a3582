"""A run's frozen dataset: the one module that writes and reads ``dataset.json``.

A run never reads the project database for its data: at run creation `write_snapshot`
has the project write ``dataset.json`` (COCO, database ids, file names as the project
stores them, relative to its folder where inside it, displayed-pixel coordinates, ``studio_split`` and ``studio_status`` per image) into the
run folder, and training, evaluation and analyses read that file through `Snapshot`, so
labelling can go on while a run trains and a run can be repeated.

Labels: the snapshot's categories, in file order (the project's class order), become
model labels 1..K; 0 is the background. Annotations that cannot be trained on are
dropped and *counted* in a `DataReport` (boxes under a pixel, polygons without area,
masks of the wrong size, crowd regions), never raised.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError
from studio.core.geometry import polygon_area
from studio.core.kinds import ImageStatus, Split
from studio.core.store.folder import DB_NAME
from studio.core.store.snapshot import ROOT_KEY
from studio.ml.tasks import Task

if TYPE_CHECKING:
    from studio.core.project import Project

SNAPSHOT_NAME = "dataset.json"
MAX_ROOT_GUESSES = 20  # missing images tried to find where an old snapshot's project was
MIN_BOX_SIZE = 1.0  # pixels; smaller boxes carry no signal and upset box regression
# Image statuses whose images count as labelled even without any shape: negatives.
LABELLED_STATUSES = (ImageStatus.DONE,)
# A snapshot without statuses (written before they were recorded) counts every image
# as labelled, as training always did then.
_DEFAULT_STATUS = ImageStatus.DONE

_REPORT_TEXT = {
    "tiny_boxes": "{n} box(es) smaller than 1 pixel dropped",
    "degenerate_polygons": "{n} polygon(s) without area (fewer than 3 points) dropped",
    "bad_masks": "{n} mask(s) whose size does not match their image dropped",
    "crowd": "{n} crowd region(s) not used as training targets (still used in evaluation)",
    "unknown_category": "{n} annotation(s) of a category missing from the snapshot dropped",
    "box_as_mask": "{n} box-only annotation(s) trained as rectangular masks",
    "unlabelled_images": "{n} image(s) with no shapes and status other than 'done' skipped "
    "(mark an image done to use it as a negative sample)",
    "missing_files": "{n} image file(s) missing on disk skipped",
}


def _project_root(path: Path | None, data: dict[str, Any]) -> Path | None:
    """The project folder of a snapshot: the nearest folder above its file that holds a
    project database (runs/<run>/dataset.json), else the folder it was written for."""
    if path is not None:
        for folder in Path(path).absolute().parents:
            if (folder / DB_NAME).is_file():
                return folder
    root = data.get(ROOT_KEY)
    return Path(root) if root else None


def write_snapshot(project: Project, out_json: Path) -> dict[str, Any]:
    """Freeze the project's classes, images and labels at `out_json` and return the data.

    The project's own writer (`Project.write_coco_snapshot`) writes the file, atomically
    and once; nothing here rewrites it. Each image carries "studio_split" and, from a
    project that records it, "studio_status" (which tells a negative sample, done
    without shapes, from an unlabelled image)."""
    return project.write_coco_snapshot(Path(out_json))


@dataclass(slots=True)
class DataReport:
    """Counts of what the dataset left out or changed, for the Started message and run."""

    counts: Counter = field(default_factory=Counter)
    negatives: int = 0  # images with no shapes used as negative samples
    missing: list[str] = field(default_factory=list)  # the first missing image files

    def missing_note(self) -> str:
        """ "; N image files are missing (first: PATH)", or "" when none is."""
        n = self.counts["missing_files"]
        if not n:
            return ""
        return (
            f"; {n} of its image files are missing (first: {self.missing[0]}): were the "
            "images moved or deleted?"
        )

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def warnings(self) -> list[str]:
        return [
            _REPORT_TEXT.get(k, k + ": {n}").format(n=n)
            for k, n in sorted(self.counts.items())
            if n
        ]

    def to_dict(self) -> dict[str, int]:
        return {**{k: int(v) for k, v in self.counts.items() if v}, "negatives": self.negatives}


@dataclass(slots=True)
class Sample:
    """One image prepared for training, geometry in displayed pixels of the full image."""

    image_id: int
    path: str
    width: int
    height: int
    boxes: list[list[float]]  # xyxy, clipped to the image, each at least 1 px wide and high
    labels: list[int]  # 1..K
    # Per box: polygon parts (flat x, y lists), a COCO RLE dict, or None for a plain box.
    segs: list[Any]


class Snapshot:
    """A run's frozen dataset.json: categories, images, annotations and splits."""

    def __init__(self, data: dict[str, Any], path: Path | None = None):
        self.data = data
        self.path = path
        cats = data.get("categories") or []
        self.category_ids: list[int] = [int(c["id"]) for c in cats]
        self.class_names: list[str] = [str(c["name"]) for c in cats]
        self.label_of: dict[int, int] = {cid: i + 1 for i, cid in enumerate(self.category_ids)}
        self.images: dict[int, dict[str, Any]] = {int(im["id"]): im for im in data["images"]}
        self.root = _project_root(path, data)
        self._guessed_root: Path | None = None  # see _old_root
        self._guesses = 0
        self.anns_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for a in data.get("annotations") or []:
            self.anns_by_image[int(a["image_id"])].append(a)

    def image_path(self, im: dict[str, Any]) -> str:
        """Where an image of the snapshot is now: a relative file name in the project
        folder the snapshot sits in (which may have moved since); an absolute one as
        written, unless it lay in the project's old folder and the project moved."""
        name = Path(str(im["file_name"]))
        if not name.is_absolute():
            return str((self.root or Path.cwd()) / name)
        if self.root is None or name.is_file():
            return str(name)
        old = self.data.get(ROOT_KEY) or self._old_root(name)
        if old and name.is_relative_to(old):
            return str(self.root / name.relative_to(old))
        return str(name)

    def _old_root(self, name: Path) -> Path | None:
        """Where the project was when a snapshot without "studio_root" (written before
        it was recorded) was written: the part of a missing image's path whose rest is
        an image under the project's folder now. Found once (trying up to
        MAX_ROOT_GUESSES missing images), used for every image."""
        if self._guessed_root is None and self._guesses < MAX_ROOT_GUESSES:
            # An image deleted since gives no answer: the next missing one is tried.
            self._guesses += 1
            assert self.root is not None
            parts = name.parts
            for k in range(len(parts) - 1, 0, -1):  # the longest tail first
                if (self.root / Path(*parts[-k:])).is_file():
                    self._guessed_root = Path(*parts[:-k])
                    break
        return self._guessed_root

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise StudioError(f"{path}: cannot read the run's dataset: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise StudioError(f"{path}: the run's dataset is not valid JSON: {e}") from None
        if not isinstance(data, dict) or "images" not in data:
            raise StudioError(f"{path}: not a COCO dataset snapshot")
        return cls(data, path)

    def with_categories(self, category_ids: Sequence[int], names: Sequence[str]) -> Snapshot:
        """The same images and labels with a model's categories, in the model's label order
        (annotations of other categories are then dropped by `samples` and ignored by
        COCOeval). For evaluating a model against labels edited since it was trained."""
        if list(category_ids) == self.category_ids:
            return self
        cats = [{"id": int(c), "name": str(n)} for c, n in zip(category_ids, names, strict=True)]
        return Snapshot({**self.data, "categories": cats}, self.path)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def has_masks(self) -> bool:
        """Whether any annotation has a polygon or mask (not just a box)."""
        return any(a.get("segmentation") for anns in self.anns_by_image.values() for a in anns)

    def split_ids(self, split: str) -> list[int]:
        """Image ids whose studio_split is `split` (images without one count as train)."""
        return [i for i, im in self.images.items() if im.get("studio_split", Split.TRAIN) == split]

    def train_val_ids(self, val_fraction: float, seed: int) -> tuple[list[int], list[int], str]:
        """(train ids, val ids, a note or ""). With an empty val split, a seeded random
        `val_fraction` of the train images is held out so that every run is evaluated;
        with fewer than 5 train images nothing is held out (and nothing evaluated)."""
        train, val = self.split_ids(Split.TRAIN), self.split_ids(Split.VAL)
        if val or val_fraction <= 0 or len(train) < 5:
            note = "" if val else "no images in the val split: epochs are not evaluated"
            return train, val, note
        n_val = max(1, round(len(train) * val_fraction))
        rng = random.Random(seed)
        held = set(rng.sample(train, n_val))
        note = (
            f"no images in the val split: {n_val} of {len(train)} train images held out "
            "for validation"
        )
        return [i for i in train if i not in held], [i for i in train if i in held], note

    def samples(
        self, image_ids: Sequence[int], task: str, report: DataReport, training: bool = True
    ) -> list[Sample]:
        """Prepare `image_ids` for `task`, dropping and counting what cannot be used."""
        out = []
        masks = task != Task.DETECTION
        for iid in image_ids:
            im = self.images[iid]
            path = self.image_path(im)
            anns = self.anns_by_image.get(iid, [])
            status = im.get("studio_status", _DEFAULT_STATUS)
            if not anns and training and status not in LABELLED_STATUSES:
                report.add("unlabelled_images")
                continue
            if not Path(path).is_file():
                report.add("missing_files")
                if len(report.missing) < 3:
                    report.missing.append(path)
                continue
            w, h = int(im["width"]), int(im["height"])
            boxes, labels, segs = [], [], []
            for a in anns:
                shape = self._usable_shape(a, masks, w, h, report)
                if shape is not None:
                    boxes.append(shape[0])
                    labels.append(shape[1])
                    segs.append(shape[2])
            if not boxes:
                report.negatives += 1
            out.append(Sample(iid, path, w, h, boxes, labels, segs))
        return out

    def _usable_shape(
        self, a: dict[str, Any], masks: bool, w: int, h: int, report: DataReport
    ) -> tuple[list[float], int, Any] | None:
        """(xyxy box clipped to the w x h image, label, segmentation or None) of one
        annotation, or None (counted in `report`) when it cannot be trained on."""
        label = self.label_of.get(int(a["category_id"]))
        if label is None:
            report.add("unknown_category")
            return None
        if a.get("iscrowd"):
            report.add("crowd")
            return None
        seg = a.get("segmentation") or None
        if masks and isinstance(seg, list):
            seg = clean_polygons(seg)
            if not seg:
                report.add("degenerate_polygons")
                return None
        elif masks and isinstance(seg, dict):
            size = seg.get("size")
            if not size or [int(size[0]), int(size[1])] != [h, w]:
                report.add("bad_masks")
                return None
        elif masks:
            report.add("box_as_mask")
        x, y, bw, bh = (float(v) for v in a["bbox"])
        x0, y0 = min(max(x, 0.0), w), min(max(y, 0.0), h)
        x1, y1 = min(max(x + bw, 0.0), w), min(max(y + bh, 0.0), h)
        if x1 - x0 < MIN_BOX_SIZE or y1 - y0 < MIN_BOX_SIZE:
            report.add("tiny_boxes")
            return None
        return [x0, y0, x1, y1], label, seg if masks else None

    def coco_gt(self, image_ids: Sequence[int], iou_type: str = "bbox") -> dict[str, Any]:
        """A COCO ground-truth dict of `image_ids` for COCOeval (see evaluation/coco.py).

        For "segm", box-only annotations get their box as polygon and unusable polygons
        their box, so pycocotools can rasterise every ground truth."""
        ids = set(image_ids)
        images = [im for i, im in self.images.items() if i in ids]
        anns = []
        for i in image_ids:
            for a in self.anns_by_image.get(i, []):
                a = dict(a)
                a.setdefault("iscrowd", 0)
                x, y, w, h = (float(v) for v in a["bbox"])
                a.setdefault("area", w * h)
                if iou_type == "segm":
                    seg = a.get("segmentation")
                    if isinstance(seg, list):
                        seg = clean_polygons(seg)
                    if not seg:
                        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
                    a["segmentation"] = seg
                anns.append(a)
        cats = [
            {"id": c, "name": n} for c, n in zip(self.category_ids, self.class_names, strict=True)
        ]
        return {"images": images, "annotations": anns, "categories": cats}


def clean_polygons(parts: list) -> list[list[float]]:
    """Polygon parts (flat x, y lists in pixels) with at least 3 points and some area;
    [] if none is left."""
    out = []
    for p in parts:
        if not isinstance(p, list) or len(p) < 6 or len(p) % 2:
            continue
        # A part with (numerically) no area rasterises to nothing.
        if polygon_area(p) > 5e-7:
            out.append([float(v) for v in p])
    return out

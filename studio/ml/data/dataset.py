"""Training data from a run's frozen COCO snapshot (dataset.json), with transforms v2.

A run never reads the project database for its data: at run creation the project writes
``dataset.json`` (COCO, database ids, absolute file names, displayed-pixel coordinates,
``studio_split`` per image) into the run folder, and everything here reads that file, so
labelling can go on while a run trains and a run can be repeated.

Labels: the snapshot's categories, in file order (the project's class order), become
model labels 1..K; 0 is the background. Annotations that cannot be trained on are
dropped and *counted* in a `DataReport` (boxes under a pixel, polygons without area,
masks of the wrong size, crowd regions), never raised.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler
from torchvision import tv_tensors
from torchvision.transforms import v2

from studio.core.errors import StudioError
from studio.core.imageinfo import decode_image

SNAPSHOT_NAME = "dataset.json"
TASKS = ("detection", "instance_segmentation", "semantic_segmentation")
# torchvision's detection models cap the longer side at 1333 for a shorter side of 800.
MAX_SIZE_RATIO = 1333 / 800
MIN_BOX_SIZE = 1.0  # pixels; smaller boxes carry no signal and upset box regression
# Image statuses whose images count as labelled even without any shape: negatives.
LABELLED_STATUSES = ("done",)

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


@dataclass(slots=True)
class DataReport:
    """Counts of what the dataset left out or changed, for the Started message and run."""

    counts: Counter = field(default_factory=Counter)
    negatives: int = 0  # images with no shapes used as negative samples

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
        self.anns_by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for a in data.get("annotations") or []:
            self.anns_by_image[int(a["image_id"])].append(a)

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
        return [i for i, im in self.images.items() if im.get("studio_split", "train") == split]

    def train_val_ids(self, val_fraction: float, seed: int) -> tuple[list[int], list[int], str]:
        """(train ids, val ids, a note or ""). With an empty val split, a seeded random
        `val_fraction` of the train images is held out so that every run is evaluated;
        with fewer than 5 train images nothing is held out (and nothing evaluated)."""
        train, val = self.split_ids("train"), self.split_ids("val")
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
        masks = task != "detection"
        for iid in image_ids:
            im = self.images[iid]
            path = str(im["file_name"])
            anns = self.anns_by_image.get(iid, [])
            if not anns and training and im.get("studio_status", "done") not in LABELLED_STATUSES:
                report.add("unlabelled_images")
                continue
            if not Path(path).is_file():
                report.add("missing_files")
                continue
            w, h = int(im["width"]), int(im["height"])
            boxes, labels, segs = [], [], []
            for a in anns:
                label = self.label_of.get(int(a["category_id"]))
                if label is None:
                    report.add("unknown_category")
                    continue
                if a.get("iscrowd"):
                    report.add("crowd")
                    continue
                seg = a.get("segmentation") or None
                if masks and isinstance(seg, list):
                    seg = _clean_polygons(seg)
                    if not seg:
                        report.add("degenerate_polygons")
                        continue
                elif masks and isinstance(seg, dict):
                    size = seg.get("size")
                    if not size or [int(size[0]), int(size[1])] != [h, w]:
                        report.add("bad_masks")
                        continue
                elif masks:
                    report.add("box_as_mask")
                x, y, bw, bh = (float(v) for v in a["bbox"])
                x0, y0 = min(max(x, 0.0), w), min(max(y, 0.0), h)
                x1, y1 = min(max(x + bw, 0.0), w), min(max(y + bh, 0.0), h)
                if x1 - x0 < MIN_BOX_SIZE or y1 - y0 < MIN_BOX_SIZE:
                    report.add("tiny_boxes")
                    continue
                boxes.append([x0, y0, x1, y1])
                labels.append(label)
                segs.append(seg if masks else None)
            if not boxes:
                report.negatives += 1
            out.append(Sample(iid, path, w, h, boxes, labels, segs))
        return out

    def coco_gt(self, image_ids: Sequence[int], iou_type: str = "bbox") -> dict[str, Any]:
        """A COCO ground-truth dict of `image_ids` for COCOeval (see evaluate.py).

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
                        seg = _clean_polygons(seg)
                    if not seg:
                        seg = [[x, y, x + w, y, x + w, y + h, x, y + h]]
                    a["segmentation"] = seg
                anns.append(a)
        cats = [
            {"id": c, "name": n} for c, n in zip(self.category_ids, self.class_names, strict=True)
        ]
        return {"images": images, "annotations": anns, "categories": cats}


def _clean_polygons(parts: list) -> list[list[float]]:
    """Polygon parts with at least 3 points and some area; [] if none is left."""
    out = []
    for p in parts:
        if not isinstance(p, list) or len(p) < 6 or len(p) % 2:
            continue
        xs, ys = p[0::2], p[1::2]
        # Shoelace area; a part with (numerically) no area rasterises to nothing.
        area2 = sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs)))
        if abs(area2) > 1e-6:
            out.append([float(v) for v in p])
    return out


# --- dataset ---------------------------------------------------------------------------


Transform = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]]


class SnapshotDataset(Dataset):
    """Images and targets in the torchvision detection format.

    Item: (image float32 [3, H, W] in [0, 1], target) where target has "boxes" float32
    [N, 4] xyxy, "labels" int64 [N] (1..K), "masks" uint8 [N, H, W] for instance
    segmentation, "sem_mask" int64 [H, W] (0 background) for semantic segmentation, and
    "image_id" (database id) and "orig_size" (height, width of the full image) for
    mapping predictions back. H, W are the image's size after the transforms.
    """

    def __init__(
        self,
        samples: list[Sample],
        task: str,
        transforms: Transform | None = None,
        max_side: int | None = None,
    ):
        if task not in TASKS:
            raise StudioError(f"unknown task {task!r}")
        self.samples = samples
        self.task = task
        self.transforms = transforms
        # Decoding huge photos at a reduced size saves most of the loading time; the
        # geometry is scaled to match. None: decode at full size.
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.samples)

    def aspect_ratios(self) -> list[float]:
        """width / height of every image, from the snapshot (nothing is decoded)."""
        return [s.width / s.height for s in self.samples]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        s = self.samples[index]
        arr = decode_image(Path(s.path), max_side=self.max_side)
        h, w = arr.shape[:2]
        sx, sy = w / s.width, h / s.height
        image = tv_tensors.Image(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
        boxes = torch.tensor(s.boxes, dtype=torch.float32).reshape(-1, 4)
        boxes *= torch.tensor([sx, sy, sx, sy])
        labels = torch.tensor(s.labels, dtype=torch.int64)
        target: dict[str, Any] = {"image_id": s.image_id, "orig_size": (s.height, s.width)}
        if self.task == "semantic_segmentation":
            target["sem_mask"] = tv_tensors.Mask(_semantic_map(s, h, w, sx, sy))
        else:
            target["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))
            target["labels"] = labels
            if self.task == "instance_segmentation":
                target["masks"] = tv_tensors.Mask(_instance_masks(s, h, w, sx, sy))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return _plain(image), {k: _plain(v) for k, v in target.items()}


def _plain(v: Any) -> Any:
    # tv_tensors subclasses cost a dispatch per op in the model and pickle bigger
    # between DataLoader workers; the model wants plain tensors.
    return v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v


def _seg_mask(seg: Any, box: list[float], h: int, w: int, sx: float, sy: float) -> np.ndarray:
    """uint8 [h, w] mask of one shape at the decoded size (h, w)."""
    if isinstance(seg, dict):
        rle = seg
        if isinstance(rle.get("counts"), list):
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        m = mask_utils.decode(rle)
        if m.shape != (h, w):
            t = torch.from_numpy(m)[None, None].float()
            m = F.interpolate(t, size=(h, w), mode="nearest")[0, 0].to(torch.uint8).numpy()
        return m
    if isinstance(seg, list) and seg:
        parts = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)] for p in seg]
    else:  # a plain box: its rectangle
        x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        parts = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(parts, h, w)))


def _instance_masks(s: Sample, h: int, w: int, sx: float, sy: float) -> torch.Tensor:
    if not s.boxes:
        return torch.zeros((0, h, w), dtype=torch.uint8)
    ms = [_seg_mask(seg, box, h, w, sx, sy) for seg, box in zip(s.segs, s.boxes, strict=True)]
    return torch.from_numpy(np.stack(ms))


def _semantic_map(s: Sample, h: int, w: int, sx: float, sy: float) -> torch.Tensor:
    """int64 [h, w] class map; larger shapes are painted first so small ones stay visible."""
    out = np.zeros((h, w), dtype=np.int64)
    order = sorted(
        range(len(s.boxes)),
        key=lambda i: -(s.boxes[i][2] - s.boxes[i][0]) * (s.boxes[i][3] - s.boxes[i][1]),
    )
    for i in order:
        m = _seg_mask(s.segs[i], s.boxes[i], h, w, sx, sy)
        out[m.astype(bool)] = s.labels[i]
    return torch.from_numpy(out)


def collate(batch: list[tuple[Any, Any]]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Lists of images and targets: detection models take images of different sizes."""
    return tuple(zip(*batch, strict=True))  # type: ignore[return-value]


# --- transforms ------------------------------------------------------------------------


def load_max_side(image_size: int | None, scale_hi: float = 1.0) -> int | None:
    """Longest side worth decoding for `image_size`: the largest the model will resize to."""
    if image_size is None:
        return None
    return math.ceil(image_size * MAX_SIZE_RATIO * max(1.0, scale_hi))


def build_transforms(
    task: str,
    train: bool,
    *,
    image_size: int | None = None,
    scale_range: tuple[float, float] = (0.75, 1.25),
    hflip: float = 0.5,
    color_jitter: float = 0.2,
) -> v2.Compose:
    """transforms v2 pipeline on (uint8 Image, target with tv_tensors) -> float [0, 1].

    Training: random shorter side in `image_size * scale_range` (RandomShortestSize),
    horizontal flip, colour jitter, then boxes clamped to the image and those left under
    1 px removed with their labels and masks (SanitizeBoundingBoxes). Evaluation only
    converts. torchvision's detectors resize every input to their own min_size again,
    which undoes most of the scale jitter; for them the resize here mainly keeps big
    photos cheap to move, and multi-scale training is their min_size tuple (a model
    option). Models that take the input as it comes see the jitter in full.
    """
    ops: list[Any] = []
    if train:
        if image_size is not None:
            lo, hi = scale_range
            sizes = sorted({max(16, round(image_size * f)) for f in np.linspace(lo, hi, 5)})
            ops.append(
                v2.RandomShortestSize(sizes, max_size=round(image_size * hi * MAX_SIZE_RATIO))
            )
        if hflip > 0:
            ops.append(v2.RandomHorizontalFlip(hflip))
        if color_jitter > 0:
            cj = color_jitter
            ops.append(
                v2.ColorJitter(brightness=cj, contrast=cj, saturation=cj, hue=min(cj, 0.2) / 4)
            )
        if task != "semantic_segmentation":
            # Semantic maps are Masks too, which SanitizeBoundingBoxes would index by box.
            ops += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIZE)]
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)


# --- sampling --------------------------------------------------------------------------


def aspect_ratio_groups(aspect_ratios: Sequence[float], k: int = 3) -> list[int]:
    """Group id per image: bins of width/height at 2**linspace(-1, 1, 2k+1), as in
    torchvision's references/detection/group_by_aspect_ratio.py."""
    bins = (2 ** np.linspace(-1, 1, 2 * k + 1)).tolist()
    return [bisect.bisect_right(bins, r) for r in aspect_ratios]


class GroupedBatchSampler(BatchSampler):
    """Batches whose images share an aspect-ratio group, so padding wastes little.

    Same idea as torchvision's references/detection GroupedBatchSampler, but every
    index of the base sampler is used once per epoch: after the full per-group batches,
    the leftovers are batched together. An epoch therefore has exactly
    ceil(len(sampler) / batch_size) batches, the same on every DDP rank, and the order
    depends only on the base sampler's epoch, so `skip(n)` can resume mid-epoch.
    """

    def __init__(self, sampler: Sampler[int], group_ids: Sequence[int], batch_size: int):
        self.sampler = sampler
        self.group_ids = list(group_ids)
        self.batch_size = batch_size
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def skip(self, n: int) -> None:
        """Leave out the first `n` batches of the next pass (they were trained on)."""
        self._skip = max(0, n)

    def full_len(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return max(0, self.full_len() - self._skip)

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        for i, batch in enumerate(self._batches()):
            if i >= skip:
                yield batch

    def _batches(self) -> Iterator[list[int]]:
        buffers: dict[int, list[int]] = defaultdict(list)
        for idx in self.sampler:
            g = self.group_ids[idx]
            buffers[g].append(idx)
            if len(buffers[g]) == self.batch_size:
                yield buffers.pop(g)
        rest = [i for g in sorted(buffers) for i in buffers[g]]
        for k in range(0, len(rest), self.batch_size):
            yield rest[k : k + self.batch_size]


def build_train_loader(
    dataset: SnapshotDataset,
    *,
    batch_size: int,
    workers: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    grouping: bool = True,
) -> tuple[DataLoader, GroupedBatchSampler]:
    """Shuffled, aspect-grouped loader. DistributedSampler shards the images across DDP
    ranks (with one rank it is just a seeded shuffle that `set_epoch` re-seeds)."""
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False
    )
    groups = aspect_ratio_groups(dataset.aspect_ratios()) if grouping else [0] * len(dataset)
    batch_sampler = GroupedBatchSampler(sampler, groups, batch_size)
    loader = DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )
    return loader, batch_sampler


def build_eval_loader(
    dataset: SnapshotDataset, *, batch_size: int, workers: int, pin_memory: bool = False
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
    )

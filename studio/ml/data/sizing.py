"""The model's input size chosen from the objects' sizes in pixels.

A detector resizes every image so that its shorter side is the input size (models that
fit images in a square, such as the composable detectors, use the longer side: the
callers pass that side instead). Shrinking
the images makes every step cheaper, but an object whose shorter side falls under about
a stride-8 cell (8 px) at the input is hard to find at all. The input size is therefore
the smallest that keeps the small objects (the 10th percentile of the objects' shorter
sides) at MIN_OBJECT_PX pixels or more, never upsampling the images beyond their own
size, within the device's range, on a multiple of 32 (the coarsest stride).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_OBJECT_PX = 8.0  # shorter side of a small object at the input, in input pixels
# Shorter input side in pixels, (smallest, largest) per device type: a CPU step at 800 px
# takes many seconds; a GPU affords torchvision's usual 800.
SIZE_RANGE = {"cpu": (256, 512), "mps": (256, 640), "cuda": (320, 800)}
SMALL_PERCENTILE = 0.1


@dataclass(frozen=True, slots=True)
class SizeChoice:
    """An input size (shorter side, pixels) and what it does to the objects."""

    size: int
    image_side: float  # median shorter side of the images, pixels
    small_object: float  # 10th percentile of the objects' shorter sides, image pixels
    median_object: float  # median of the objects' shorter sides, image pixels

    @property
    def scale(self) -> float:
        """Input pixels per image pixel."""
        return self.size / self.image_side if self.image_side else 1.0

    def sentence(self) -> str:
        """One clause for the recipe's explanation."""
        if not self.image_side:
            return f"{self.size} px input"
        return (
            f"{self.size} px input (images {self.image_side:.0f} px, small objects "
            f"{self.small_object:.0f} px -> {self.small_object * self.scale:.0f} px)"
        )


def _quantile(values: Sequence[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def choose_input_size(
    objects: Iterable[tuple[float, float]], device: str, default: int | None = None
) -> SizeChoice:
    """The input size for `objects`, pairs of (object's shorter side, its image's
    shorter side) in image pixels, on `device` ("cpu", "cuda", "mps").

    Without objects: `default` (or the device's largest size) clamped to its range."""
    lo, hi = SIZE_RANGE.get(device.split(":")[0], SIZE_RANGE["cpu"])
    pairs = [(float(o), float(s)) for o, s in objects if o > 0 and s > 0]
    if not pairs:
        size = min(hi, max(lo, default or hi))
        return SizeChoice(size, 0.0, 0.0, 0.0)
    image_side = _quantile([s for _, s in pairs], 0.5)
    small = _quantile([o for o, _ in pairs], SMALL_PERCENTILE)
    median = _quantile([o for o, _ in pairs], 0.5)
    scale = min(1.0, MIN_OBJECT_PX / small) if small else 1.0
    size = 32 * math.ceil(image_side * scale / 32)
    # Never above the images' own size (rounded down to the stride), never out of range.
    size = min(size, 32 * math.floor(image_side / 32))
    size = int(min(hi, max(lo, size)))
    return SizeChoice(size, image_side, small, median)


def object_sides(
    images: Iterable[tuple[int, float, float]],
    boxes: Iterable[tuple[int, float, float]],
    long_side: bool = False,
) -> list[tuple[float, float]]:
    """(object's shorter side, its image's shorter side) pairs from `images` as (id,
    width, height) and `boxes` as (image id, width, height), all in image pixels.
    `long_side`: the image's longer side instead (models that fit images in a square)."""
    pick = max if long_side else min
    side = {int(i): pick(w, h) for i, w, h in images}
    return [(min(w, h), side[int(i)]) for i, w, h in boxes if int(i) in side]


def coco_object_sides(data: dict, long_side: bool = False) -> list[tuple[float, float]]:
    """`object_sides` of a COCO dict (a run's dataset.json): bbox is [x, y, w, h]."""
    images = [(im["id"], im["width"], im["height"]) for im in data.get("images") or []]
    boxes = [(a["image_id"], a["bbox"][2], a["bbox"][3]) for a in data.get("annotations") or []]
    return object_sides(images, boxes, long_side)


def fits_square(resize: dict[str, int]) -> bool:
    """Whether a model's resize (a spec's) fits images in a square of the input size."""
    return "min_size" in resize and resize.get("min_size") == resize.get("max_size")


def scaled_side(side: int, scale: float, stride: int = 32) -> int:
    """`side` (pixels) x `scale` to the nearest multiple of `stride`, at least one stride
    and at most `side`; `side` itself (as given) at a scale of 1 or more."""
    if scale >= 1.0:
        return int(side)
    return int(min(side, max(stride, stride * round(side * scale / stride))))

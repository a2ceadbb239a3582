"""Image and target transforms (torchvision transforms v2) for training and evaluation.

Geometry is in pixels of the decoded image; boxes are xyxy `tv_tensors.BoundingBoxes`,
so every random resize and flip moves the boxes and masks with the image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from studio.ml.data.snapshot import MIN_BOX_SIZE
from studio.ml.tasks import Task

# torchvision's detection models cap the longer side at 1333 for a shorter side of 800.
MAX_SIZE_RATIO = 1333 / 800


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
        if task != Task.SEMANTIC_SEGMENTATION:
            # Semantic maps are Masks too, which SanitizeBoundingBoxes would index by box.
            ops += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIZE)]
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)

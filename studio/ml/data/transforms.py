"""Image and target transforms (torchvision transforms v2) for training and evaluation.

Geometry is in pixels of the decoded image; boxes are xyxy `tv_tensors.BoundingBoxes`,
so every random resize and flip moves the boxes and masks with the image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
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
    hue: bool = True,
) -> v2.Compose:
    """transforms v2 pipeline on (uint8 Image, target with tv_tensors) -> float [0, 1].

    Training: random shorter side in `image_size * scale_range` (RandomShortestSize),
    horizontal flip, colour jitter (its hue step only with `hue`: on a CPU it costs
    more than the rest of the pipeline), then boxes clamped to the image and those left under
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
        if color_jitter > 0 and hue:
            cj = color_jitter
            ops.append(
                v2.ColorJitter(brightness=cj, contrast=cj, saturation=cj, hue=min(cj, 0.2) / 4)
            )
        if task != Task.SEMANTIC_SEGMENTATION:
            # Semantic maps are Masks too, which SanitizeBoundingBoxes would index by box.
            ops += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIZE)]
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if train and color_jitter > 0 and not hue:
        ops.append(FastColorJitter(color_jitter))
    return v2.Compose(ops)


class FastColorJitter(v2.Transform):
    """Brightness, contrast and saturation jitter in one pass over a float [0, 1] image.

    torchvision's ColorJitter on a uint8 image converts to float and back for each of
    its steps; on a CPU that was half the data pipeline's time (and its hue step three
    times more). Same factors as ColorJitter: each uniform in [1 - s, 1 + s], applied
    in the order brightness, contrast, saturation. Boxes and masks pass unchanged."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, strength: float):
        super().__init__()
        self.strength = float(strength)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        s = self.strength
        b, c, sat = (float(torch.empty(1).uniform_(1 - s, 1 + s)) for _ in range(3))
        return {"brightness": b, "contrast": c, "saturation": sat}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        x = inpt.as_subclass(torch.Tensor)
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1)
        x = x * params["brightness"]
        gray = (x * weights).sum(0, keepdim=True)
        mean = gray.mean()
        c = params["contrast"]
        # Contrast moves every pixel toward the mean; saturation toward its own gray.
        x = (x - mean) * c + mean
        gray = (gray - mean) * c + mean
        x = (x - gray) * params["saturation"] + gray
        return tv_tensors.wrap(x.clamp_(0, 1), like=inpt)

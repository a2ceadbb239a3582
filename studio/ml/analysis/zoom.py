"""The zoom-scale table: how many cells of each feature grid an object covers.

A detector sees the image through feature grids ("levels"): P3 has one cell per 8x8 input
pixels (stride 8), P4 per 16x16, P5 per 32x32. An object that covers less than one cell of
the level it is assigned to is hard to find. This module answers, for one box size and a
model input, how many cells the box covers on every level as the scene is zoomed out.

Conventions, used everywhere in `studio.ml.analysis`:

- Sizes are in pixels *at the model input*, after the model's own resize.
- An object's size is the square root of its box area (sqrt(w * h)): for a square box its
  side. It is the size that FPN detectors assign levels by (the RoI level mapper of Lin et
  al. 2017) and that COCO's small/medium/large buckets use. Cells = size / stride, so a
  64-px box on P5/32 covers 2 cells (its side spans two cells).
- Zoom z means the scene is seen z times smaller, as from a camera further away: the image
  content covers floor(side * z) pixels of the input (an image is resized to whole pixels)
  and every box shrinks by that same ratio. The model does not resize it back up.

Torch-free: the table needs only strides, so `studio analyze zoom --box` stays light.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_SCALES = (1.0, 0.8, 0.567, 0.4, 0.28)
DEFAULT_IMAGE_SIZE = 640  # input side when neither a model nor the user gives one
# Guards floor() against a product such as 640 * 0.7 landing a hair under 448.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Level:
    """One feature grid of a model.

    `stride`: input pixels per grid cell along each axis. `receptive_field`: the side, in
    input pixels, of the square region that can influence one cell (see
    `backbone_receptive_fields`, or measured by `studio.ml.analysis.receptive_field`), or
    None where it is not known; `effective_field`: the side of the centred square holding
    95% of that influence (measured), or None; `field_clipped`: the measured field touched
    the measurement's input border, so `receptive_field` is a lower bound.
    """

    name: str
    stride: int
    receptive_field: int | None = None
    effective_field: int | None = None
    field_clipped: bool = False

    @property
    def label(self) -> str:
        """ "P3/8": the name and the stride, as the tables print it."""
        return f"{self.name}/{self.stride}"


@dataclass(frozen=True, slots=True)
class ZoomRow:
    """One zoom scale of the table.

    `image`: the input side in pixels at this zoom (whole pixels); `box`: the box size in
    pixels at that side; `cells`: level name -> cells covered (box / stride); `below_one`:
    the names of the levels where the box covers less than one cell.
    """

    zoom: float
    image: int
    box: float
    cells: dict[str, float]
    below_one: tuple[str, ...] = field(default=())


def zoomed_side(side: float, zoom: float) -> int:
    """The side in whole pixels of an image of `side` pixels resized by `zoom`."""
    return int(math.floor(side * zoom + _EPS))


def zoom_table(
    box_px: float,
    image_size: int,
    levels: Sequence[Level],
    scales: Iterable[float] = DEFAULT_SCALES,
) -> list[ZoomRow]:
    """The cells a box covers on each level at each zoom scale (IDEAS.md's table).

    `box_px`: the box size (sqrt of its area; the side of a square box) in pixels at the
    model input of side `image_size` pixels, at zoom 1. A 64-px box at 640 covers 8, 4 and 2
    cells on P3/8, P4/16 and P5/32; at zoom 0.4 the input is 256 px, the box 25.6 px and it
    covers 3.2, 1.6 and 0.8 cells (below one cell on P5).
    """
    rows = []
    for zoom in scales:
        image = zoomed_side(image_size, zoom)
        box = box_px * image / image_size
        cells = {lv.name: box / lv.stride for lv in levels}
        below = tuple(name for name, c in cells.items() if c < 1.0)
        rows.append(ZoomRow(zoom=zoom, image=image, box=box, cells=cells, below_one=below))
    return rows


def parse_scales(text: str) -> tuple[float, ...]:
    """Zoom scales from "1,0.8,0.5": each a number in (0, 1]. Raises ValueError, naming the
    bad value."""
    scales = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"zoom scale {part.strip()!r} is not a number") from None
        if not 0.0 < value <= 1.0:
            raise ValueError(f"zoom scale {part.strip()} is outside (0, 1]")
        scales.append(value)
    return tuple(scales)


# --- how numbers are printed ----------------------------------------------------------------


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_pixels(value: float) -> str:
    """A size in pixels to one decimal, without a trailing ".0": 64, 51.2, 36.2."""
    return _strip(f"{value:.1f}")


def format_cells(value: float) -> str:
    """Cells to one decimal (8, 6.4, 1.1); below one cell two significant digits (0.56, 0.8),
    since there the difference between 0.5 and 0.56 cells matters."""
    if value >= 1.0:
        return _strip(f"{value:.1f}")
    return _strip(f"{value:.2g}")


def format_table(rows: Sequence[ZoomRow], levels: Sequence[Level]) -> list[str]:
    """The table as Markdown lines, as IDEAS.md prints it, with "(below one cell)" flags."""
    head = ["zoom", "image", "box (px)"]
    head += [f"cells on {lv.label}" if i == 0 else f"on {lv.label}" for i, lv in enumerate(levels)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = []
        for lv in levels:
            text = format_cells(row.cells[lv.name])
            cells.append(text + " (below one cell)" if lv.name in row.below_one else text)
        values = [f"{row.zoom:.3f}", str(row.image), format_pixels(row.box), *cells]
        lines.append("| " + " | ".join(values) + " |")
    return lines


# --- receptive fields -----------------------------------------------------------------------

# (blocks per stage, 3x3 convs per block) of torchvision's ResNets. BasicBlock has two 3x3
# convs, Bottleneck one (its 1x1 convs widen nothing); torchvision puts a stage's stride 2 on
# its first 3x3 conv, so the recurrence below applies the stride there.
_RESNET_STAGES = {
    "resnet18": ((2, 2, 2, 2), 2),
    "resnet34": ((3, 4, 6, 3), 2),
    "resnet50": ((3, 4, 6, 3), 1),
}


def backbone_receptive_fields(backbone: str) -> dict[int, int]:
    """Stride -> theoretical receptive field (pixels) of the backbone's last feature map at
    that stride, for the backbones tabulated here (the ResNets); {} for the others.

    Computed with the usual recurrence over the layers (rf += (kernel - 1) * jump;
    jump *= stride), starting from the 7x7/2 stem conv and the 3x3/2 max-pool: resnet18
    gives 43, 99, 211, 435 px at strides 4, 8, 16, 32. It is every input pixel that can
    influence a cell; the effective field, where most of the influence lies, is much
    smaller (Luo et al. 2016), and an FPN or PAN neck widens a level's field further with
    its top-down path. Checked against input gradients in tests/ml/test_zoom.py.
    """
    if backbone not in _RESNET_STAGES:
        return {}
    blocks, convs_per_block = _RESNET_STAGES[backbone]
    rf, jump = 7, 2  # the stem conv
    rf, jump = rf + 2 * jump, jump * 2  # the max-pool
    fields = {}
    for stage, n in enumerate(blocks):
        for i in range(n * convs_per_block):
            rf += 2 * jump
            if stage > 0 and i == 0:
                jump *= 2
        fields[jump] = rf
    return fields


def with_receptive_fields(
    levels: Sequence[Level],
    backbone: str,
    measured: Mapping[int, tuple[int, bool, int]] | None = None,
) -> list[Level]:
    """`levels` with the receptive field of `backbone` at each stride, where it is known.

    `measured`: stride -> (theoretical, clipped, effective) field in pixels measured
    (`studio.ml.analysis.receptive_field`). The ResNet recurrence, exact, wins for the
    theoretical field; the measurement fills the rest and gives the effective field."""
    fields = backbone_receptive_fields(backbone)
    measured = measured or {}
    out = []
    for lv in levels:
        theory, clipped, effective = measured.get(lv.stride, (None, False, None))
        exact = lv.stride in fields
        rf = fields[lv.stride] if exact else theory
        out.append(Level(lv.name, lv.stride, rf, effective, clipped and not exact))
    return out

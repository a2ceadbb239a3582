"""The zoom-scale analysis of a project's labelled objects.

Each box is taken to the model input (the model's own resize of its image), then zoomed out
(`studio.ml.analysis.zoom` states the size and zoom conventions); per level the analysis
counts the objects that cover less than one and less than two cells, and histograms the
cells covered. Torch-free: it needs only the model's resize and strides.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from studio.core.kinds import awaiting_review
from studio.core.project import Project
from studio.ml.analysis.zoom import Level, zoomed_side

# Edges of the histogram of cells per object: octaves, with the first cell split in two
# because the region below one cell is where detection breaks.
CELL_EDGES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CELL_BINS = ("<0.5", "0.5-1", "1-2", "2-4", "4-8", "8-16", ">=16")


@dataclass(frozen=True, slots=True)
class InputResize:
    """How a model resizes an image before its backbone.

    Either `min_size`/`max_size` (torchvision's detectors and the composable detector: the
    shorter side to min_size unless the longer side would then exceed max_size, aspect kept)
    or `fixed` (both sides to `fixed` pixels, aspect not kept: SSD, the segmenters).
    """

    min_size: int = 0
    max_size: int = 0
    fixed: int = 0

    @classmethod
    def from_dict(cls, resize: Mapping[str, int]) -> InputResize:
        """From a registry resize dict: {"min_size", "max_size"} or {"fixed"}."""
        if "fixed" in resize:
            return cls(fixed=int(resize["fixed"]))
        return cls(min_size=int(resize["min_size"]), max_size=int(resize["max_size"]))

    @property
    def square_side(self) -> int:
        """The input side, in pixels, of a square image."""
        return self.fixed or min(self.min_size, self.max_size)

    def scales(self, width: float, height: float) -> tuple[float, float]:
        """(x, y) factors from displayed-image pixels to input pixels for an image of
        `width` x `height` displayed pixels."""
        if self.fixed:
            return self.fixed / width, self.fixed / height
        scale = min(self.min_size / min(width, height), self.max_size / max(width, height))
        return scale, scale


@dataclass(frozen=True, slots=True)
class ObjectSize:
    """One labelled object at the model input, at zoom 1.

    `size`: sqrt of the box area in input pixels; `image_side`: the longer side of its image
    at the input, in pixels (zooming shrinks the image to whole pixels of that side).
    """

    class_name: str
    size: float
    image_side: float
    image_id: int = 0  # where the object is, for a window to list it
    annotation_id: int = 0

    def at_zoom(self, zoom: float) -> float:
        """The size in input pixels once the scene is zoomed out by `zoom`."""
        if self.image_side <= 0:
            return 0.0
        return self.size * zoomed_side(self.image_side, zoom) / self.image_side


def object_sizes(project: Project, resize: InputResize) -> list[ObjectSize]:
    """Every labelled object of `project` (boxes, and the tight boxes of polygons and masks;
    crowd regions left out, since they are not single objects, and shapes pre-labelled
    on images waiting for review) at the model input."""
    images = {im.id: im for im in project.images()}
    classes = {c.id: c.name for c in project.classes()}
    sizes = []
    for ann in project.annotations():
        image = images.get(ann.image_id)
        if ann.iscrowd or image is None or image.width <= 0 or image.height <= 0:
            continue
        if awaiting_review(ann.source, image.status):  # the model's output, not a label
            continue
        sx, sy = resize.scales(image.width, image.height)
        _, _, w, h = ann.bbox
        size = math.sqrt(max(w, 0.0) * sx * max(h, 0.0) * sy)
        side = max(image.width * sx, image.height * sy)
        name = classes.get(ann.class_id, str(ann.class_id))
        sizes.append(ObjectSize(name, size, side, ann.image_id, ann.id))
    return sizes


@dataclass(slots=True)
class LevelShare:
    """Objects on one level: the share (0..1) below one and below two cells, and the count
    in each bin of CELL_BINS."""

    below_1: float = 0.0
    below_2: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * len(CELL_BINS))


@dataclass(slots=True)
class ObjectAnalysis:
    """The objects of a project against the levels of a model.

    `levels`: level name -> LevelShare at zoom 1; `by_zoom`: (zoom, level name -> LevelShare)
    for each zoom scale asked; `classes`: class name -> (object count, level name ->
    LevelShare at zoom 1); `sizes`: every object's size in input pixels at zoom 1, sorted.
    """

    count: int
    levels: dict[str, LevelShare]
    by_zoom: list[tuple[float, dict[str, LevelShare]]]
    classes: dict[str, tuple[int, dict[str, LevelShare]]]
    sizes: list[float]

    def percentile(self, q: float) -> float:
        """The size (input pixels, zoom 1) that a share `q` (0..1) of the objects are below."""
        if not self.sizes:
            return 0.0
        return self.sizes[min(len(self.sizes) - 1, int(q * len(self.sizes)))]


def level_shares(sizes: Sequence[float], levels: Sequence[Level]) -> dict[str, LevelShare]:
    """Level name -> LevelShare for objects of `sizes` (input pixels)."""
    shares = {}
    for lv in levels:
        share = LevelShare()
        for size in sizes:
            share.histogram[bisect.bisect_right(CELL_EDGES, size / lv.stride)] += 1
        n = len(sizes) or 1
        share.below_1 = sum(share.histogram[:2]) / n
        share.below_2 = sum(share.histogram[:3]) / n
        shares[lv.name] = share
    return shares


def analyse_objects(
    objects: Sequence[ObjectSize], levels: Sequence[Level], scales: Iterable[float]
) -> ObjectAnalysis:
    """Shares below one and two cells and histograms of cells, per level, at zoom 1 and at
    each of `scales`, overall and per class (at zoom 1)."""
    at_one = [o.size for o in objects]
    by_zoom = [(z, level_shares([o.at_zoom(z) for o in objects], levels)) for z in scales]
    per_class: dict[str, list[float]] = {}
    for o in objects:
        per_class.setdefault(o.class_name, []).append(o.size)
    classes = {
        name: (len(sizes), level_shares(sizes, levels)) for name, sizes in sorted(per_class.items())
    }
    return ObjectAnalysis(
        count=len(objects),
        levels=level_shares(at_one, levels),
        by_zoom=by_zoom,
        classes=classes,
        sizes=sorted(at_one),
    )

"""The plain-words recommendation of the zoom-scale analysis.

Detectors assign small objects to their finest level (P3 for one-stage detectors, P2 for
Faster R-CNN's FPN), so the share of objects below one cell *there* is what decides whether
the model can see them; coarser levels are meant for larger objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from studio.ml.analysis.zoom import Level
from studio.ml.analysis.zoom_objects import ObjectAnalysis

# Below this share of objects under one cell on the finest level the input size is fine.
FEW = 0.10
# Input sizes are suggested in steps of the usual coarsest stride, so every grid fits whole.
SIZE_STEP = 32


def percent(share: float) -> str:
    """A share 0..1 as "31%"; "<1%" for a share that is small but not zero."""
    if 0 < share < 0.005:
        return "<1%"
    return f"{round(100 * share)}%"


def suggested_input_size(analysis: ObjectAnalysis, finest: Level, image_size: int) -> int | None:
    """The input size (same convention as `image_size`) at which 1 - FEW of the objects cover
    at least one cell on `finest`, rounded up to SIZE_STEP; None when those objects have no
    area. Objects scale with the input size, since the model resizes every image by it."""
    size = analysis.percentile(FEW)
    if size <= 0:
        return None
    needed = image_size * finest.stride / size
    return max(SIZE_STEP, math.ceil(needed / SIZE_STEP) * SIZE_STEP)


def _finer_level(finest: Level) -> str:
    m = re.fullmatch(r"P(\d+)", finest.name)
    stride = max(1, finest.stride // 2)
    return f"P{int(m.group(1)) - 1}/{stride}" if m and int(m.group(1)) > 1 else f"stride {stride}"


def _first_zoom_with_many(analysis: ObjectAnalysis, finest: Level) -> tuple[float, float] | None:
    for zoom, shares in sorted(analysis.by_zoom, key=lambda zs: -zs[0]):
        if shares[finest.name].below_1 > FEW:
            return zoom, shares[finest.name].below_1
    return None


def _advice(analysis: ObjectAnalysis, finest: Level, image_size: int) -> str:
    share = analysis.levels[finest.name].below_1
    if share <= FEW:
        text = " That is few: the input size suits your objects."
        many = _first_zoom_with_many(analysis, finest)
        if many:
            text += (
                f" Zoomed out to {many[0]:g}, {percent(many[1])} fall below one cell there,"
                " so expect small objects to be missed from that scale on."
            )
        return text
    target = suggested_input_size(analysis, finest, image_size)
    finer = _finer_level(finest)
    if target is None:
        return f" Add a finer level ({finer}), or train and predict on tiles."
    cost = (target / image_size) ** 2
    text = (
        f" To bring {percent(1 - FEW)} of them to at least one cell on {finest.label}, raise the"
        f" input size to {target} (about {cost:.{1 if cost < 10 else 0}f}x the compute),"
        f" add a finer level ({finer}), or train and predict on tiles cut from the"
        " full-resolution images."
    )
    if target > 2 * image_size:
        text += f" An input of {target} is costly: tiles or a finer level are the cheaper way."
    return text


def _hardest_class(analysis: ObjectAnalysis, finest: Level) -> str:
    if len(analysis.classes) < 2:
        return ""
    name, (count, shares) = max(
        analysis.classes.items(), key=lambda item: item[1][1][finest.name].below_1
    )
    share = shares[finest.name].below_1
    if share <= analysis.levels[finest.name].below_1 + 0.05:
        return ""
    return (
        f" The hardest class is {name}: {percent(share)} of its {count} objects cover less"
        f" than one cell on {finest.label}."
    )


def recommendation(analysis: ObjectAnalysis, levels: Sequence[Level], image_size: int) -> str:
    """One paragraph for the user: how many objects fall below one cell at input
    `image_size` (pixels, the model's size convention), and what to do about it."""
    if analysis.count == 0:
        return "The project has no labelled objects to analyse: label some first."
    finest = min(levels, key=lambda lv: lv.stride)
    coarsest = max(levels, key=lambda lv: lv.stride)
    text = (
        f"At input {image_size}, {percent(analysis.levels[finest.name].below_1)} of your"
        f" {analysis.count} objects cover less than one cell on {finest.label}"
    )
    if coarsest.stride > finest.stride:
        text += f" and {percent(analysis.levels[coarsest.name].below_1)} on {coarsest.label}"
    text += (
        f". The model looks for small objects on {finest.label}, its finest level, so those"
        " below one cell there are the ones it can hardly see."
    )
    return text + _advice(analysis, finest, image_size) + _hardest_class(analysis, finest)

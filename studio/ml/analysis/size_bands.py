"""Size bands the user sets, besides COCO's small / medium / large.

The user writes edges on the object's side, sqrt(area) in pixels: "8, 16, 32, 96" means
the bands < 8, 8-16, 16-32, 32-96 and > 96, i.e. the area ranges [0, 8^2], [8^2, 16^2],
[16^2, 32^2], [32^2, 96^2] and [96^2, 1e10] in square pixels. They are COCOeval area
ranges (`params.areaRng`), with COCOeval's semantics: a label is counted in a band when
it is not crowd and lo <= area <= hi (bounds included, so an area exactly on an edge is in
both bands, as 32^2 is in both COCO's small and medium); a prediction outside the band
that matches nothing is ignored there. Each band's AP is pycocotools' own number.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.ml.analysis.errors import ErrorReport

MAX_AREA = 1e10  # COCOeval's upper bound of "all" and "large" (1e5 ** 2)


class SizeBandsError(StudioError):
    """Size band text that cannot be read; the message says what is wrong with it."""


def parse_size_edges(text: str) -> list[float]:
    """Edges (object side, pixels) from "8, 16, 32, 96" (commas and/or spaces). Empty
    text is no bands. Raises `SizeBandsError` naming the bad part: not a number, not
    above 0, not finite, or not strictly increasing."""
    parts = [p for p in text.replace(",", " ").split() if p]
    edges: list[float] = []
    for part in parts:
        try:
            v = float(part)
        except ValueError:
            raise SizeBandsError(f"{part!r} is not a number") from None
        if not math.isfinite(v) or v <= 0:
            raise SizeBandsError(f"{part!r} must be a side in pixels above 0")
        if edges and v <= edges[-1]:
            raise SizeBandsError(f"{part!r} must be larger than {_num(edges[-1])}: edges go up")
        edges.append(v)
    return edges


def _num(v: float) -> str:
    return f"{v:g}"


def bands_from_edges(edges: list[float]) -> dict[str, tuple[float, float]]:
    """Band label ("<8", "8-16", ..., ">96") -> (min, max) area in square pixels, in
    order; no edges, no bands."""
    if not edges:
        return {}
    bounds = [0.0, *edges, math.inf]
    out: dict[str, tuple[float, float]] = {}
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if lo == 0:
            label = f"<{_num(hi)}"
        elif math.isinf(hi):
            label = f">{_num(lo)}"
        else:
            label = f"{_num(lo)}-{_num(hi)}"
        out[label] = (lo * lo, MAX_AREA if math.isinf(hi) else hi * hi)
    return out


def format_edges(edges: list[float]) -> str:
    """The text `parse_size_edges` reads back: "8, 16, 32, 96"."""
    return ", ".join(_num(v) for v in edges)


def band_label_counts(report: ErrorReport, bands: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Per band, the labels COCOeval counts in it: not crowd, min <= area <= max."""
    area, real = report.labels.area, ~report.labels.crowd
    return {
        name: int((real & (area >= lo) & (area <= hi)).sum()) for name, (lo, hi) in bands.items()
    }


def band_summary(
    report: ErrorReport, bands: dict[str, tuple[float, float]]
) -> dict[str, dict[str, Any]]:
    """The JSON `size_bands` object: band label -> {"ap" (IoU 0.50:0.95), "ap50" (class
    means, pycocotools; -1 where undefined), "labels" (how many labels the band
    counts)}. The report's AP must have been computed with these bands."""
    means = report.aps.get("all", {})
    counts = band_label_counts(report, bands)
    return {
        name: {
            "ap": float(means.get(f"ap_{name}", -1.0)),
            "ap50": float(means.get(f"ap50_{name}", -1.0)),
            "labels": counts[name],
        }
        for name in bands
    }


def band_aps(
    report: ErrorReport, bands: dict[str, tuple[float, float]]
) -> dict[Any, dict[str, float]]:
    """The report's AP table computed again with `bands` (pycocotools, the report's IoU
    type and predictions), for a window whose user changed the bands. Torch-free."""
    from studio.ml.analysis.coco_ap import coco_class_aps

    if report.gt is None:
        raise StudioError("this evaluation kept no ground truth to compute size bands on")
    return coco_class_aps(report.gt, report.coco_results(), bands, report.iou_type)

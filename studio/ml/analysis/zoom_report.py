"""`studio analyze zoom`: the zoom-scale analysis as one JSON object or as readable text.

The JSON object (a stable interface; scripts build on it):

- `model`, `image_size` (the model's size setting, pixels), `resize` ({"min_size",
  "max_size"} or {"fixed"});
- `levels`: [{"name", "stride", "receptive_field" (theoretical, pixels or null),
  "effective_field" (pixels or null), "receptive_field_at_least" (the field reached the
  measurement's input border)}];
- `box`: the box size the rows follow (pixels at the input, zoom 1): `--box`, or else the
  median object of the project;
- `rows`: one per zoom: {"zoom", "image" (input side, pixels), "box" (pixels), "cells"
  (level name -> cells), "below_one" (level names)};
- for a project, `objects`: {"count", "bins" (histogram bin labels, in cells), "levels"
  (level name -> {"below_1", "below_2" (shares 0..1), "histogram" (counts per bin)}, at
  zoom 1), "by_zoom" ([{"zoom", "levels"}]), "classes" (class name -> {"count",
  "levels"}, at zoom 1)}, and `recommendation` (one paragraph).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import StudioError
from studio.ml.analysis.zoom import (
    DEFAULT_SCALES,
    Level,
    ZoomRow,
    format_pixels,
    format_table,
    parse_scales,
    zoom_table,
)
from studio.ml.analysis.zoom_advice import percent, recommendation
from studio.ml.analysis.zoom_empirical import BUCKETS, ScaleResult
from studio.ml.analysis.zoom_model import ModelInput
from studio.ml.analysis.zoom_objects import CELL_BINS, LevelShare, ObjectAnalysis


@dataclass(slots=True)
class ZoomReport:
    """Everything `studio analyze zoom` prints. `analysis` and `advice` only for a project;
    `box_is_median`: the rows follow the project's median object rather than --box."""

    model: ModelInput
    box: float
    rows: list[ZoomRow]
    analysis: ObjectAnalysis | None = None
    advice: str = ""
    box_is_median: bool = False
    empirical: list[ScaleResult] = field(default_factory=list)


def build_report(
    model: ModelInput,
    scales: Sequence[float] = DEFAULT_SCALES,
    box: float | None = None,
    analysis: ObjectAnalysis | None = None,
) -> ZoomReport:
    """The report for a box (`box` pixels at the input) and/or a project's `analysis`."""
    median = box is None
    if box is None:
        box = analysis.percentile(0.5) if analysis else 0.0
    rows = zoom_table(box, model.resize.square_side, model.levels, scales)
    advice = recommendation(analysis, model.levels, model.image_size) if analysis else ""
    return ZoomReport(model, box, rows, analysis, advice, median)


# --- JSON -----------------------------------------------------------------------------------


def _shares(shares: dict[str, LevelShare], histogram: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, s in shares.items():
        out[name] = {"below_1": round(s.below_1, 4), "below_2": round(s.below_2, 4)}
        if histogram:
            out[name]["histogram"] = list(s.histogram)
    return out


def _objects_json(a: ObjectAnalysis) -> dict[str, Any]:
    return {
        "count": a.count,
        "bins": list(CELL_BINS),
        "levels": _shares(a.levels),
        "by_zoom": [{"zoom": z, "levels": _shares(s)} for z, s in a.by_zoom],
        "classes": {name: {"count": n, "levels": _shares(s)} for name, (n, s) in a.classes.items()},
    }


def report_json(report: ZoomReport) -> dict[str, Any]:
    """The report as the JSON object described in the module docstring."""
    m = report.model
    r = m.resize
    out: dict[str, Any] = {
        "model": m.model,
        "image_size": m.image_size,
        "resize": {"fixed": r.fixed}
        if r.fixed
        else {"min_size": r.min_size, "max_size": r.max_size},
        "levels": [
            {
                "name": lv.name,
                "stride": lv.stride,
                "receptive_field": lv.receptive_field,
                "effective_field": lv.effective_field,
                "receptive_field_at_least": lv.field_clipped,
            }
            for lv in m.levels
        ],
        "box": round(report.box, 4),
        "rows": [
            {
                "zoom": row.zoom,
                "image": row.image,
                "box": round(row.box, 4),
                "cells": {k: round(v, 4) for k, v in row.cells.items()},
                "below_one": list(row.below_one),
            }
            for row in report.rows
        ],
    }
    if report.analysis is not None:
        out["objects"] = _objects_json(report.analysis)
        out["recommendation"] = report.advice
    if report.empirical:
        out["empirical"] = [r.as_dict() for r in report.empirical]
    return out


def _number(value: float) -> str:
    return "-" if value < 0 else f"{value:.3f}"


def empirical_lines(results: Sequence[ScaleResult]) -> list[str]:
    """The measured table: AP, AP50 and recall per zoom, overall and by size bucket."""
    head = ["zoom", "AP", "AP50", "recall"]
    head += [f"{m} {b}" for b in BUCKETS[1:] for m in ("AP50", "recall")]
    lines = [
        "",
        "measured on the validation images (COCO size buckets at the model input; - : none)",
        _row(head),
        "|" + "---|" * len(head),
    ]
    for r in results:
        every = r.metrics["all"]
        cells = [f"{r.zoom:.3f}", _number(every.ap), _number(every.ap50), _number(every.recall)]
        for b in BUCKETS[1:]:
            cells += [_number(r.metrics[b].ap50), _number(r.metrics[b].recall)]
        lines.append(_row(cells))
    return lines


def write_csv(path, results: Sequence[ScaleResult]) -> None:
    """One row per zoom and bucket: zoom, bucket, objects, ap, ap50, recall."""
    import csv

    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["zoom", "bucket", "objects", "ap", "ap50", "recall"])
            for r in results:
                for b in BUCKETS:
                    m = r.metrics[b]
                    w.writerow([r.zoom, b, r.objects.get(b, 0), m.ap, m.ap50, m.recall])
    except OSError as exc:
        raise StudioError(f"{path}: cannot write the CSV ({exc.strerror})") from None


# --- text -----------------------------------------------------------------------------------


def _model_lines(m: ModelInput) -> list[str]:
    r = m.resize
    if r.fixed:
        resize = f"input {r.fixed}x{r.fixed}"
    elif r.min_size == r.max_size:
        resize = f"input {r.max_size} on the longer side"
    else:
        resize = f"input {r.min_size} on the shorter side, at most {r.max_size} on the longer"
    lines = [f"model {m.model}, {resize}", "levels " + ", ".join(lv.label for lv in m.levels)]
    return lines + _field_lines(m.levels)


def _field_lines(levels: Sequence[Level]) -> list[str]:
    """The receptive fields, theoretical and effective, with what they mean."""
    theory = ", ".join(
        f"{lv.label} {'at least ' if lv.field_clipped else ''}{lv.receptive_field} px"
        for lv in levels
        if lv.receptive_field
    )
    effective = ", ".join(
        f"{lv.label} {lv.effective_field} px" for lv in levels if lv.effective_field
    )
    lines = [f"receptive fields (theoretical, of the backbone) {theory}"] if theory else []
    if effective:
        lines.append(f"effective receptive fields (of the backbone) {effective}")
        lines.append(
            "(theoretical: every input pixel that can influence a cell; effective: the"
            " centred square where 95% of the influence lies)"
        )
    return lines


def _row(values: Sequence[str]) -> str:
    return "| " + " | ".join(values) + " |"


def _object_lines(a: ObjectAnalysis, levels: Sequence[Level]) -> list[str]:
    labels = [lv.label for lv in levels]
    lines = [
        "",
        f"{a.count} objects: share below one cell (below two cells) on each level, by zoom",
        _row(["zoom", *labels]),
        "|" + "---|" * (len(labels) + 1),
    ]
    for zoom, shares in a.by_zoom:
        cells = [
            f"{percent(shares[lv.name].below_1)} ({percent(shares[lv.name].below_2)})"
            for lv in levels
        ]
        lines.append(_row([f"{zoom:.3f}", *cells]))
    lines += ["", "objects by cells covered, at zoom 1", _row(["level", *CELL_BINS])]
    lines.append("|" + "---|" * (len(CELL_BINS) + 1))
    lines += [_row([lv.label, *map(str, a.levels[lv.name].histogram)]) for lv in levels]
    lines += ["", "per class, share below one cell at zoom 1", _row(["class", "objects", *labels])]
    lines.append("|" + "---|" * (len(labels) + 2))
    for name, (n, shares) in a.classes.items():
        lines.append(_row([name, str(n), *(percent(shares[lv.name].below_1) for lv in levels)]))
    return lines


def report_text(report: ZoomReport) -> str:
    """The report as readable text: the model, the table (IDEAS.md's layout, with "(below
    one cell)" flags), and for a project the shares, histograms and recommendation."""
    lines = _model_lines(report.model) + [""]
    what = "the median object" if report.box_is_median else "a box"
    lines.append(
        f"{what}, {format_pixels(report.box)} px at the input"
        " (sizes are sqrt of box area, at the model input)"
    )
    lines += format_table(report.rows, report.model.levels)
    if report.analysis is not None:
        lines += _object_lines(report.analysis, report.model.levels)
        lines += ["", *textwrap.wrap(report.advice, width=92)]
    if report.empirical:
        lines += empirical_lines(report.empirical)
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------


def _choose_model(a: argparse.Namespace, project) -> ModelInput:
    from studio.ml.analysis.zoom_model import default_detector, model_input, run_model_input

    if a.run:
        if project is None:
            raise StudioError("--run needs the project folder")
        return run_model_input(project, a.run, a.image_size, measure=True)
    # Measuring the receptive fields builds the model (seconds): only for a project; a
    # bare --box table stays fast and shows a cached measurement when there is one.
    measure = project is not None
    if a.model:
        return model_input(a.model, a.image_size, measure=measure)
    if project is not None:
        from studio.ml.run.recipe import default_model

        return model_input(default_model(project), a.image_size, measure=measure)
    return model_input(default_detector(), a.image_size)


def zoom_command(a: argparse.Namespace) -> int:
    """`studio analyze zoom`: needs `a.dir` (a project folder) or `a.box` (pixels)."""
    try:
        scales = parse_scales(a.scales) if a.scales else DEFAULT_SCALES
    except ValueError as exc:
        raise StudioError(f"--scales: {exc}") from None
    if a.dir is None and a.box is None:
        raise StudioError("give a project folder, or --box PIXELS for one box size")
    if a.box is not None and not a.box > 0:
        raise StudioError(f"--box must be a positive number of pixels, not {a.box:g}")
    if a.dir is None:
        report = build_report(_choose_model(a, None), scales, a.box)
    else:
        report = _project_report(a, scales)
    if getattr(a, "csv", None):
        if not report.empirical:
            raise StudioError("--csv writes the measured AP: it needs --run")
        write_csv(a.csv, report.empirical)
    print(json.dumps(report_json(report), indent=2) if a.json else report_text(report))
    return 0


def _project_report(a: argparse.Namespace, scales: Sequence[float]) -> ZoomReport:
    """The report of project `a.dir`, measured at each zoom when `a.run` has a checkpoint."""
    from studio.core.project import Project
    from studio.ml.analysis.zoom_objects import analyse_objects, object_sizes

    with Project.open(a.dir) as project:
        model = _choose_model(a, project)
        objects = object_sizes(project, model.resize)
        measure = bool(a.run) and not getattr(a, "no_empirical", False)
        if measure and not _has_checkpoint(project, a.run):
            print(f"note: run {a.run} has no checkpoint yet: AP not measured", file=sys.stderr)
            measure = False
    analysis = analyse_objects(objects, model.levels, scales)
    report = build_report(model, scales, a.box, analysis)
    if measure:
        report.empirical = _measure(a.dir, a.run, scales)
    return report


def _has_checkpoint(project, run: str) -> bool:
    from studio.ml.run.runs import find_run, run_checkpoint

    try:
        run_checkpoint(find_run(project, run))
    except StudioError:
        return False
    return True


def _measure(project_dir, run: str, scales: Sequence[float]) -> list[ScaleResult]:
    """The empirical analysis with a progress bar on stderr."""
    from tqdm import tqdm

    from studio.core.progress import Progress
    from studio.ml.analysis.zoom_empirical import empirical_zoom

    bar = tqdm(total=0, desc="evaluating zoom scales", unit="image", leave=False, delay=1.0)

    def show(done: int, total: int, text: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(text, refresh=False)
        bar.refresh()

    try:
        return empirical_zoom(project_dir, run, scales, progress=Progress(show))
    finally:
        bar.close()

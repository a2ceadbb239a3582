"""`studio analyze errors`: a run's errors against the project's labels, as one JSON
object or as readable tables.

The JSON object (a stable interface; scripts build on it):

- `run_id`, `iou` (matching threshold), `iou_type` ("bbox" or "segm": what the IoU was
  measured on; --iou-type auto, the default, is "segm" when the run predicts masks),
  `score` (a prediction counts when its score is at least this), `images` (images
  analysed);
- `per_class`: class name -> {`tp`, `fp`, `fn`, `precision`, `recall` (null when
  undefined), `ap` (IoU 0.50:0.95), `ap50`, `ap75`, `aps`, `apm`, `apl`, `ap_<band>` for
  each --band (all pycocotools' COCOeval numbers; -1 where COCO leaves them undefined)};
- `total`: {`tp`, `fp`, `fn`, `precision`, `recall`}; `ap`: the class means;
- `confusion`: {`labels`: class names then "background", `matrix`: rows are label
  classes, columns predicted classes (the last row: predictions matching no label, the
  last column: labels no prediction found)};
- `errors`: the TIDE-style breakdown, AP50 gained by fixing each error type: `cls`,
  `loc`, `both`, `dupe`, `bkg`, `miss`; `error_counts`: how many of each;
- `size_bands` (with --size-bands 8,16,32,96: edges on the object's side, pixels): band
  label ("<8", "8-16", ..., ">96") -> {`ap`, `ap50` (class means, pycocotools with the
  band's area range), `labels` (labels the band counts)}; the bands' per-class AP is
  in `per_class` as `ap_<label>` and `ap50_<label>`.

Images analysed: those of the split (all without one) that have labels or are marked
done (an unlabelled image would make every prediction on it a false positive).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.formats.coco_writer import coco_dict
from studio.core.kinds import ImageStatus
from studio.core.project import Project
from studio.core.store.snapshot import without_unreviewed
from studio.ml.analysis.errors import Detections, ErrorReport, analyze_errors
from studio.ml.analysis.mask_iou import IouType
from studio.ml.analysis.size_bands import (
    SizeBandsError,
    band_summary,
    bands_from_edges,
    parse_size_edges,
)
from studio.ml.analysis.stored_predictions import update_predictions
from studio.ml.run.runs import find_run, run_checkpoint, split_snapshot


def parse_bands(text: str | None) -> dict[str, tuple[float, float]]:
    """Size bands "tiny=0:16,small=16:32" (side in pixels: areas side^2) -> {name:
    (min area, max area)} in square pixels."""
    bands: dict[str, tuple[float, float]] = {}
    for part in filter(None, (text or "").split(",")):
        m = re.fullmatch(r"\s*(\w+)\s*=\s*([\d.]+)\s*:\s*([\d.]+|inf)\s*", part)
        if not m:
            raise StudioError(f"--bands: {part!r} is not NAME=MIN:MAX (object side, pixels)")
        lo, hi = float(m[2]), float(m[3])
        if hi <= lo:
            raise StudioError(f"--bands: {part!r} has MAX <= MIN")
        bands[m[1]] = (lo * lo, min(hi * hi, 1e10))
    return bands


def _check(iou: float, score: float) -> None:
    if not 0 < iou <= 1:
        raise StudioError(f"--iou {iou}: must be in (0, 1]")
    if not 0 <= score <= 1:
        raise StudioError(f"--score {score}: must be in [0, 1]")


def error_analysis(
    project_dir: Path | str,
    run: int | str,
    split: str | None = None,
    *,
    iou: float = 0.5,
    score: float = 0.3,
    bands: dict[str, tuple[float, float]] | None = None,
    device: str = "auto",
    iou_type: str | IouType = IouType.AUTO,
) -> tuple[int, ErrorReport]:
    """(run id, report) of a run's stored predictions against the labels of `split`'s
    images (all images without one); images without current predictions are predicted
    first. `iou_type`: boxes, masks, or (auto) masks when the run predicts them."""
    _check(iou, score)
    with Project.open(project_dir) as p:
        rec = find_run(p, run)
        # The model's own output is no truth; "val" without val images: the held-out ones.
        snap = without_unreviewed(split_snapshot(p, rec, split))
        labelled = {a.image_id for a in snap.annotations}
        images = [im for im in snap.images if im.id in labelled or im.status == ImageStatus.DONE]
        if not images:
            where = f"the {split} split" if split else "the project"
            raise StudioError(f"{p.path}: no labelled images in {where} to analyse")
        snap.images[:] = images
        update_predictions(p, rec, run_checkpoint(rec), images, device=device)
        rows = p.predictions(rec.id, [im.id for im in images])
    gt = coco_dict(snap)
    report = analyze_errors(
        gt, Detections.from_rows(rows), iou=iou, score=score, size_bands=bands, iou_type=iou_type
    )
    return rec.id, report


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v < 0):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_report(data: dict[str, Any]) -> str:
    """The JSON object as text: the per-class table, the confusion matrix, the errors."""
    lines = [f"run {data['run_id']}: {data['images']} images, "
             f"{data.get('iou_type', 'bbox')} IoU {data['iou']}, score >= {data['score']}"]  # fmt: skip
    cols = ("tp", "fp", "fn", "precision", "recall", "ap", "ap50", "ap75")
    lines.append(f"{'class':<20}" + "".join(f"{c:>10}" for c in cols))
    rows = [*data["per_class"].items(), ("total", {**data["total"], **data.get("ap", {})})]
    for name, row in rows:
        lines.append(f"{name[:20]:<20}" + "".join(f"{_fmt(row.get(c)):>10}" for c in cols))
    names = data["confusion"]["labels"]
    lines += ["", "confusion (rows: labels, columns: predictions)"]
    # Columns as wide as the longest name ("background" included), at least 10.
    w = max(10, *(len(n) + 1 for n in names))
    lines.append(f"{'':<14}" + "".join(f"{n:>{w}}" for n in names))
    for name, row in zip(names, data["confusion"]["matrix"], strict=True):
        lines.append(f"{name[:14]:<14}" + "".join(f"{v:>{w}}" for v in row))
    if data.get("size_bands"):
        lines += ["", f"{'size band (side, px)':<22}{'AP':>10}{'AP50':>10}{'labels':>10}"]
        for name, b in data["size_bands"].items():
            lines.append(f"{name:<22}{_fmt(b['ap']):>10}{_fmt(b['ap50']):>10}{b['labels']:>10}")
    if "errors" in data:
        lines += [
            "",
            "errors (AP50 gained if fixed, count; TIDE's own settings: IoU 0.5 and "
            "every stored prediction, whatever --iou and --score say)",
        ]
        for k, v in data["errors"].items():
            lines.append(f"  {k:<6} {v:>8.4f} {data['error_counts'][k]:>8}")
    return "\n".join(lines)


def size_bands_arg(text: str | None) -> dict[str, tuple[float, float]]:
    """--size-bands "8,16,32,96" -> {band label: (min, max) area}; a bad value is one
    StudioError line naming the option and the problem."""
    try:
        return bands_from_edges(parse_size_edges(text or ""))
    except SizeBandsError as e:
        raise StudioError(f"--size-bands {text!r}: {e}") from None


def errors_command(a: Any) -> int:
    """`studio analyze errors DIR --run R [--split S] [--iou T] [--score T]
    [--iou-type auto|bbox|segm] [--size-bands 8,16,32,96] [--json]`."""
    sized = size_bands_arg(a.size_bands)
    bands = {**parse_bands(a.bands), **sized}
    run_id, report = error_analysis(
        a.dir, a.run, a.split, iou=a.iou, score=a.score, bands=bands,
        iou_type=a.iou_type or IouType.AUTO,
    )  # fmt: skip
    data = {"run_id": run_id, **report.to_json()}
    if sized:
        data["size_bands"] = band_summary(report, sized)
    if a.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_report(data))
    return 0

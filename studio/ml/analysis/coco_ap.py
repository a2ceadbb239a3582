"""Average precision: pycocotools' COCOeval itself, and its accumulate step re-done on
matched arrays (for the error breakdown, which re-scores many "fixed" variants).

`coco_class_aps` runs pycocotools' COCOeval ("bbox" or "segm") unchanged except for its
area ranges (COCO's all/small/medium/large plus the user's size bands, square pixels), so
AP, AP50, AP75, APs, APm, APl and each band's AP and AP50 are pycocotools' numbers read
from `eval["precision"]` exactly as `COCOeval.summarize` reads them. `ap101` is COCOeval's `accumulate` for one IoU
threshold, one area range and 100 detections per image, on plain arrays.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

COCO_AREAS = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}
_AP_NAMES = {"small": "aps", "medium": "apm", "large": "apl"}
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _quiet():
    # pycocotools prints progress to stdout; the CLI's --json output must stay clean.
    return contextlib.redirect_stdout(io.StringIO())


def _mean_valid(s: np.ndarray) -> float:
    """COCOeval.summarize's mean: over entries > -1, or -1 when there are none."""
    v = s[s > -1]
    return float(np.mean(v)) if v.size else -1.0


def coco_class_aps(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    size_bands: dict[str, tuple[float, float]] | None = None,
    iou_type: str = "bbox",
) -> dict[int, dict[str, float]]:
    """Per category id: "ap" (IoU 0.50:0.95), "ap50", "ap75", "aps", "apm", "apl", and
    "ap_<band>" and "ap50_<band>" for each user band (name -> (min, max) area in square
    pixels, bounds included as in COCOeval's areaRng), all from pycocotools' COCOeval
    (`iou_type` "bbox" or "segm") on `gt` (a COCO dict) and `results` (COCO results:
    image_id, category_id, bbox x, y, w, h or segmentation, score). -1 where COCO leaves
    a number undefined (no labels of that class in that size range). Key "all" holds
    the category means (COCOeval's stats)."""
    bands = dict(size_bands or {})
    areas = {"all": (0.0, 1e10), **COCO_AREAS, **bands}
    cat_ids = [c["id"] for c in gt["categories"]]
    if not results or not gt["annotations"]:
        return _without_detections(gt, areas, bands, cat_ids)
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        ev = COCOeval(coco_gt, coco_dt, str(iou_type))
        ev.params.areaRng = [list(map(float, v)) for v in areas.values()]
        ev.params.areaRngLbl = list(areas)
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    thrs = ev.params.iouThrs
    t50, t75 = np.where(thrs == 0.5)[0], np.where(thrs == 0.75)[0]
    m = len(ev.params.maxDets) - 1  # 100 detections
    names = list(areas)
    out: dict[Any, dict[str, float]] = {}
    for k, cat in enumerate([*ev.params.catIds, "all"]):
        ks = slice(None) if cat == "all" else slice(k, k + 1)
        row = {
            "ap": _mean_valid(prec[:, :, ks, 0, m]),
            "ap50": _mean_valid(prec[t50][:, :, ks, 0, m]),
            "ap75": _mean_valid(prec[t75][:, :, ks, 0, m]),
        }
        for a, name in enumerate(names[1:], 1):
            key = _AP_NAMES.get(name, f"ap_{name}")
            row[key] = _mean_valid(prec[:, :, ks, a, m])
            if name in bands:
                row[f"ap50_{name}"] = _mean_valid(prec[t50][:, :, ks, a, m])
        out[cat] = row
    return out


def _without_detections(
    gt: dict[str, Any], areas: dict[str, tuple[float, float]], bands: dict, cat_ids: list
) -> dict[Any, dict[str, float]]:
    """What COCOeval would give without detections (pycocotools cannot load an empty
    results list): 0 where a class has labels COCO counts in the area range (not crowd,
    min <= area <= max), -1 (undefined) where it has none; the means likewise."""
    anns = [a for a in gt["annotations"] if not a.get("iscrowd")]
    out: dict[Any, dict[str, float]] = {}
    for cat in [*cat_ids, "all"]:
        mine = [float(a["area"]) for a in anns if cat == "all" or a["category_id"] == cat]
        row: dict[str, float] = {}
        for name, (lo, hi) in areas.items():
            v = 0.0 if any(lo <= x <= hi for x in mine) else -1.0
            if name == "all":
                row.update(ap=v, ap50=v, ap75=v)
            else:
                row[_AP_NAMES.get(name, f"ap_{name}")] = v
                if name in bands:
                    row[f"ap50_{name}"] = v
        out[cat] = row
    return out


def ap101(
    score: np.ndarray,
    tp: np.ndarray,
    ignored: np.ndarray,
    order_keys: Sequence[np.ndarray] | None,
    n_pos: int,
) -> float:
    """COCOeval's accumulated AP of one class at one IoU threshold (101 recall points).

    `score`, `tp` (matched a regular label), `ignored` (matched an ignored label: kept in
    the list, counted as neither) are the class's kept detections; `order_keys` break
    score ties, most significant first (COCOeval: image id, then rank in the image);
    None when the arrays are already in that order. Returns -1 when the class has no
    positives (COCO leaves it out of the mean)."""
    if n_pos == 0:
        return -1.0
    if not len(tp):
        return 0.0
    if order_keys is not None:
        order = np.lexsort((*reversed(list(order_keys)), -score))
        tp, ignored = tp[order], ignored[order]
    tps = tp & ~ignored
    fps = ~tp & ~ignored
    tp_sum = np.cumsum(tps).astype(float)
    fp_sum = np.cumsum(fps).astype(float)
    rc = tp_sum / n_pos
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]  # COCO's precision envelope
    idx = np.searchsorted(rc, REC_THRS, side="left")
    q = np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0)
    # COCOeval stops filling at the first recall it cannot reach: all later ones stay 0.
    return float(np.mean(q))

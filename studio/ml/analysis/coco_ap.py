"""Average precision: pycocotools' COCOeval itself, and its accumulate step re-done on
matched arrays (for the error breakdown, which re-scores many "fixed" variants).

`coco_class_aps` runs pycocotools' COCOeval unchanged except for its area ranges (COCO's
all/small/medium/large plus the user's size bands, square pixels), so AP, AP50, AP75,
APs, APm and APl are pycocotools' numbers read from `eval["precision"]` exactly as
`COCOeval.summarize` reads them. `ap101` is COCOeval's `accumulate` for one IoU
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
) -> dict[int, dict[str, float]]:
    """Per category id: "ap" (IoU 0.50:0.95), "ap50", "ap75", "aps", "apm", "apl", and
    "ap_<band>" for each user band (name -> (min, max) area in square pixels), all from
    pycocotools' COCOeval ("bbox") on `gt` (a COCO dict) and `results` (COCO results:
    image_id, category_id, bbox x, y, w, h, score). -1 where COCO leaves a number
    undefined (no labels of that class in that size range). Key "all" holds the
    category means (COCOeval's stats)."""
    areas = {"all": (0.0, 1e10), **COCO_AREAS, **(size_bands or {})}
    cat_ids = [c["id"] for c in gt["categories"]]
    if not results or not gt["annotations"]:
        # pycocotools cannot load an empty results list: no detections score 0 on every
        # class that has labels (undefined, -1, on the others).
        labelled = {a["category_id"] for a in gt["annotations"]}
        keys = ["ap", "ap50", "ap75", *(_AP_NAMES.get(n, f"ap_{n}") for n in list(areas)[1:])]
        return {
            c: dict.fromkeys(keys, 0.0 if c in labelled or (c == "all" and labelled) else -1.0)
            for c in [*cat_ids, "all"]
        }
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        ev = COCOeval(coco_gt, coco_dt, "bbox")
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

"""Error analysis benchmark: 5,000 images x 50 predictions (synthetic, 10 labels an
image, 5 classes, a few crowd labels).

Times Studio's error analysis (matching, counts, confusion matrix and TIDE breakdown,
no AP) against pycocotools' COCOeval evaluate + accumulate on the same data, and
Studio's AP step (which is COCOeval itself), printed as ratios: absolute times drift
between machines, the ratios less so. Also checks that both count the same TPs, and
times the mask (segm) analysis on a tenth of the images against COCOeval("segm").

    python benchmarks/bench_errors.py            # 5,000 images x 50 predictions
    python benchmarks/bench_errors.py --quick    # 10x fewer images
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from studio.ml.analysis.coco_ap import coco_class_aps  # noqa: E402
from studio.ml.analysis.errors import Detections, Outcome, analyze_errors  # noqa: E402
from studio.ml.analysis.per_image import per_image_errors  # noqa: E402


def synthetic(n_img: int, n_pred: int, n_cls: int = 5, n_gt: int = 10, seed: int = 0):
    """A COCO ground-truth dict and Detections: most predictions near a label."""
    rng = np.random.default_rng(seed)
    g = n_img * n_gt
    gimg = np.repeat(np.arange(1, n_img + 1), n_gt)
    xy, wh = rng.uniform(0, 500, (g, 2)), rng.uniform(4, 120, (g, 2))
    gcls, crowd = rng.integers(1, n_cls + 1, g), rng.random(g) < 0.02
    gt = {
        "images": [{"id": i, "width": 640, "height": 640} for i in range(1, n_img + 1)],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, n_cls + 1)],
        "annotations": [
            {"id": i + 1, "image_id": int(gimg[i]), "category_id": int(gcls[i]),
             "bbox": [*map(float, xy[i]), *map(float, wh[i])],
             "area": float(wh[i, 0] * wh[i, 1]), "iscrowd": int(crowd[i])}
            for i in range(g)
        ],
    }  # fmt: skip
    d = n_img * n_pred
    dimg = np.repeat(np.arange(1, n_img + 1), n_pred)
    src = rng.integers(0, n_gt, d) + (dimg - 1) * n_gt
    near = rng.random(d) < 0.6
    box = np.where(
        near[:, None],
        np.c_[xy[src] + rng.normal(0, 6, (d, 2)), wh[src] * rng.uniform(0.7, 1.3, (d, 2))],
        np.c_[rng.uniform(0, 500, (d, 2)), rng.uniform(4, 120, (d, 2))],
    )
    dcls = np.where(rng.random(d) < 0.8, gcls[src], rng.integers(1, n_cls + 1, d))
    dets = Detections(
        dimg.astype(np.int64), np.arange(1, d + 1), dcls.astype(np.int64), box, rng.random(d)
    )
    return gt, dets


def _cocoeval(gt: dict, results: list[dict]) -> tuple[float, COCOeval]:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes([dict(r) for r in results])
        t = time.perf_counter()
        ev = COCOeval(cg, cd, "bbox")
        ev.evaluate()
        ev.accumulate()
    return time.perf_counter() - t, ev


def as_diamonds(gt: dict, dets: Detections) -> tuple[dict, Detections]:
    """The same set with masks: each box's inscribed diamond, as a polygon for labels
    and as an RLE for predictions (what a segmenter stores)."""
    from pycocotools import mask as mask_utils

    def diamond(b) -> list[float]:
        x, y, w, h = map(float, b)
        return [x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2]

    anns = [{**a, "segmentation": [diamond(a["bbox"])]} for a in gt["annotations"]]
    rles = mask_utils.frPyObjects([diamond(b) for b in dets.box], 640, 640)
    return {**gt, "annotations": anns}, Detections(
        dets.image_id, dets.pred_id, dets.class_id, dets.box, dets.score, rles
    )


def segm_timing(n_img: int) -> tuple[float, float, bool]:
    """(ours, COCOeval) seconds on masks: matching, counts, confusion and TIDE against
    COCOeval("segm") evaluate + accumulate, on `n_img` images x 50 predictions; and
    whether both count the same TPs at IoU 0.5."""
    from studio.ml.analysis.mask_iou import segm_results

    gt, dets = as_diamonds(*synthetic(n_img, 50, seed=1))
    t = time.perf_counter()
    r = analyze_errors(gt, dets, iou=0.5, score=0.0, with_ap=False, iou_type="segm")
    ours = time.perf_counter() - t
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(segm_results(dets, dets.segm))
        t = time.perf_counter()
        ev = COCOeval(cg, cd, "segm")
        ev.evaluate()
        ev.accumulate()
    ref = time.perf_counter() - t
    return ours, ref, _coco_tp(ev) == int((r.pred_outcome == Outcome.TP).sum())


def _coco_tp(ev: COCOeval) -> int:
    """COCOeval's TPs at IoU 0.5 (area all, 100 detections)."""
    return sum(
        int(((e["dtMatches"][0] > 0) & (e["dtIgnore"][0] == 0)).sum())
        for e in ev.evalImgs
        if e is not None and e["aRng"] == [0, 1e10] and e["maxDet"] == 100
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_img = 500 if a.quick else 5000
    gt, dets = synthetic(n_img, 50)
    print(f"{n_img} images x 50 predictions = {len(dets.score)} predictions, "
          f"{len(gt['annotations'])} labels")  # fmt: skip
    t = time.perf_counter()
    r = analyze_errors(gt, dets, iou=0.5, score=0.0, with_ap=False)
    ours = time.perf_counter() - t
    results = dets.results()
    ref, ev = _cocoeval(gt, results)
    t = time.perf_counter()
    coco_class_aps(gt, results)
    ap_time = time.perf_counter() - t
    # Same TPs as COCOeval at IoU 0.5 (area all, 100 detections).
    coco_tp = _coco_tp(ev)
    ours_tp = int((r.pred_outcome == Outcome.TP).sum())
    print(f"error analysis (matching, counts, confusion, TIDE): {ours:.2f} s "
          f"(goal < 2 s)")  # fmt: skip
    print(f"pycocotools COCOeval evaluate+accumulate:           {ref:.2f} s")
    print(f"ratio ours / COCOeval:                              {ours / ref:.3f}")
    print(f"AP step (COCOeval, loadRes included) / COCOeval:    {ap_time / ref:.2f}")
    t = time.perf_counter()
    per_image_errors(r)
    print(f"per-image counts for the browser ({n_img} images):    "
          f"{(time.perf_counter() - t) * 1000:.1f} ms (goal < 100 ms)")  # fmt: skip
    print(f"TPs at IoU 0.5: ours {ours_tp}, COCOeval {coco_tp} "
          f"({'equal' if ours_tp == coco_tp else 'DIFFERENT'})")  # fmt: skip
    seg, seg_ref, same = segm_timing(n_img // 10)
    print(f"masks ({n_img // 10} images x 50, mask IoU) ours / COCOeval segm: "
          f"{seg:.2f} s / {seg_ref:.2f} s = {seg / seg_ref:.3f}, "
          f"TPs {'equal' if same else 'DIFFERENT'}")  # fmt: skip


if __name__ == "__main__":
    main()

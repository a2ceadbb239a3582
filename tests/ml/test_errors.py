"""Error analysis: matching and counts against pycocotools, AP equal to COCOeval's, the
confusion matrix and the TIDE breakdown on a hand-made case with known answers."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.ml.analysis.coco_ap import ap101
from studio.ml.analysis.errors import Detections, Labels, Outcome, analyze_errors, match

A, B = 1, 2


def _gt(anns: list[tuple], n_images: int = 1) -> dict:
    """anns: (id, image, class, x, y, w, h, crowd)."""
    return {
        "images": [{"id": i, "width": 200, "height": 200} for i in range(1, n_images + 1)],
        "categories": [{"id": A, "name": "a"}, {"id": B, "name": "b"}],
        "annotations": [
            {"id": i, "image_id": im, "category_id": c, "bbox": [x, y, w, h],
             "area": w * h, "iscrowd": int(cr)}
            for i, im, c, x, y, w, h, cr in anns
        ],
    }  # fmt: skip


def _dets(rows: list[tuple]) -> Detections:
    """rows: (image, class, x, y, w, h, score); prediction ids 1..n."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return Detections(
        a[:, 0].astype(np.int64), np.arange(1, len(a) + 1), a[:, 1].astype(np.int64),
        a[:, 2:6].copy(), a[:, 6].copy(),
    )  # fmt: skip


def _cocoeval(gt: dict, dets: Detections, iou: float | None = None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(dets.results()), "bbox")
        if iou is not None:
            ev.params.iouThrs = np.array([iou])
            ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    return ev


def _coco_counts(gt: dict, dets: Detections, iou: float, score: float) -> dict:
    """Independent TP/FP/FN per class from COCOeval's own per-image matches."""
    ev = _cocoeval(gt, dets, iou)
    scores = dict(zip(dets.pred_id.tolist(), dets.score.tolist(), strict=True))
    out = {c: {"tp": 0, "fp": 0, "fn": 0} for c in (A, B)}
    for e in ev.evalImgs:
        if e is None:
            continue
        c = out[e["category_id"]]
        found = set()
        for did, m, ig in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0], strict=True):
            if scores[did] < score or ig:
                continue
            c["tp" if m else "fp"] += 1
            found.add(int(m))
        c["fn"] += sum(1 for g, ig in zip(e["gtIds"], e["gtIgnore"], strict=True)
                       if not ig and g not in found)  # fmt: skip
    return out


# Image 1: L1 a, L2 a, L3 b, L4 a crowd, L5 b.
HAND_GT = _gt([
    (1, 1, A, 0, 0, 10, 10, False), (2, 1, A, 20, 0, 10, 10, False),
    (3, 1, B, 40, 0, 10, 10, False), (4, 1, A, 60, 0, 30, 30, True),
    (5, 1, B, 0, 40, 10, 10, False),
])  # fmt: skip
HAND_DETS = _dets([
    (1, A, 0, 0, 10, 10, 0.9),    # P1 TP on L1
    (1, A, 0, 0, 10, 10, 0.8),    # P2 duplicate of L1
    (1, A, 40, 0, 10, 10, 0.7),   # P3 on L3 with the wrong class
    (1, A, 20, 0, 10, 4, 0.6),    # P4 on L2 at IoU 0.4: mislocalised
    (1, A, 65, 5, 5, 5, 0.5),     # P5 inside the crowd: neither TP nor FP
    (1, B, 100, 100, 10, 10, 0.4),  # P6 on background
    (1, A, 0, 0, 10, 10, 0.1),    # P7 under the score threshold
])  # fmt: skip


def test_hand_made_case_counts_outcomes_and_confusion():
    r = analyze_errors(HAND_GT, HAND_DETS, iou=0.5, score=0.3)
    assert r.pred_outcome.tolist() == [
        Outcome.TP, Outcome.FP, Outcome.FP, Outcome.FP, Outcome.CROWD, Outcome.FP, Outcome.BELOW,
    ]  # fmt: skip
    pc = r.per_class()
    assert {k: pc["a"][k] for k in ("tp", "fp", "fn")} == {"tp": 1, "fp": 3, "fn": 1}
    assert {k: pc["b"][k] for k in ("tp", "fp", "fn")} == {"tp": 0, "fp": 1, "fn": 2}
    assert pc["a"]["precision"] == 0.25 and pc["a"]["recall"] == 0.5
    assert pc["b"]["precision"] == 0.0 and pc["b"]["recall"] == 0.0
    assert r.total() == {"tp": 1, "fp": 4, "fn": 3, "precision": 0.2, "recall": 0.25}
    expected = _coco_counts(HAND_GT, HAND_DETS, 0.5, 0.3)
    assert {
        c: {k: pc[n][k] for k in ("tp", "fp", "fn")} for c, n in ((A, "a"), (B, "b"))
    } == expected
    # rows: labels a, b, background; columns: predictions a, b, background
    assert r.confusion.tolist() == [[1, 0, 1], [1, 0, 1], [2, 1, 0]]
    assert r.cell_items(1, 0) == {"predictions": [(1, 3)], "labels": [(1, 3)]}
    assert r.cell_items(2, 0)["predictions"] == [(1, 2), (1, 4)]
    assert r.cell_items(1, 2)["labels"] == [(1, 5)]
    assert r.items("fn", A) == [(1, 2)] and r.items("tp") == [(1, 1)]


def test_hand_made_case_tide_breakdown():
    r = analyze_errors(HAND_GT, HAND_DETS, iou=0.5, score=0.3)
    assert r.tide is not None
    assert r.tide.counts() == {"cls": 1, "loc": 1, "both": 0, "dupe": 2, "bkg": 1, "miss": 1}
    assert r.labels.ann_id[r.tide.label_missed].tolist() == [5]
    # AP50: a = 51/101 (recall 0.5 at precision 1), b = 0. Fixing P3's class gives b
    # 51/101; moving P4 onto L2 gives a (51 + 50 * 0.5) / 101.
    assert r.tide.ap50 == pytest.approx(25.5 / 101, abs=1e-12)
    dap = r.tide.dap
    assert dap["cls"] == pytest.approx(25.5 / 101, abs=1e-12)
    assert dap["loc"] == pytest.approx(12.5 / 101, abs=1e-12)
    assert dap["dupe"] == dap["bkg"] == dap["both"] == dap["miss"] == 0.0
    js = r.to_json()
    assert set(js["errors"]) == {"cls", "loc", "both", "dupe", "bkg", "miss"}
    assert js["confusion"]["labels"] == ["a", "b", "background"]


def _synthetic(n_img: int, n_pred: int, seed: int) -> tuple[dict, Detections]:
    rng = np.random.default_rng(seed)
    n_gt = 8
    g = n_img * n_gt
    gimg = np.repeat(np.arange(1, n_img + 1), n_gt)
    xy, wh = rng.uniform(0, 150, (g, 2)), rng.uniform(4, 60, (g, 2))
    gcls, crowd = rng.integers(1, 3, g), rng.random(g) < 0.05
    gt = _gt(
        [(i + 1, int(gimg[i]), int(gcls[i]), *map(float, (*xy[i], *wh[i])), bool(crowd[i]))
         for i in range(g)], n_img,
    )  # fmt: skip
    d = n_img * n_pred
    dimg = np.repeat(np.arange(1, n_img + 1), n_pred)
    src = rng.integers(0, n_gt, d) + (dimg - 1) * n_gt
    near = rng.random(d) < 0.7
    box = np.where(
        near[:, None],
        np.c_[xy[src] + rng.normal(0, 4, (d, 2)), wh[src] * rng.uniform(0.7, 1.3, (d, 2))],
        np.c_[rng.uniform(0, 150, (d, 2)), rng.uniform(4, 60, (d, 2))],
    )
    dcls = np.where(rng.random(d) < 0.8, gcls[src], rng.integers(1, 3, d))
    score = np.round(rng.random(d), 2)  # many ties, on purpose
    rows = [(int(i), int(c), *b, s) for i, c, b, s in zip(dimg, dcls, box, score, strict=True)]
    return gt, _dets(rows)


@pytest.mark.parametrize("iou", [0.3, 0.5, 0.75])
def test_random_matching_equals_cocoeval(iou):
    # 120 predictions in one image and class of image 1: the 100-per-class cap applies.
    gt, dets = _synthetic(60, 20, seed=int(iou * 100))
    extra = _dets([(1, A, 5 + i % 7, 5, 20, 20, 0.001 * i) for i in range(120)])
    dets = Detections(*(np.concatenate([x, y]) for x, y in zip(
        (dets.image_id, dets.pred_id, dets.class_id, dets.box, dets.score),
        (extra.image_id, extra.pred_id + 10_000, extra.class_id, extra.box, extra.score),
        strict=True)))  # fmt: skip
    r = analyze_errors(gt, dets, iou=iou, score=0.0, with_ap=False, with_tide=False)
    assert (r.pred_outcome == Outcome.EXCESS).sum() > 0
    ev = _cocoeval(gt, dets, iou)
    index = {p: i for i, p in enumerate(dets.pred_id.tolist())}
    seen = 0
    for e in ev.evalImgs:
        if e is None:
            continue
        for did, m, ig in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0], strict=True):
            i = index[int(dets.pred_id[did - 1])]
            want = Outcome.CROWD if ig else (Outcome.TP if m else Outcome.FP)
            assert r.pred_outcome[i] == want
            got = r.labels.ann_id[r.pred_label[i]] if r.pred_label[i] >= 0 else 0
            assert got == int(m)
            seen += 1
    assert seen == int((r.pred_outcome != Outcome.EXCESS).sum())


def test_ap_equals_cocoeval_and_ap101_equals_accumulate():
    gt, dets = _synthetic(80, 15, seed=3)
    r = analyze_errors(gt, dets, iou=0.5, score=0.3, size_bands={"tiny": (0, 16.0**2)})
    ev = _cocoeval(gt, dets)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    assert r.aps["all"]["ap"] == ev.stats[0]
    assert r.aps["all"]["ap50"] == ev.stats[1] and r.aps["all"]["ap75"] == ev.stats[2]
    assert [r.aps["all"][k] for k in ("aps", "apm", "apl")] == list(ev.stats[3:6])
    assert "ap_tiny" in r.aps[A]
    # The TIDE baseline re-does COCOeval's accumulate: AP50 per class must agree.
    ev50 = _cocoeval(gt, dets, 0.5)
    r0 = analyze_errors(gt, dets, iou=0.5, score=0.0, with_ap=False, with_tide=False)
    tp, ign = r0.pred_outcome == Outcome.TP, r0.pred_outcome == Outcome.CROWD
    for k, c in enumerate((A, B)):
        coco_ap50 = float(np.mean(ev50.eval["precision"][0, :, k, 0, -1]))
        s = (r0.dets.class_id == c) & (r0.pred_outcome != Outcome.EXCESS)
        n_pos = int(((r0.labels.class_id == c) & ~r0.labels.crowd).sum())
        keys = (r0.dets.image_id[s], np.flatnonzero(s))
        assert ap101(r0.dets.score[s], tp[s], ign[s], keys, n_pos) == pytest.approx(
            coco_ap50, abs=1e-12
        )
        assert r.aps[c]["ap50"] == coco_ap50


def test_no_predictions_leaves_every_label_missed():
    r = analyze_errors(HAND_GT, _dets([]), iou=0.5, score=0.3)
    assert r.total()["fn"] == 4 and r.total()["tp"] == 0
    assert r.aps[A]["ap"] == 0.0
    assert r.confusion[:, -1].tolist() == [2, 2, 0]


def test_predictions_on_images_without_labels_are_false_positives():
    """An image with predictions and no labels (unlabelled, or only shapes waiting for
    review): matching raised IndexError, and the Inspect overlay with it."""
    gt = _gt([])
    dets = _dets([(1, A, 0, 0, 10, 10, 0.9), (1, B, 50, 50, 10, 10, 0.6)])
    m = match(Labels.from_coco(gt), dets, 0.5)
    assert m.pred_label.tolist() == [-1, -1] and not m.pred_crowd.any()
    r = analyze_errors(gt, dets, iou=0.5, score=0.3)
    assert r.total()["fp"] == 2 and r.total()["tp"] == 0 and r.total()["fn"] == 0

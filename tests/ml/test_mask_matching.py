"""Mask IoU for segmenters: shapes whose boxes match but masks do not are false positives
under "segm", matching and AP equal pycocotools' COCOeval(iouType="segm"), and
`studio analyze errors --iou-type` says which IoU it used."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.geometry import rle_from_mask, rle_from_polygons
from studio.ml.analysis.errors import Detections, Outcome, analyze_errors
from studio.ml.analysis.mask_iou import IouType, resolve_iou_type, segm_results

A, B = 1, 2
SIZE = 64


def _square_rle(x0: int, y0: int, x1: int, y1: int, size: int = SIZE) -> dict:
    m = np.zeros((size, size), np.uint8)
    m[y0:y1, x0:x1] = 1
    return rle_from_mask(m)


def _one_label_gt(polygon: list[float]) -> dict:
    xs, ys = polygon[0::2], polygon[1::2]
    box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    rle = rle_from_polygons([polygon], SIZE, SIZE)
    return {
        "images": [{"id": 1, "width": SIZE, "height": SIZE}],
        "categories": [{"id": A, "name": "a"}, {"id": B, "name": "b"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": A, "bbox": box,
                         "area": float(mask_utils.area(rle)), "iscrowd": 0,
                         "segmentation": [polygon]}],
    }  # fmt: skip


def _dets_with_masks(rows: list[tuple]) -> Detections:
    """rows: (image, class, rle, score); boxes are the masks' boxes."""
    rles = [r[2] for r in rows]
    return Detections(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.arange(1, len(rows) + 1),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4),
        np.array([r[3] for r in rows], dtype=np.float64),
        rles,
    )


def _segm_eval(gt: dict, results: list[dict], iou: float | None = None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes([dict(r) for r in results]), "segm")
        if iou is not None:
            ev.params.iouThrs = np.array([iou])
            ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


# An L (8 px thick, 40 px tall and wide) and the filled square of its box: box IoU 1.0,
# mask IoU (8*40 + 32*8) / 40^2 = 0.36.
L_SHAPE = [0.0, 0.0, 8.0, 0.0, 8.0, 32.0, 40.0, 32.0, 40.0, 40.0, 0.0, 40.0]
# Two triangles halving the same 40 x 40 box along its diagonal: box IoU 1.0, masks
# overlap on the diagonal pixels only.
UPPER = [0.0, 0.0, 40.0, 0.0, 40.0, 40.0]
LOWER_RLE = rle_from_polygons([[0.0, 0.0, 0.0, 40.0, 40.0, 40.0]], SIZE, SIZE)


@pytest.mark.parametrize(
    ("label", "pred_rle"),
    [(L_SHAPE, _square_rle(0, 0, 40, 40)), (UPPER, LOWER_RLE)],
    ids=["L-shape in its square", "diagonal triangles"],
)
def test_box_match_is_a_mask_false_positive(label, pred_rle):
    gt = _one_label_gt(label)
    dets = _dets_with_masks([(1, A, pred_rle, 0.9)])
    by_box = analyze_errors(gt, dets, iou=0.5, score=0.3, iou_type="bbox", with_tide=False)
    by_mask = analyze_errors(gt, dets, iou=0.5, score=0.3, iou_type="segm", with_tide=False)
    assert by_box.pred_outcome.tolist() == [Outcome.TP]
    assert by_mask.pred_outcome.tolist() == [Outcome.FP]
    assert by_mask.total() == {"tp": 0, "fp": 1, "fn": 1, "precision": 0.0, "recall": 0.0}
    assert by_mask.iou_type == IouType.SEGM and by_mask.to_json()["iou_type"] == "segm"
    # pycocotools agrees: no match at 0.5 on masks.
    ev = _segm_eval(gt, segm_results(dets, dets.segm), iou=0.5)
    assert ev.evalImgs[0]["dtMatches"][0].tolist() == [0.0]
    # Auto picks masks, as the predictions carry them.
    assert resolve_iou_type("auto", dets) == IouType.SEGM
    assert analyze_errors(gt, dets, with_tide=False).iou_type == IouType.SEGM


@pytest.mark.parametrize("segm", [[], [[0.0, 0.0, 40.0, 40.0]]], ids=["box", "2-point part"])
def test_box_labels_against_masks_are_their_rectangles(segm):
    gt = _one_label_gt(L_SHAPE)
    # A box label (or a polygon pycocotools cannot read): its rectangle is the mask.
    gt["annotations"][0]["segmentation"] = segm
    dets = _dets_with_masks([(1, A, _square_rle(0, 0, 40, 40), 0.9)])
    r = analyze_errors(gt, dets, iou=0.5, score=0.3, iou_type="segm")
    assert r.pred_outcome.tolist() == [Outcome.TP]
    assert r.aps["all"]["ap50"] == pytest.approx(1.0)


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[float]:
    """A star-shaped polygon (7 vertices around the centre), pixels."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
    rad = r * rng.uniform(0.4, 1.0, 7)
    return np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)].reshape(-1).round(2).tolist()


def random_segm_set(seed: int = 0, n_img: int = 12, size: int = 96):
    """Labels as polygons (a few crowd ones as uncompressed RLEs), predictions as RLEs:
    most are a label's shape jittered, some random; two classes."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "width": size, "height": size} for i in range(1, n_img + 1)]
    anns, rows = [], []
    for im in range(1, n_img + 1):
        for _ in range(rng.integers(2, 7)):
            cx, cy = rng.uniform(10, size - 10, 2)
            poly = _blob(rng, cx, cy, rng.uniform(4, 30))
            cls = int(rng.integers(A, B + 1))
            crowd = rng.random() < 0.1
            rle = rle_from_polygons([poly], size, size)
            seg: object = [poly]
            if crowd:  # COCO's crowd regions are uncompressed RLEs
                m = mask_utils.decode(rle)
                flat = m.reshape(-1, order="F")
                change = np.flatnonzero(np.diff(np.r_[0, flat, 1 - flat[-1]]))
                seg = {"size": [size, size], "counts": np.diff(np.r_[0, change]).tolist()}
            xs, ys = poly[0::2], poly[1::2]
            anns.append({"id": len(anns) + 1, "image_id": im, "category_id": cls,
                         "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                         "area": float(mask_utils.area(rle)), "iscrowd": int(crowd),
                         "segmentation": seg})  # fmt: skip
            for _ in range(rng.integers(0, 3)):
                jit = (np.array(poly) + rng.normal(0, 2.5, len(poly))).tolist()
                c = cls if rng.random() < 0.85 else A + B - cls
                rows.append((im, c, rle_from_polygons([jit], size, size), rng.random()))
        for _ in range(rng.integers(0, 3)):
            poly = _blob(rng, *rng.uniform(10, size - 10, 2), rng.uniform(4, 20))
            rows.append((im, int(rng.integers(A, B + 1)), rle_from_polygons([poly], size, size),
                         rng.random()))  # fmt: skip
    gt = {"images": images, "categories": [{"id": A, "name": "a"}, {"id": B, "name": "b"}],
          "annotations": anns}  # fmt: skip
    return gt, _dets_with_masks(rows)


@pytest.mark.parametrize("iou", [0.5, 0.75])
def test_random_mask_matching_and_ap_equal_cocoeval_segm(iou):
    gt, dets = random_segm_set()
    r = analyze_errors(gt, dets, iou=iou, score=0.0, iou_type="segm")
    results = segm_results(dets, dets.segm)
    # The matching: every prediction's match as COCOeval's evalImgs has it.
    ev = _segm_eval(gt, results, iou=iou)
    ann_index = {a["id"]: i for i, a in enumerate(gt["annotations"])}
    coco_match = np.full(len(dets.score), -1)
    for e in ev.evalImgs:
        if e is None:
            continue
        for did, m in zip(e["dtIds"], e["dtMatches"][0], strict=True):
            coco_match[did - 1] = ann_index[int(m)] if m else -1
    assert r.matching is not None
    assert r.matching.pred_label.tolist() == coco_match.tolist()
    assert (r.pred_outcome == Outcome.TP).sum() > 5 and (r.pred_outcome == Outcome.FP).sum() > 5
    # AP: COCOeval "segm" summarize's numbers, per class and as means.
    full = _segm_eval(gt, results)
    assert r.aps["all"]["ap"] == pytest.approx(full.stats[0], abs=1e-12)
    assert r.aps["all"]["ap50"] == pytest.approx(full.stats[1], abs=1e-12)
    assert r.aps["all"]["aps"] == pytest.approx(full.stats[3], abs=1e-12)
    prec = full.eval["precision"]
    for k, cat in enumerate(full.params.catIds):
        p = prec[:, :, k, 0, -1]
        assert r.aps[cat]["ap"] == pytest.approx(float(np.mean(p[p > -1])), abs=1e-12)
    # The box matching of the same predictions differs: masks were really used.
    boxes = analyze_errors(gt, dets, iou=iou, score=0.0, iou_type="bbox", with_ap=False)
    assert boxes.matching.pred_label.tolist() != coco_match.tolist()


def test_pr_curve_uses_the_mask_matching():
    from studio.ui.analysis.work import pr_curve

    gt = _one_label_gt(L_SHAPE)
    dets = _dets_with_masks([(1, A, _square_rle(0, 0, 40, 40), 0.9)])
    r = analyze_errors(gt, dets, iou=0.5, score=0.3, iou_type="segm")
    recall, precision, _ = pr_curve(r, A)
    assert recall.tolist() == [0.0] and precision.tolist() == [0.0]


def test_a_segmenter_run_is_scored_on_masks_by_default(tmp_path, capsys):
    """Stored mask predictions (as a segmenter's are stored: kind "mask", an RLE): the
    window's evaluation and `studio analyze errors` pick mask IoU by themselves."""
    from studio.cli import main
    from studio.core.demo import create_demo_project
    from studio.core.geometry import rle_bbox
    from studio.core.kinds import ShapeKind
    from studio.ui.analysis.work import evaluate
    from tests.ml.test_size_bands import run_with_current_predictions

    folder = tmp_path / "demo"
    with create_demo_project(folder, n_images=6, seed=0, image_size=(320, 240)) as p:
        rows, n_poly, n_box = [], 0, 0
        for a in p.annotations():
            im = p.image(a.image_id)
            if a.kind == ShapeKind.POLYGON:  # its own shape: a TP on masks and boxes
                rle, n_poly = rle_from_polygons(a.polygons, im.height, im.width), n_poly + 1
            else:  # an L filling its box's left and bottom sixths: a TP on boxes only
                x, y, w, h = a.bbox
                t, u = w / 6, h / 6
                ell = [[x, y, x + t, y, x + t, y + h - u, x + w, y + h - u, x + w, y + h, x, y + h]]
                rle, n_box = rle_from_polygons(ell, im.height, im.width), n_box + 1
            rows.append(dict(image_id=a.image_id, class_id=a.class_id, kind=ShapeKind.MASK,
                             bbox=rle_bbox(rle), rle=rle, score=0.9))  # fmt: skip
        run_id = run_with_current_predictions(p, rows)
    assert n_poly and n_box
    masks = evaluate(folder, run_id, split=None, iou=0.5, score=0.3)
    assert masks.iou_type == IouType.SEGM
    assert masks.total()["tp"] == n_poly and masks.total()["fp"] == n_box
    args = ["analyze", "errors", str(folder), "--run", str(run_id), "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["iou_type"] == "segm" and data["total"]["tp"] == n_poly
    assert main([*args, "--iou-type", "bbox"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["iou_type"] == "bbox" and data["total"]["tp"] == n_poly + n_box


def test_hundreds_of_masks_in_one_image():
    """pycocotools' `area` of 256+ RLEs at once fails under NumPy 2: areas are taken in
    chunks, so a large image set (or one crowded image) still works."""
    from studio.ml.analysis.mask_iou import rle_areas

    gt = _one_label_gt([0.0, 0.0, 40.0, 0.0, 40.0, 40.0, 0.0, 40.0])
    rows = [(1, A, _square_rle(0, 0, 40 - i % 20, 40), 0.5 + i / 1000) for i in range(300)]
    r = analyze_errors(gt, _dets_with_masks(rows), iou=0.5, score=0.0, iou_type="segm")
    assert r.total()["tp"] == 1 and r.pred_label[int(np.argmax(r.dets.score))] == 0
    rles = [_square_rle(0, 0, 1 + i % 40, 3) for i in range(600)]
    assert rle_areas(rles).tolist() == [3.0 * (1 + i % 40) for i in range(600)]

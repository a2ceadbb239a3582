"""Size bands the user sets: AP per band equal to pycocotools' COCOeval run with those
area ranges (boxes and masks), parsing with clear refusals, and the `size_bands` key of
`studio analyze errors --json`."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.cli import main
from studio.ml.analysis.errors import Detections, analyze_errors
from studio.ml.analysis.mask_iou import segm_results
from studio.ml.analysis.size_bands import (
    SizeBandsError,
    band_label_counts,
    band_summary,
    bands_from_edges,
    parse_size_edges,
)

EDGES = [8.0, 16.0, 32.0, 96.0]
LABELS = ["<8", "8-16", "16-32", "32-96", ">96"]


def random_box_set(seed: int = 1, n_img: int = 30):
    """Boxes of every size from 3 to 150 px a side (one exactly 8 x 8: area on an edge),
    a few crowd ones; most predictions near a label."""
    rng = np.random.default_rng(seed)
    anns, rows = [], []
    for im in range(1, n_img + 1):
        for _ in range(rng.integers(3, 9)):
            side = np.exp(rng.uniform(np.log(3), np.log(150), 2))
            x, y = rng.uniform(0, 300, 2)
            anns.append({"id": len(anns) + 1, "image_id": im, "category_id": int(rng.integers(1, 3)),
                         "bbox": [x, y, *side], "area": float(side[0] * side[1]),
                         "iscrowd": int(rng.random() < 0.05), "segmentation": []})  # fmt: skip
            for _ in range(rng.integers(0, 3)):
                c = anns[-1]["category_id"] if rng.random() < 0.85 else int(rng.integers(1, 3))
                rows.append((im, c, x + rng.normal(0, 2), y + rng.normal(0, 2),
                             side[0] * rng.uniform(0.7, 1.3), side[1] * rng.uniform(0.7, 1.3),
                             rng.random()))  # fmt: skip
        rows.append((im, 1, *rng.uniform(0, 300, 2), *rng.uniform(3, 100, 2), rng.random()))
    anns[0].update(bbox=[10.0, 10.0, 8.0, 8.0], area=64.0, iscrowd=0)
    gt = {"images": [{"id": i, "width": 450, "height": 450} for i in range(1, n_img + 1)],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "annotations": anns}  # fmt: skip
    a = np.array(rows, dtype=np.float64)
    dets = Detections(a[:, 0].astype(np.int64), np.arange(1, len(a) + 1),
                      a[:, 1].astype(np.int64), a[:, 2:6].copy(), a[:, 6].copy())  # fmt: skip
    return gt, dets


def _cocoeval_bands(gt: dict, results: list[dict], iou_type: str) -> COCOeval:
    """COCOeval with params.areaRng set to the bands' ranges: the reference."""
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes([dict(r) for r in results]), iou_type)
        ev.params.areaRng = [[0.0, 64.0], [64.0, 256.0], [256.0, 1024.0], [1024.0, 9216.0],
                             [9216.0, 1e10]]  # fmt: skip
        ev.params.areaRngLbl = list(LABELS)
        ev.evaluate()
        ev.accumulate()
    return ev


def _mean(p: np.ndarray) -> float:
    v = p[p > -1]
    return float(np.mean(v)) if v.size else -1.0


def _check_against(report, ev: COCOeval) -> None:
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    t50 = int(np.flatnonzero(ev.params.iouThrs == 0.5)[0])
    for a, label in enumerate(LABELS):
        for k, cat in enumerate([*ev.params.catIds, "all"]):
            ks = slice(None) if cat == "all" else slice(k, k + 1)
            assert report.aps[cat][f"ap_{label}"] == pytest.approx(
                _mean(prec[:, :, ks, a, -1]), abs=1e-12
            ), (label, cat)
            assert report.aps[cat][f"ap50_{label}"] == pytest.approx(
                _mean(prec[t50, :, ks, a, -1]), abs=1e-12
            ), (label, cat)


def test_box_bands_equal_cocoeval_with_those_area_ranges():
    gt, dets = random_box_set()
    r = analyze_errors(gt, dets, size_bands=bands_from_edges(EDGES), with_tide=False)
    _check_against(r, _cocoeval_bands(gt, dets.results(), "bbox"))
    assert sum(1 for lab in LABELS if r.aps["all"][f"ap_{lab}"] > 0) >= 4  # bands are not empty
    # Labels counted as COCOeval counts them: bounds included (the 8 x 8 box is in both
    # "<8" and "8-16"), crowd labels never.
    counts = band_label_counts(r, bands_from_edges(EDGES))
    areas = np.array([a["area"] for a in gt["annotations"] if not a["iscrowd"]])
    assert counts["<8"] == int((areas <= 64).sum()) and counts["8-16"] == int(
        ((areas >= 64) & (areas <= 256)).sum()
    )
    assert sum(counts.values()) == len(areas) + int((areas == 64).sum())
    summary = band_summary(r, bands_from_edges(EDGES))
    assert list(summary) == LABELS
    assert summary["16-32"] == {"ap": r.aps["all"]["ap_16-32"], "ap50": r.aps["all"]["ap50_16-32"],
                                "labels": counts["16-32"]}  # fmt: skip


def test_mask_bands_equal_cocoeval_segm_with_those_area_ranges():
    from tests.ml.test_mask_matching import random_segm_set

    gt, dets = random_segm_set(seed=3, n_img=15)
    r = analyze_errors(gt, dets, size_bands=bands_from_edges(EDGES), iou_type="segm")
    _check_against(r, _cocoeval_bands(gt, segm_results(dets, dets.segm), "segm"))


def test_bands_without_predictions_are_zero_where_labelled_else_undefined():
    gt, dets = random_box_set()
    none = Detections(*(a[:0] for a in (dets.image_id, dets.pred_id, dets.class_id, dets.box,
                                        dets.score)))  # fmt: skip
    bands = bands_from_edges([8, 16, 2000])
    r = analyze_errors(gt, none, size_bands=bands)
    # No label has a side over 2000 px: COCO leaves that band undefined (-1), as it does
    # for a class without labels in a range; the others score 0.
    assert r.aps["all"]["ap_>2000"] == -1.0 and r.aps[1]["ap50_>2000"] == -1.0
    assert r.aps["all"]["ap_<8"] == 0.0 and r.aps[2]["ap50_8-16"] == 0.0
    assert r.aps["all"]["ap"] == 0.0 and r.aps["all"]["apl"] == 0.0


def test_parse_edges_labels_and_refusals():
    assert parse_size_edges("8, 16, 32, 96") == EDGES
    assert parse_size_edges(" 8 16,32 ,96 ") == EDGES
    assert parse_size_edges("") == []
    bands = bands_from_edges([4.5, 12])
    assert bands == {"<4.5": (0.0, 20.25), "4.5-12": (20.25, 144.0), ">12": (144.0, 1e10)}
    for text, says in (("8, x", "'x' is not a number"), ("16, 8", "'8' must be larger than 16: edges go up"),
                       ("0, 8", "'0' must be a side in pixels above 0"),
                       ("8, inf", "'inf' must be a side in pixels above 0")):  # fmt: skip
        with pytest.raises(SizeBandsError) as e:
            parse_size_edges(text)
        assert str(e.value) == says


def run_with_current_predictions(p, rows: list[dict]) -> int:
    """A run storing `rows` as its predictions, current for every image (a placeholder
    checkpoint and the index `update_predictions` writes), so nothing is predicted."""
    from studio.ml.analysis.stored_predictions import (
        INDEX_NAME,
        SCORE_FLOOR,
        _fingerprint,
        _write_index,
    )

    run = p.create_run("synthetic", "none", "detection", {})
    p.replace_predictions(run.id, rows)
    ckpt = run.dir / "best.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"placeholder")
    images = {str(im.id): im.checksum for im in p.images()}
    _write_index(run.dir / INDEX_NAME, _fingerprint(ckpt, SCORE_FLOOR), images)
    return run.id


@pytest.fixture
def project_with_run(tmp_path):
    """A demo project and a run predicting each label shifted by 1 px (score 0.8)."""
    from studio.core.demo import create_demo_project

    folder = tmp_path / "demo"
    with create_demo_project(folder, n_images=6, seed=0, image_size=(320, 240)) as p:
        rows = []
        for a in p.annotations():
            x, y, w, h = a.bbox
            rows.append(dict(image_id=a.image_id, class_id=a.class_id, bbox=(x + 1, y, w, h),
                             score=0.8))  # fmt: skip
        run_id = run_with_current_predictions(p, rows)
        n_labels = len([a for a in p.annotations() if not a.iscrowd])
    return folder, run_id, n_labels


def test_cli_size_bands_json_and_a_bad_value(project_with_run, capsys):
    folder, run_id, n_labels = project_with_run
    args = ["analyze", "errors", str(folder), "--run", str(run_id), "--json"]
    assert main([*args, "--size-bands", "8,16,32,96"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["iou_type"] == "bbox"  # auto: the run predicts boxes
    assert list(data["size_bands"]) == LABELS
    assert all(set(b) == {"ap", "ap50", "labels"} for b in data["size_bands"].values())
    assert sum(b["labels"] for b in data["size_bands"].values()) >= n_labels
    assert data["size_bands"]["32-96"]["ap50"] > 0.5  # the shifted copies match at 0.5
    assert all({"ap_32-96", "ap50_32-96"} <= set(row) for row in data["per_class"].values())
    # The box predictions scored on masks: as their rectangles against the shapes.
    assert main([*args, "--iou-type", "segm"]) == 0
    assert json.loads(capsys.readouterr().out)["iou_type"] == "segm"
    assert main([*args, "--size-bands", "8,x"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "studio: error: --size-bands '8,x': 'x' is not a number"

"""The canvas's predictions layer matches an instance segmenter's predictions on mask IoU,
as the Evaluation panel does: a prediction whose box fits a label but whose mask does
not is a false positive on the canvas too, and the layer's per-image TP / FP / missed
counts equal the panel's (`studio.ui.analysis.work.evaluate`) on the same stored
predictions."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import make_project  # noqa: E402

from studio.core.geometry import bbox_of_polygons, rle_bbox, rle_from_polygons  # noqa: E402
from studio.core.kinds import ShapeKind  # noqa: E402
from studio.core.project import Project, make_annotation_row  # noqa: E402
from studio.ml.analysis.errors import Outcome  # noqa: E402
from studio.ml.analysis.mask_iou import IouType  # noqa: E402
from studio.ui.analysis.work import evaluate  # noqa: E402
from studio.ui.canvas.layers.predictions import PredictionLayer  # noqa: E402

SIZE = 64
SQUARE = (10.0, 10.0, 40.0, 40.0)  # the label: x, y, w, h
# An L inside the square's box: its box is the square's (box IoU 1), its area 700 of
# the square's 1600 pixels (mask IoU about 0.44).
L_SHAPE = [10.0, 10.0, 20.0, 10.0, 20.0, 40.0, 50.0, 40.0, 50.0, 50.0, 10.0, 50.0]


@pytest.fixture
def project(tmp_path):
    p, _ = make_project(tmp_path, [(SIZE, SIZE)] * 3 + [(96, 80)] * 2)
    yield p
    p.close()


def _layer(project: Project, run_id: int, image_id: int) -> PredictionLayer:
    layer = PredictionLayer()
    layer.set_run(run_id)
    layer.show_image(project.image(image_id), project)
    return layer


def _l_prediction(image_id: int, class_id: int, mask: str) -> dict:
    """The L as a stored prediction: polygons, an RLE, or ("box") its box only."""
    row = {"image_id": image_id, "class_id": class_id, "bbox": SQUARE, "score": 0.9}
    if mask == "polygon":
        row.update(kind=ShapeKind.POLYGON, polygons=[L_SHAPE])
    elif mask == "rle":
        row.update(kind=ShapeKind.MASK, rle=rle_from_polygons([L_SHAPE], SIZE, SIZE))
    else:
        row.update(kind=ShapeKind.BOX)
    return row


@pytest.mark.parametrize("mask", ["polygon", "rle"])
def test_l_shaped_mask_in_a_square_box_is_a_false_positive(qapp, project, mask):
    image_id = project.image_ids()[0]
    cat = project.classes()[0].id
    (label,) = project.add_annotations([make_annotation_row(image_id, cat, "box", bbox=SQUARE)])
    run = project.create_run("segmenter", "none", "instance_segmentation", {})
    project.replace_predictions(run.id, [_l_prediction(image_id, cat, mask)])
    layer = _layer(project, run.id, image_id)
    pred_id = layer.rows[0]["id"]
    assert layer.iou_type() == IouType.SEGM
    assert layer.outcome_of(pred_id) == "fp"
    assert layer.color_of(0) == "#ff4136"
    assert layer.missed_label_ids() == [label]
    assert layer.counts() == {"tp": 0, "fp": 1, "fn": 1}
    # The pairs are kept: a lower IoU threshold re-matches them (0.44 >= 0.4).
    layer.set_iou(0.4)
    assert layer.outcome_of(pred_id) == "tp"
    assert layer.missed_label_ids() == []


def test_same_prediction_without_a_mask_is_a_true_positive(qapp, project):
    image_id = project.image_ids()[0]
    cat = project.classes()[0].id
    project.add_annotations([make_annotation_row(image_id, cat, "box", bbox=SQUARE)])
    run = project.create_run("detector", "none", "detection", {})
    project.replace_predictions(run.id, [_l_prediction(image_id, cat, "box")])
    layer = _layer(project, run.id, image_id)
    assert layer.iou_type() == IouType.BBOX
    assert layer.outcome_of(layer.rows[0]["id"]) == "tp"
    assert layer.missed_label_ids() == []
    assert layer.counts() == {"tp": 1, "fp": 0, "fn": 0}


def test_accepted_mask_prediction_hides_under_its_label_and_counts(qapp, project):
    """Accepting the L (it becomes a polygon label) hides it under its label; it is
    that label's TP on masks, and the square stays missed."""
    from studio.ui.analysis.review import accept_predictions

    image_id = project.image_ids()[0]
    cat = project.classes()[0].id
    (square,) = project.add_annotations([make_annotation_row(image_id, cat, "box", bbox=SQUARE)])
    run = project.create_run("segmenter", "none", "instance_segmentation", {})
    project.replace_predictions(run.id, [_l_prediction(image_id, cat, "polygon")])
    layer = _layer(project, run.id, image_id)
    pred_id = layer.rows[0]["id"]
    assert layer.visible_ids() == [pred_id]
    accept_predictions(project, layer.rows)
    layer.reload_labels()
    assert layer.visible_ids() == []
    assert layer.outcome_of(pred_id) == "tp"
    assert layer.missed_label_ids() == [square]
    assert layer.counts() == {"tp": 1, "fp": 0, "fn": 1}


def _star(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[float]:
    """A random star-shaped 8-gon around (cx, cy) with radii in r * [0.4, 1] (pixels)."""
    pts = []
    for k in range(8):
        a = 2 * math.pi * k / 8
        rr = r * rng.uniform(0.4, 1.0)
        pts += [round(cx + rr * math.cos(a), 2), round(cy + rr * math.sin(a), 2)]
    return pts


def _fill_random(project: Project, seed: int = 0) -> int:
    """Per image: star-shaped labels stored as boxes, polygons or masks (one crowd
    polygon on some images); per label 1-3 predictions, each its outline jittered by
    about a pixel or another star around it (most of its class), plus two strays; as
    polygons or RLEs. Returns the run id."""
    rng = np.random.default_rng(seed)
    classes = [c.id for c in project.classes()]
    run = project.create_run("segmenter", "none", "instance_segmentation", {})
    labels, preds = [], []
    for im in project.images():
        h, w = im.height, im.width
        centres = [(rng.uniform(12, w - 12), rng.uniform(12, h - 12)) for _ in range(5)]
        for k, (cx, cy) in enumerate(centres):
            poly, cls = _star(rng, cx, cy, rng.uniform(6, 14)), int(rng.choice(classes))
            kind = ("box", "polygon", "mask", "polygon", "box")[k]
            crowd = k == 3 and im.id % 2 == 0
            if kind == "box":
                row = make_annotation_row(im.id, cls, "box", bbox=bbox_of_polygons([poly]))
            elif kind == "mask":
                rle = rle_from_polygons([poly], h, w)
                row = make_annotation_row(im.id, cls, "mask", bbox=rle_bbox(rle), rle=rle)
            else:
                row = make_annotation_row(im.id, cls, "polygon", polygons=[poly], iscrowd=crowd)
            labels.append(row)
            for _ in range(int(rng.integers(1, 4))):
                if rng.random() < 0.5:  # the label's own outline, a pixel or so off
                    p = [round(v + rng.normal(0, 1.0), 2) for v in poly]
                else:
                    p = _star(rng, cx + rng.normal(0, 2), cy + rng.normal(0, 2), rng.uniform(6, 14))
                c = cls if rng.random() < 0.7 else int(rng.choice(classes))
                preds.append(_pred_row(rng, im.id, c, p, h, w))
        for _ in range(2):
            p = _star(rng, rng.uniform(10, w - 10), rng.uniform(10, h - 10), 8)
            preds.append(_pred_row(rng, im.id, int(rng.choice(classes)), p, h, w))
    project.add_annotations(labels)
    project.replace_predictions(run.id, preds)
    return run.id


def _pred_row(rng: np.random.Generator, image_id: int, cls: int, poly, h: int, w: int) -> dict:
    row = {"image_id": image_id, "class_id": cls, "score": float(rng.uniform(0.05, 1.0)),
           "bbox": bbox_of_polygons([poly])}  # fmt: skip
    if rng.random() < 0.5:
        row.update(kind=ShapeKind.POLYGON, polygons=[poly])
    else:
        row.update(kind=ShapeKind.MASK, rle=rle_from_polygons([poly], h, w))
    return row


def _panel_counts(report, image_id: int) -> dict[str, int]:
    on = report.dets.image_id == image_id
    o = report.pred_outcome[on]
    lab = report.labels.image_id == image_id
    missed = (report.label_pred[lab] < 0) & ~report.labels.crowd[lab]
    return {
        "tp": int((o == Outcome.TP).sum()),
        "fp": int((o == Outcome.FP).sum()),
        "fn": int(missed.sum()),
    }


def test_layer_counts_equal_the_evaluation_panel(qapp, project):
    run_id = _fill_random(project)
    layers = {i: _layer(project, run_id, i) for i in project.image_ids()}
    differs_on_boxes, seen = False, []
    for iou in (0.5, 0.75):
        for score in (0.05, 0.5):
            report = evaluate(project.path, run_id, split=None, iou=iou, score=score,
                              with_ap=False)  # fmt: skip
            assert report.iou_type == IouType.SEGM
            assert set(report.labels.image_id.tolist()) == set(layers)
            for image_id, layer in layers.items():
                layer.set_iou(iou)
                layer.set_score_threshold(score)
                assert layer.iou_type() == IouType.SEGM
                assert layer.counts() == _panel_counts(report, image_id), (iou, score, image_id)
                seen.append(layer.counts())
            boxes = _box_counts(project, run_id, iou, score)
            differs_on_boxes |= boxes != {i: _panel_counts(report, i) for i in layers}
    # The data tells masks from boxes: box matching would have counted otherwise.
    assert differs_on_boxes
    # Every kind of count occurs, at every setting somewhere.
    for k in ("tp", "fp", "fn"):
        assert all(sum(c[k] for c in seen[i : i + len(layers)]) > 0
                   for i in range(0, len(seen), len(layers))), (k, seen)  # fmt: skip


def _box_counts(project: Project, run_id: int, iou: float, score: float) -> dict:
    from studio.ml.analysis.errors import Detections, analyze_errors
    from studio.ui.analysis.work import evaluation_images

    gt, rows = evaluation_images(project, run_id, None)
    rep = analyze_errors(gt, Detections.from_rows(rows), iou=iou, score=score, with_ap=False,
                         with_tide=False, iou_type=IouType.BBOX)  # fmt: skip
    return {i: _panel_counts(rep, i) for i in project.image_ids()}

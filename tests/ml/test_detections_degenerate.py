"""Boxes a detector puts in a batch's padding come back clipped flat to the image's
edge: `studio predict` stored them (about a tenth of a weak model's boxes) and
`studio prelabel` then failed on the first ("box ... has zero or negative size")."""

from __future__ import annotations

import torch

from studio.ml.analysis.prelabel import annotation_rows
from studio.ml.evaluation.detections import detections


def test_flat_boxes_are_no_detections() -> None:
    out = {
        "boxes": torch.tensor([[0.0, 338.0, 111.2, 338.0], [5, 5, 40, 30], [7, 0, 7.001, 9]]),
        "scores": torch.tensor([0.9, 0.5, 0.8]),
        "labels": torch.tensor([1, 1, 1]),
    }
    found = detections(out, "detection", [7])
    assert [d.bbox for d in found] == [(5.0, 5.0, 35.0, 25.0)]


def test_prelabel_passes_over_flat_boxes_stored_before() -> None:
    preds = [
        {"image_id": 1, "class_id": 2, "kind": "box", "bbox": [0, 338, 111.2, 0], "score": 0.9},
        {"image_id": 1, "class_id": 2, "kind": "box", "bbox": [5, 5, 35, 25], "score": 0.5},
    ]
    rows = annotation_rows(preds)
    assert len(rows) == 1 and rows[0]["score"] == 0.5

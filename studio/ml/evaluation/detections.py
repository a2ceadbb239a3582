"""One model output -> detections in database ids: the one conversion of predictions.

`detections` turns one image's output (in original image pixels, see
`coco.scale_output`) into `Detection`s: boxes as x, y, w, h pixels, masks as compressed
COCO RLE, classes as database ids. Evaluation writes them as COCO results
(`coco_results`), inference stores them as prediction rows; both go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from studio.core.geometry import bbox_of_mask, rle_from_mask
from studio.core.kinds import ShapeKind
from studio.ml.tasks import Task

MASK_THRESHOLD = 0.5  # on mask probabilities, as torchvision's references do


@dataclass(frozen=True, slots=True)
class Detection:
    """One predicted object of an image, in the image's displayed pixels."""

    category_id: int  # database class id
    bbox: tuple[float, float, float, float]  # x, y, w, h
    score: float
    rle: dict[str, Any] | None = None  # compressed COCO RLE {"size": [H, W], "counts": str}

    @property
    def kind(self) -> ShapeKind:
        return ShapeKind.BOX if self.rle is None else ShapeKind.MASK


def masks_to_rles(masks: torch.Tensor, threshold: float = MASK_THRESHOLD) -> list[dict]:
    """[N, 1, H, W] probabilities -> compressed RLEs {"size": [H, W], "counts": str}."""
    return [rle_from_mask((m[0] > threshold).to(torch.uint8).cpu().numpy()) for m in masks]


def sem_labels(output: dict[str, torch.Tensor]) -> torch.Tensor:
    """[H, W] label map from an output's "sem_seg" ([C, H, W] scores or [H, W] labels)."""
    s = output["sem_seg"]
    return s.argmax(0) if s.dim() == 3 else s


MIN_BOX_SIDE = 1e-2  # pixels: a predicted box thinner than this is left out


def detections(
    output: dict[str, torch.Tensor],
    task: str,
    category_ids: Sequence[int],
    *,
    score_threshold: float = 0.0,
) -> list[Detection]:
    """One image's output as detections. Labels outside 1..len(category_ids) (the
    background, or a class the snapshot lacks) and boxes thinner than MIN_BOX_SIDE are
    left out. Instance segmentation adds
    each object's mask; a semantic map gives one mask per class present, scored by its
    mean probability (the score threshold does not apply to it)."""
    if task == Task.SEMANTIC_SEGMENTATION:
        return _semantic_detections(output, category_ids)
    boxes = output["boxes"].detach().float().cpu()
    scores = output["scores"].detach().float().cpu()
    labels = output["labels"].detach().cpu()
    # Boxes a model put in a batch's padding come back clipped flat to the image's
    # edge: no object, and not a shape the project can hold (torchvision's R-CNNs drop
    # them at this size, its FCOS and RetinaNet do not).
    sides = boxes[:, 2:] - boxes[:, :2]
    keep = (scores >= score_threshold) & (sides >= MIN_BOX_SIDE).all(dim=1)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    rles = None
    if task == Task.INSTANCE_SEGMENTATION and "masks" in output:
        rles = masks_to_rles(output["masks"][keep])
    out = []
    for i in range(boxes.shape[0]):
        label = int(labels[i])
        if not 1 <= label <= len(category_ids):
            continue
        x0, y0, x1, y1 = boxes[i].tolist()
        out.append(
            Detection(
                category_id=int(category_ids[label - 1]),
                bbox=(x0, y0, x1 - x0, y1 - y0),
                score=float(scores[i]),
                rle=rles[i] if rles is not None else None,
            )
        )
    return out


def _semantic_detections(
    output: dict[str, torch.Tensor], category_ids: Sequence[int]
) -> list[Detection]:
    labels = sem_labels(output).cpu().numpy()
    probs = None
    if "sem_logits" in output:
        probs = torch.softmax(output["sem_logits"].float(), 0).cpu().numpy()
    out = []
    for label in np.unique(labels):
        if label <= 0 or label > len(category_ids):
            continue
        m = labels == label
        bbox = bbox_of_mask(m)
        if bbox is None:
            continue
        score = float(probs[label][m].mean()) if probs is not None else 1.0
        out.append(Detection(int(category_ids[label - 1]), bbox, score, rle_from_mask(m)))
    return out


def coco_results(
    output: dict[str, torch.Tensor],
    image_id: int,
    task: str,
    category_ids: Sequence[int],
    *,
    score_threshold: float = 0.0,
) -> list[dict[str, Any]]:
    """One image's output in the COCO results format: image_id and category_id are
    database ids, bbox is [x, y, w, h], segmentation (masks) a compressed RLE."""
    out = []
    for d in detections(output, task, category_ids, score_threshold=score_threshold):
        r: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": d.category_id,
            "bbox": list(d.bbox),
            "score": d.score,
        }
        if d.rle is not None:
            r["segmentation"] = d.rle
        out.append(r)
    return out

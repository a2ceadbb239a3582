"""One image's stored predictions matched to its labels exactly as the Evaluation panel
matches them (`studio.ml.analysis.errors.analyze_errors`, iou_type AUTO), so that the
canvas's TP / FP / missed colours never disagree with the panel's counts.

Overlap is mask IoU (pycocotools' "segm") when the image's predictions carry masks
(polygons or RLEs), else box IoU. On masks, a label is what the COCO export makes of it
(`studio.core.formats.coco`: a mask label its RLE, a polygon label its polygons, a box
label, or a shape with nothing drawable left, the filled rectangle of its box), and a
prediction without a mask its box's rectangle, as `mask_iou` does for the panel. Crowd
labels are matched on intersection over the prediction's area and never missed, as COCO
does.

The expensive part (rasterising, pairwise IoUs) does not depend on the IoU threshold:
`prepare` does it once per image (and again when the labels change); `outcomes` then
matches at any threshold from the kept pairs. No Qt. Coordinates are pixels of the image
as displayed; boxes are (x, y, w, h); mask grids are the image's height x width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.geometry import bbox_of_polygons, compressed_rle, rle_bbox
from studio.core.kinds import ShapeKind
from studio.core.records import AnnotationRecord
from studio.ml.analysis.errors import Detections, Labels, Outcome, match
from studio.ml.analysis.mask_iou import IouType, mask_pairs, resolve_iou_type, rles_of
from studio.ml.analysis.matching import Pairs, image_pairs

COVERED_IOU = 0.99  # a label this close to a prediction of its class is that prediction


@dataclass(frozen=True)
class PreparedImage:
    """What matching one image needs at any IoU threshold."""

    labels: Labels
    dets: Detections
    pairs: Pairs  # every overlapping (prediction, label) pair, box or mask IoU
    iou_type: IouType  # what `pairs` measured
    # Per prediction: a label of its class lies on the very same spot (IoU >= 0.99): it
    # was accepted, and the label shows it.
    covered: np.ndarray  # bool [D]


@dataclass(frozen=True)
class ImageOutcome:
    """The matching at one IoU threshold, every prediction counted whatever its score."""

    outcome: np.ndarray  # int8 [D]: `Outcome` code of each prediction
    label_score: np.ndarray  # float64 [G]: score of the TP that found the label, or -1


def label_segmentation(a: AnnotationRecord) -> tuple[Any, tuple[float, float, float, float]]:
    """(segmentation, box) of a label as the COCO export writes them, which is what the
    panel matches: a mask's compressed RLE and its pixel box, a polygon's parts and
    their box, else no segmentation ([]) and the stored (x, y, w, h) box."""
    if a.kind == ShapeKind.MASK and a.rle is not None:
        seg: Any = compressed_rle(a.rle)
        return seg, tuple(rle_bbox(seg))
    if a.kind == ShapeKind.POLYGON and a.polygons:
        seg = [[float(v) for v in p] for p in a.polygons]
        return seg, tuple(bbox_of_polygons(seg))
    x, y, w, h = (float(v) for v in a.bbox)
    return [], (x, y, w, h)


def _labels(labels: Sequence[AnnotationRecord]) -> tuple[Labels, list[Any]]:
    """The panel's `Labels` of these records (in their order: COCO's tie order) and
    their segmentations."""
    shapes = [label_segmentation(a) for a in labels]
    return (
        Labels(
            np.array([a.image_id for a in labels], dtype=np.int64),
            np.array([a.id for a in labels], dtype=np.int64),
            np.array([a.class_id for a in labels], dtype=np.int64),
            np.array([s[1] for s in shapes], dtype=np.float64).reshape(-1, 4),
            np.array([a.area or 0.0 for a in labels], dtype=np.float64),
            np.array([a.iscrowd for a in labels], dtype=bool),
        ),
        [s[0] for s in shapes],
    )


def prepare(
    rows: list[dict[str, Any]],
    labels: Sequence[AnnotationRecord],
    height: int,
    width: int,
) -> PreparedImage:
    """Pair one image's prediction rows (`Project.predictions`) with its labels, on
    masks when any row carries one (polygons or RLE), else on boxes. `height` x
    `width` is the image's displayed size in pixels, the grid masks are compared on."""
    dets = Detections.from_rows(rows)
    labs, segms = _labels(labels)
    kind = resolve_iou_type(IouType.AUTO, dets)
    if kind == IouType.SEGM and len(labs.ann_id):
        sizes = {int(i): (int(height), int(width)) for i in np.unique(dets.image_id).tolist()}
        sizes.update({int(i): (int(height), int(width)) for i in labs.image_id.tolist()})
        pred_rles = rles_of(dets.segm, dets.box, dets.image_id, sizes)
        label_rles = rles_of(segms, labs.box, labs.image_id, sizes)
        pairs = mask_pairs(dets.image_id, pred_rles, labs.image_id, label_rles)
    else:
        # No labels: nothing to pair, and no need to rasterise the predictions.
        pairs = image_pairs(dets.image_id, dets.box, labs.image_id, labs.box)
    covered = np.zeros(len(dets.score), dtype=bool)
    same = labs.class_id[pairs.label] == dets.class_id[pairs.pred]
    covered[pairs.pred[same & (pairs.iou >= COVERED_IOU)]] = True
    return PreparedImage(labs, dets, pairs, kind, covered)


def outcomes(prep: PreparedImage, iou: float) -> ImageOutcome:
    """pycocotools' matching of the prepared image at IoU >= `iou` (0..1]: per class,
    greedy by score, at most 100 predictions per class, crowd labels absorbing what
    they cover. A label is missed at any score threshold above its `label_score`."""
    dets, labs = prep.dets, prep.labels
    outcome = np.full(len(dets.score), Outcome.FP, dtype=np.int8)
    label_score = np.full(len(labs.ann_id), -1.0)
    if not len(dets.score):
        return ImageOutcome(outcome, label_score)
    m = match(labs, dets, iou, prep.pairs)
    tp = (m.pred_label >= 0) & ~m.pred_crowd & m.pred_kept
    outcome[tp] = Outcome.TP
    outcome[m.pred_crowd] = Outcome.CROWD
    outcome[~m.pred_kept] = Outcome.EXCESS
    label_score[m.pred_label[tp]] = dets.score[tp]
    return ImageOutcome(outcome, label_score)

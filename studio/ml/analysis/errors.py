"""Errors of a model against the labels: TP/FP/FN, precision and recall at a score
threshold, COCO AP per class, a confusion matrix and a TIDE-style error breakdown.

Torch-free (numpy and pycocotools), so the window and scripts can run it on stored
predictions. Boxes are (x, y, w, h) in pixels of the image as displayed; areas are
square pixels. Matching is pycocotools' (see `matching`): per image and class, greedy by
score, at most 100 predictions per image and class, a prediction matched to a crowd
label is neither TP nor FP, crowd labels are never missed. Every count can be traced
back: `ErrorReport.pred_outcome` / `pred_label` / `label_pred` / `pred_cell` /
`label_cell` / `tide.pred_error` / `tide.label_missed` index the `Labels` and
`Detections` arrays, whose `ann_id` / `pred_id` / `image_id` name the rows.

Overlap is box IoU for detectors and mask IoU (`mask_iou`, pycocotools' "segm") for
segmenters: `iou_type` AUTO picks masks when the predictions carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import numpy as np

from studio.ml.analysis.coco_ap import coco_class_aps
from studio.ml.analysis.mask_iou import (
    IouType,
    det_rles,
    label_rles,
    mask_pairs,
    resolve_iou_type,
    segm_gt,
    segm_results,
)
from studio.ml.analysis.matching import MAX_DETS, Pairs, greedy_match, image_pairs, rank_in_group
from studio.ml.analysis.tide import TideBreakdown, tide_breakdown

BACKGROUND = "background"


class Outcome(IntEnum):
    """What became of one prediction (the codes of `ErrorReport.pred_outcome`)."""

    TP = 0
    FP = 1
    CROWD = 2  # matched a crowd label: COCO counts it as neither TP nor FP
    EXCESS = 3  # beyond the 100 best of its image and class: COCO never looks at it
    BELOW = 4  # score under the threshold


@dataclass(frozen=True)
class Labels:
    """The labels (ground truth), one entry per annotation."""

    image_id: np.ndarray  # int64 [G]
    ann_id: np.ndarray  # int64 [G], database annotation ids (> 0)
    class_id: np.ndarray  # int64 [G]
    box: np.ndarray  # float64 [G, 4] x, y, w, h
    area: np.ndarray  # float64 [G] square pixels (COCO's `area`)
    crowd: np.ndarray  # bool [G]

    @classmethod
    def from_coco(cls, gt: dict[str, Any]) -> Labels:
        """From a COCO dict's "annotations" (kept in that order: COCO's tie order)."""
        anns = gt["annotations"]
        return cls(
            np.array([a["image_id"] for a in anns], dtype=np.int64),
            np.array([a["id"] for a in anns], dtype=np.int64),
            np.array([a["category_id"] for a in anns], dtype=np.int64),
            np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
            np.array([a["area"] for a in anns], dtype=np.float64),
            np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
        )


@dataclass(frozen=True)
class Detections:
    """The predictions, one entry per stored prediction."""

    image_id: np.ndarray  # int64 [D]
    pred_id: np.ndarray  # int64 [D], database prediction ids (or row numbers)
    class_id: np.ndarray  # int64 [D]
    box: np.ndarray  # float64 [D, 4] x, y, w, h
    score: np.ndarray  # float64 [D]
    # Per prediction its mask (a COCO RLE, or polygons: parts of x, y pixel pairs) or
    # None for a box; None as a whole when no prediction has one (a detector).
    segm: list[Any] | None = None

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Detections:
        """From `Project.predictions` rows (image_id, class_id, bbox, score, id, and
        the mask as rle or polygons when the model is a segmenter)."""
        segm = [r.get("rle") or r.get("polygons") or None for r in rows]
        return cls(
            np.array([r["image_id"] for r in rows], dtype=np.int64),
            np.array([r.get("id", i + 1) for i, r in enumerate(rows)], dtype=np.int64),
            np.array([r["class_id"] for r in rows], dtype=np.int64),
            np.array([r["bbox"] for r in rows], dtype=np.float64).reshape(-1, 4),
            np.array([r["score"] for r in rows], dtype=np.float64),
            segm if any(s is not None for s in segm) else None,
        )

    def results(self) -> list[dict[str, Any]]:
        """As COCO results (what pycocotools' loadRes takes), in this order."""
        return [
            {"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
             "score": float(s)}
            for i, c, b, s in zip(self.image_id, self.class_id, self.box, self.score, strict=True)
        ]  # fmt: skip


@dataclass(frozen=True)
class Matching:
    """pycocotools' matching at one IoU threshold (before any score threshold)."""

    pred_label: np.ndarray  # int64 [D]: matched label index or -1
    pred_rank: np.ndarray  # int64 [D]: rank in its image and class by score
    pred_crowd: np.ndarray  # bool [D]: matched a crowd label
    pred_kept: np.ndarray  # bool [D]: among the 100 best of its image and class


def match(labels: Labels, dets: Detections, iou: float, pairs: Pairs | None = None) -> Matching:
    """Match as COCOeval does at IoU `iou` (area range "all", 100 detections)."""
    if pairs is None:
        pairs = image_pairs(dets.image_id, dets.box, labels.image_id, labels.box)
    group = (dets.image_id << 32) | (dets.class_id & 0xFFFFFFFF)
    rank = rank_in_group(group, dets.score)
    kept = rank < MAX_DETS
    same = (labels.class_id[pairs.label] == dets.class_id[pairs.pred]) & kept[pairs.pred]
    crowd = labels.crowd
    p, g = pairs.pred[same], pairs.label[same]
    v = np.where(crowd[g], pairs.crowd_iou[same], pairs.iou[same])
    pred_label = greedy_match(len(dets.score), len(crowd), p, g, v, rank, iou, crowd, crowd)
    # An image without labels (predictions only) matches nothing, and has no crowd.
    pred_crowd = (pred_label >= 0) & (crowd[np.maximum(pred_label, 0)] if len(crowd) else False)
    return Matching(pred_label, rank, pred_crowd, kept)


@dataclass
class ErrorReport:
    """The result of `analyze_errors`. Class indices k follow `class_ids`; index K
    (= len(class_ids)) is "background" in the confusion matrix."""

    class_ids: list[int]
    class_names: list[str]
    iou: float
    score: float
    labels: Labels
    dets: Detections
    pred_outcome: np.ndarray  # int8 [D], `Outcome` codes
    pred_label: np.ndarray  # int64 [D]: label index of a TP (or crowd), else -1
    label_pred: np.ndarray  # int64 [G]: prediction index that found it, else -1
    pred_cell: np.ndarray  # int64 [D, 2]: (row, col) in `confusion`; -1 if not counted
    label_cell: np.ndarray  # int64 [G, 2]: (row, col) of a missed label; -1 otherwise
    confusion: np.ndarray  # int64 [K + 1, K + 1]: rows label class, cols predicted class
    aps: dict[Any, dict[str, float]] = field(default_factory=dict)
    tide: TideBreakdown | None = None
    iou_type: IouType = IouType.BBOX  # what IoU measured: boxes or masks
    # The user's size bands in `aps` (label -> (min, max) area, square pixels).
    size_bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    # What the matching was computed from, kept so that curves and AP can be redone
    # without matching again: the pairs, the matching before any score threshold, and
    # the COCO ground truth AP was (or can be) computed on.
    pairs: Pairs | None = field(default=None, repr=False)
    matching: Matching | None = field(default=None, repr=False)
    gt: dict[str, Any] | None = field(default=None, repr=False)

    def coco_results(self) -> list[dict[str, Any]]:
        """The predictions as COCO results of this report's IoU type (masks: RLEs)."""
        if self.iou_type == IouType.SEGM and self.dets.segm is not None:
            return segm_results(self.dets, self.dets.segm)
        return self.dets.results()

    def per_class(self) -> dict[str, dict[str, Any]]:
        """Class name -> tp, fp, fn, precision, recall (None when undefined), and the
        COCO APs when computed (-1 where COCO leaves them undefined)."""
        out: dict[str, dict[str, Any]] = {}
        for cid, name in zip(self.class_ids, self.class_names, strict=True):
            tp, fp, fn = self._counts(self.dets.class_id == cid, self.labels.class_id == cid)
            row: dict[str, Any] = {"tp": tp, "fp": fp, "fn": fn, **_pr(tp, fp, fn)}
            row.update(self.aps.get(cid, {}))
            out[name] = row
        return out

    def total(self) -> dict[str, Any]:
        tp, fp, fn = self._counts(slice(None), slice(None))
        return {"tp": tp, "fp": fp, "fn": fn, **_pr(tp, fp, fn)}

    def _counts(self, dmask: Any, lmask: Any) -> tuple[int, int, int]:
        o = self.pred_outcome[dmask]
        missed = (self.label_pred[lmask] < 0) & ~self.labels.crowd[lmask]
        return int((o == Outcome.TP).sum()), int((o == Outcome.FP).sum()), int(missed.sum())

    def items(self, what: str, class_id: int | None = None) -> list[tuple[int, int]]:
        """(image id, annotation id) for "fn", or (image id, prediction id) for "tp" /
        "fp": the objects behind a count, for the window to list."""
        if what == "fn":
            sel = (self.label_pred < 0) & ~self.labels.crowd
            if class_id is not None:
                sel &= self.labels.class_id == class_id
            return _pairs(self.labels.image_id[sel], self.labels.ann_id[sel])
        code = {"tp": Outcome.TP, "fp": Outcome.FP}[what]
        sel = self.pred_outcome == code
        if class_id is not None:
            sel &= self.dets.class_id == class_id
        return _pairs(self.dets.image_id[sel], self.dets.pred_id[sel])

    def cell_items(self, row: int, col: int) -> dict[str, list[tuple[int, int]]]:
        """The objects of one confusion cell: {"predictions": [(image id, prediction
        id)], "labels": [(image id, annotation id)]} (labels: matched or missed ones)."""
        dsel = (self.pred_cell[:, 0] == row) & (self.pred_cell[:, 1] == col)
        lsel = (self.label_cell[:, 0] == row) & (self.label_cell[:, 1] == col)
        matched = self.pred_label[dsel]
        lab = np.union1d(np.flatnonzero(lsel), matched[matched >= 0]).astype(np.int64)
        return {
            "predictions": _pairs(self.dets.image_id[dsel], self.dets.pred_id[dsel]),
            "labels": _pairs(self.labels.image_id[lab], self.labels.ann_id[lab]),
        }

    def to_json(self) -> dict[str, Any]:
        """The stable JSON object of `studio analyze errors --json`."""
        out: dict[str, Any] = {
            "iou": self.iou,
            "iou_type": str(self.iou_type),
            "score": self.score,
            "images": int(len(np.unique(np.r_[self.labels.image_id, self.dets.image_id]))),
            "per_class": self.per_class(),
            "total": self.total(),
            "confusion": {
                "labels": [*self.class_names, BACKGROUND],
                "matrix": self.confusion.tolist(),
            },
        }
        if self.aps:
            out["ap"] = self.aps.get("all", {})
        if self.tide is not None:
            out["errors"] = dict(self.tide.dap)
            out["error_counts"] = self.tide.counts()
        return out


def _pr(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def _pairs(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(a.tolist(), b.tolist(), strict=True))


def analyze_errors(
    gt: dict[str, Any],
    dets: Detections,
    *,
    iou: float = 0.5,
    score: float = 0.3,
    with_ap: bool = True,
    with_tide: bool = True,
    size_bands: dict[str, tuple[float, float]] | None = None,
    iou_type: str | IouType = IouType.AUTO,
) -> ErrorReport:
    """Errors of `dets` against `gt` (a COCO dict: images with width and height,
    categories in display order, annotations with id, bbox, area, iscrowd,
    segmentation). A prediction counts when its score >= `score`; it is a TP when
    matched at IoU >= `iou`, on boxes or on masks (`iou_type`; AUTO: masks when the
    predictions have them). AP (pycocotools) uses every prediction, whatever `score`,
    with COCO's area ranges plus `size_bands` (label -> (min, max) area in square
    pixels). Predictions of images or classes outside `gt` are left out (as COCOeval
    leaves them)."""
    labels = Labels.from_coco(gt)
    class_ids = [int(c["id"]) for c in gt["categories"]]
    names = [str(c["name"]) for c in gt["categories"]]
    inside = np.isin(dets.image_id, [im["id"] for im in gt["images"]])
    inside &= np.isin(dets.class_id, class_ids)
    dets = _subset(dets, inside)
    kind = resolve_iou_type(iou_type, dets)
    if kind == IouType.SEGM:
        gt = segm_gt(gt)
        dets = replace(dets, segm=det_rles(dets, gt))
        pairs = mask_pairs(dets.image_id, dets.segm, labels.image_id, label_rles(gt))
    else:
        pairs = image_pairs(dets.image_id, dets.box, labels.image_id, labels.box)
    m = match(labels, dets, iou, pairs)
    report = _outcomes(labels, dets, m, class_ids, names, iou, score)
    report.iou_type, report.pairs, report.matching, report.gt = kind, pairs, m, gt
    report.size_bands = dict(size_bands or {})
    _confusion(report, pairs)
    if with_ap:
        report.aps = coco_class_aps(gt, report.coco_results(), size_bands, kind)
    if with_tide:
        m50 = m if iou == 0.5 else match(labels, dets, 0.5, pairs)
        report.tide = tide_breakdown(labels, dets, m50, pairs, class_ids)
    return report


def _subset(d: Detections, sel: np.ndarray) -> Detections:
    segm = None if d.segm is None else [d.segm[i] for i in np.flatnonzero(sel).tolist()]
    return Detections(
        d.image_id[sel], d.pred_id[sel], d.class_id[sel], d.box[sel], d.score[sel], segm
    )


def _outcomes(
    labels: Labels,
    dets: Detections,
    m: Matching,
    class_ids: list[int],
    names: list[str],
    iou: float,
    score: float,
) -> ErrorReport:
    outcome = np.where(m.pred_label >= 0, Outcome.TP, Outcome.FP).astype(np.int8)
    outcome[m.pred_crowd] = Outcome.CROWD
    outcome[~m.pred_kept] = Outcome.EXCESS
    outcome[dets.score < score] = Outcome.BELOW
    tp = outcome == Outcome.TP
    pred_label = np.where(tp | (outcome == Outcome.CROWD), m.pred_label, -1)
    label_pred = np.full(len(labels.ann_id), -1, dtype=np.int64)
    label_pred[m.pred_label[tp]] = np.flatnonzero(tp)
    k = len(class_ids)
    return ErrorReport(
        class_ids=class_ids,
        class_names=names,
        iou=iou,
        score=score,
        labels=labels,
        dets=dets,
        pred_outcome=outcome,
        pred_label=pred_label,
        label_pred=label_pred,
        pred_cell=np.full((len(dets.score), 2), -1, dtype=np.int64),
        label_cell=np.full((len(labels.ann_id), 2), -1, dtype=np.int64),
        confusion=np.zeros((k + 1, k + 1), dtype=np.int64),
    )


def _confusion(r: ErrorReport, pairs: Pairs) -> None:
    """Fill the confusion matrix: TPs on the diagonal; then, greedy by score within each
    image, every FP takes the best still-missed label of another class it overlaps at
    IoU >= r.iou (cell label class x predicted class); FPs left over go to the
    background row, labels left over to the background column. Each row sums to the
    class's non-crowd labels, each column to the class's TP + FP."""
    k = len(r.class_ids)
    index = {c: i for i, c in enumerate(r.class_ids)}
    pk = np.array([index[c] for c in r.dets.class_id.tolist()], dtype=np.int64)
    lk = np.array([index.get(c, k) for c in r.labels.class_id.tolist()], dtype=np.int64)
    tp = r.pred_outcome == Outcome.TP
    fp = r.pred_outcome == Outcome.FP
    missed = (r.label_pred < 0) & ~r.labels.crowd
    sel = fp[pairs.pred] & missed[pairs.label] & (pk[pairs.pred] != lk[pairs.label])
    rank = rank_in_group(np.where(fp, r.dets.image_id, -1), r.dets.score)
    no = np.zeros(len(lk), dtype=bool)
    cross = greedy_match(
        len(pk), len(lk), pairs.pred[sel], pairs.label[sel], pairs.iou[sel], rank, r.iou, no, no
    )
    r.pred_cell[tp] = np.stack([pk[tp], pk[tp]], axis=1)
    confused = cross >= 0
    r.pred_cell[confused] = np.stack([lk[cross[confused]], pk[confused]], axis=1)
    bkg = fp & ~confused
    r.pred_cell[bkg] = np.stack([np.full(bkg.sum(), k), pk[bkg]], axis=1)
    r.label_cell[missed] = np.stack([lk[missed], np.full(missed.sum(), k)], axis=1)
    # A missed label taken by a prediction of another class sits in that cell.
    r.label_cell[cross[confused]] = np.stack([lk[cross[confused]], pk[confused]], axis=1)
    left = missed & (r.label_cell[:, 1] == k)
    cells = np.concatenate([r.pred_cell[r.pred_cell[:, 0] >= 0], r.label_cell[left]])
    np.add.at(r.confusion, (cells[:, 0], cells[:, 1]), 1)

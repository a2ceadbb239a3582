"""A TIDE-style error breakdown (Bolya et al., "TIDE: A General Toolbox for Identifying
Object Detection Errors", ECCV 2020), vectorised.

Each false positive at the foreground IoU (0.5) gets one error type, tested in TIDE's
order, with IoU measured against the image's non-crowd labels:

- loc: 0.1 <= best IoU with a label of its class <= 0.5 (mislocalised);
- cls: best IoU with a label of another class >= 0.5 (right place, wrong class);
- dupe: best IoU with an already matched label of its class >= 0.5 (a duplicate);
- bkg: best IoU with any label <= 0.1 (fired on background);
- both: anything else (wrong class and mislocalised);

and each missed label that no cls or loc error could have found is a "miss". The dAP of
a type is AP50 (mean over classes with labels) with only that type fixed, minus AP50 as
it is: cls and loc errors become true positives (of the label's class for cls) when their
label was free, the highest-scoring one per label; the others, and every dupe, bkg and
both error, are removed; a miss is removed from the labels. Negative gains count as 0.

Simplifications against the reference implementation (tidecv): matching is
pycocotools' (per image and class, crowd labels make a prediction neither TP nor FP; at
most 100 predictions per image and class) where TIDE matches per image up to 100
predictions; AP is COCOeval's 101-point AP (`coco_ap.ap101`) averaged over the classes
that have labels, where TIDE also averages in classes with predictions but no labels;
an IoU argmax tie goes to the lowest label index. dAP is on AP's 0..1 scale (TIDE prints
it times 100). Errors use every stored prediction, whatever the score threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from studio.ml.analysis.coco_ap import ap101

if TYPE_CHECKING:
    from studio.ml.analysis.errors import Detections, Labels, Matching
    from studio.ml.analysis.matching import Pairs

FG_IOU = 0.5
BG_IOU = 0.1


class TideError(IntEnum):
    """Error type of a prediction (`TideBreakdown.pred_error`); NONE for a true positive
    or a prediction COCO does not look at."""

    NONE = 0
    CLS = 1
    LOC = 2
    BOTH = 3
    DUPE = 4
    BKG = 5


ERROR_NAMES = {
    TideError.CLS: "cls",
    TideError.LOC: "loc",
    TideError.BOTH: "both",
    TideError.DUPE: "dupe",
    TideError.BKG: "bkg",
}


@dataclass(frozen=True)
class TideBreakdown:
    dap: dict[str, float]  # "cls", "loc", "both", "dupe", "bkg", "miss" -> AP50 gained
    ap50: float  # AP50 as it is (mean over classes with labels), the baseline of dap
    pred_error: np.ndarray  # int8 [D]: `TideError` codes
    pred_target: np.ndarray  # int64 [D]: label index a cls/loc error points at, or -1
    label_missed: np.ndarray  # bool [G]: the "miss" errors

    def counts(self) -> dict[str, int]:
        out = {name: int((self.pred_error == e).sum()) for e, name in ERROR_NAMES.items()}
        out["miss"] = int(self.label_missed.sum())
        return out


def _seg_max(
    pairs: Pairs, sel: np.ndarray, iou: np.ndarray, n_pred: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction, the best IoU over the selected pairs (0 if none) and its label
    index (-1 if none); a tie goes to the first pair (the lowest label position).
    Pairs come ordered by prediction (`image_pairs`), so segments are contiguous."""
    best = np.zeros(n_pred)
    arg = np.full(n_pred, -1, dtype=np.int64)
    p, g, v = pairs.pred[sel], pairs.label[sel], iou[sel]
    if len(p):
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        seg_max = np.maximum.reduceat(v, starts)
        seg_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(p))))
        at_max = np.flatnonzero(v == seg_max[seg_of])
        first = at_max[np.r_[True, seg_of[at_max][1:] != seg_of[at_max][:-1]]]
        best[p[starts]] = seg_max
        arg[p[first]] = g[first]
    return best, arg


def _classify(
    labels: Labels, dets: Detections, fp: np.ndarray, used: np.ndarray, pairs: Pairs
) -> tuple[np.ndarray, np.ndarray]:
    """TIDE's error type of every false positive, and the label a cls/loc error targets."""
    n = len(dets.score)
    nc = ~labels.crowd[pairs.label]
    same = labels.class_id[pairs.label] == dets.class_id[pairs.pred]
    max_same, arg_same = _seg_max(pairs, nc & same, pairs.iou, n)
    max_other, arg_other = _seg_max(pairs, nc & ~same, pairs.iou, n)
    max_used, _ = _seg_max(pairs, nc & same & used[pairs.label], pairs.iou, n)
    max_all, _ = _seg_max(pairs, nc, pairs.iou, n)
    err = np.full(n, TideError.NONE, dtype=np.int8)
    target = np.full(n, -1, dtype=np.int64)
    todo = fp.copy()
    for code, hit, arg in (
        (TideError.LOC, (max_same >= BG_IOU) & (max_same <= FG_IOU), arg_same),
        (TideError.CLS, max_other >= FG_IOU, arg_other),
        (TideError.DUPE, max_used >= FG_IOU, None),
        (TideError.BKG, max_all <= BG_IOU, None),
        (TideError.BOTH, np.ones(n, dtype=bool), None),
    ):
        now = todo & hit
        err[now] = code
        if arg is not None:
            target[now] = arg[now]
        todo &= ~now
    return err, target


def _best_fixers(err: np.ndarray, target: np.ndarray, used: np.ndarray, score: np.ndarray):
    """Cls/loc errors whose free label they would take: per label only the highest-
    scoring one (TIDE's BestGTMatch, shared by cls and loc errors)."""
    cand = np.flatnonzero(((err == TideError.CLS) | (err == TideError.LOC)) & (target >= 0))
    cand = cand[~used[target[cand]]]
    o = np.lexsort((-cand, score[cand], target[cand]))
    c = cand[o]
    last = np.r_[target[c][1:] != target[c][:-1], True] if len(c) else np.zeros(0, bool)
    best = np.zeros(len(score), dtype=bool)
    best[c[last]] = True
    usable = np.zeros(len(used), dtype=bool)
    usable[target[cand]] = True
    return best, usable


def _map50(
    order: np.ndarray, cls: np.ndarray, tp: np.ndarray, keep: np.ndarray, n_pos: dict[int, int]
) -> float:
    """Mean AP50 over the classes with labels, of the kept predictions with (new) classes
    `cls` and TP flags `tp`; `order` sorts predictions by score (COCO's tie order), the
    same for every variant, so it is computed once."""
    cls_o, tp_o, keep_o = cls[order], tp[order], keep[order]
    aps = []
    for c, n in n_pos.items():
        s = keep_o & (cls_o == c)
        ap = ap101(np.zeros(0), tp_o[s], np.zeros(int(s.sum()), dtype=bool), None, n)
        aps.append(max(ap, 0.0))
    return float(np.mean(aps)) if aps else 0.0


def tide_breakdown(
    labels: Labels, dets: Detections, m50: Matching, pairs: Pairs, class_ids: list[int]
) -> TideBreakdown:
    """The breakdown from pycocotools' matching at IoU 0.5 (`m50`)."""
    valid = m50.pred_kept & ~m50.pred_crowd
    tp = valid & (m50.pred_label >= 0)
    fp = valid & (m50.pred_label < 0)
    used = np.zeros(len(labels.ann_id), dtype=bool)
    used[m50.pred_label[tp]] = True
    err, target = _classify(labels, dets, fp, used, pairs)
    best, usable = _best_fixers(err, target, used, dets.score)
    real = ~labels.crowd
    missed = real & ~used & ~usable
    n_pos = {c: int((real & (labels.class_id == c)).sum()) for c in class_ids}
    n_pos = {c: n for c, n in n_pos.items() if n}
    cls = dets.class_id
    order = np.lexsort((np.arange(len(cls)), dets.image_id, -dets.score))
    base = _map50(order, cls, tp, valid, n_pos)
    dap: dict[str, float] = {}
    for code, name in ERROR_NAMES.items():
        mine = err == code
        keep = valid & ~(mine & ~best)
        new_cls, new_tp = cls, tp
        if code in (TideError.CLS, TideError.LOC):
            fixed = mine & best
            new_tp = tp | fixed
            if code == TideError.CLS and len(labels.class_id):  # none: nothing to fix
                new_cls = np.where(fixed, labels.class_id[np.maximum(target, 0)], cls)
        dap[name] = max(_map50(order, new_cls, new_tp, keep, n_pos) - base, 0.0)
    fewer = {c: n - int((missed & (labels.class_id == c)).sum()) for c, n in n_pos.items()}
    dap["miss"] = max(_map50(order, cls, tp, valid, fewer) - base, 0.0)
    return TideBreakdown(dap, base, err, target, missed)

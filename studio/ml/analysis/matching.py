"""Vectorised matching of predictions to labels, as pycocotools' COCOeval matches them.

Boxes are (x, y, w, h) in pixels of the image as displayed, float64. Everything here
works on flat numpy arrays; there is no Python loop over images or objects:

- `image_pairs` lists every (prediction, label) pair of the same image with their IoU,
  computed with the very arithmetic of pycocotools' C `bbIou` (so equal inputs give
  bit-equal IoUs, and ties and thresholds fall exactly as in COCOeval);
- `greedy_match` is COCOeval's greedy assignment (highest score first; each label taken
  once, crowd labels any number of times; a regular label is preferred to an ignored one;
  the best IoU wins, the later label on a tie), run for every group at once: step r
  assigns the r-th prediction of every group, so the loop runs (largest group) times, not
  (number of predictions) times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DETS = 100  # COCOeval's maxDets[-1]: predictions kept per image and class


@dataclass(frozen=True, slots=True)
class Pairs:
    """Prediction-label pairs of one image: indices into the prediction and label
    arrays, the plain IoU, and the crowd IoU (intersection over the prediction's area,
    what COCO uses against a crowd label)."""

    pred: np.ndarray  # int64 [P]
    label: np.ndarray  # int64 [P]
    iou: np.ndarray  # float64 [P]
    crowd_iou: np.ndarray  # float64 [P]


def _sorted_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order (stable) of `keys`, the distinct keys and where each starts in that order."""
    order = np.argsort(keys, kind="stable")
    uniq, start = np.unique(keys[order], return_index=True)
    return order, uniq, start


def image_pairs(
    pred_image: np.ndarray,
    pred_box: np.ndarray,
    label_image: np.ndarray,
    label_box: np.ndarray,
) -> Pairs:
    """Every overlapping (prediction, label) pair of the same image, with its IoUs,
    ordered by prediction then label order. Pairs that do not overlap are left out: their
    IoU is 0, which no matching threshold (> 0) accepts.

    The IoU follows pycocotools' `bbIou`: w = min(x1+w1, x2+w2) - max(x1, x2) (and the
    same for h), no overlap when w <= 0 or h <= 0, IoU = i / (area_p + area_l - i), and
    i / area_p against a crowd label."""
    if not len(label_image) or not len(pred_image):
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0), np.zeros(0))
    lorder, limages, lstart = _sorted_groups(label_image)
    lcount = np.diff(np.append(lstart, len(lorder)))
    # For each prediction, the range of its image's labels in `lorder`.
    pos = np.minimum(np.searchsorted(limages, pred_image), len(limages) - 1)
    has = limages[pos] == pred_image
    n = np.where(has, lcount[pos], 0)
    first = np.where(has, lstart[pos], 0)
    pred = np.repeat(np.arange(len(pred_image), dtype=np.int64), n)
    # Offset of each pair within its prediction's run: 0..n-1.
    offset = np.arange(len(pred), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    label = lorder[np.repeat(first, n) + offset].astype(np.int64)
    return _overlapping(pred, label, pred_box, label_box)


def _overlapping(pred: np.ndarray, label: np.ndarray, d: np.ndarray, g: np.ndarray) -> Pairs:
    """The pairs whose boxes overlap, with IoU and crowd IoU, as bbIou computes them.
    Works column by column and drops pairs as soon as they cannot overlap: most pairs
    of an image do not, and this is the one step that touches all of them."""
    dx, dy, dw, dh = (np.ascontiguousarray(d[:, i]) for i in range(4))
    gx, gy, gw, gh = (np.ascontiguousarray(g[:, i]) for i in range(4))
    w = np.minimum((dw + dx)[pred], (gw + gx)[label]) - np.maximum(dx[pred], gx[label])
    keep = w > 0
    pred, label, w = pred[keep], label[keep], w[keep]
    h = np.minimum((dh + dy)[pred], (gh + gy)[label]) - np.maximum(dy[pred], gy[label])
    keep = h > 0
    pred, label, w, h = pred[keep], label[keep], w[keep], h[keep]
    inter = w * h
    da = (dw * dh)[pred]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (da + (gw * gh)[label] - inter)
        crowd = inter / da
    return Pairs(pred, label, iou, crowd)


def rank_in_group(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each item's rank within its group by descending score, ties in input order (the
    stable order COCOeval sorts detections in)."""
    order = np.lexsort((-score, group))  # lexsort is stable: ties keep input order
    g = group[order]
    starts = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, bool)
    start_idx = np.maximum.accumulate(np.where(starts, np.arange(len(g)), 0))
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = np.arange(len(g)) - start_idx
    return rank


def greedy_match(
    n_pred: int,
    n_label: int,
    pair_pred: np.ndarray,
    pair_label: np.ndarray,
    pair_iou: np.ndarray,
    pred_rank: np.ndarray,
    threshold: float,
    label_ignored: np.ndarray,
    label_reusable: np.ndarray,
) -> np.ndarray:
    """COCOeval's greedy assignment; returns, per prediction, the matched label index or -1.

    Pairs must only join a prediction and a label of the same group (image, or image and
    class); `pred_rank` is each prediction's processing order within its group (0 first;
    predictions left out carry no pairs). A pair is eligible when its IoU >= `threshold`
    (capped at 1 - 1e-10, as COCOeval does) and its label is free or reusable (crowd).
    Among eligible labels a non-ignored one wins, then the highest IoU, then the later
    label index (COCOeval iterates labels in order and keeps the last of equal IoUs)."""
    match = np.full(n_pred, -1, dtype=np.int64)
    keep = pair_iou >= min(threshold, 1 - 1e-10)
    pp, pl, pi = pair_pred[keep], pair_label[keep], pair_iou[keep]
    if not len(pp):
        return match
    step = pred_rank[pp]
    order = np.argsort(step, kind="stable")
    pp, pl, pi, step = pp[order], pl[order], pi[order], step[order]
    bounds = np.searchsorted(step, np.arange(step[-1] + 2))
    taken = np.zeros(n_label, dtype=bool)
    preferred = ~label_ignored.astype(bool)
    for r in range(step[-1] + 1):
        lo, hi = bounds[r], bounds[r + 1]
        if lo == hi:
            continue
        d, g, v = pp[lo:hi], pl[lo:hi], pi[lo:hi]
        ok = label_reusable[g] | ~taken[g]
        d, g, v = d[ok], g[ok], v[ok]
        if not len(d):
            continue
        best = np.lexsort((g, v, preferred[g], d))
        d, g = d[best], g[best]
        last = np.r_[d[1:] != d[:-1], True]
        match[d[last]] = g[last]
        taken[g[last]] = True
    return match

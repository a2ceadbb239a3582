"""Mask IoU for segmenters, as pycocotools' COCOeval computes it with iouType="segm".

Masks are COCO RLEs on the image's pixel grid (height x width of the image as displayed);
a mask pixel (i, j) covers [j, j + 1) x [i, i + 1). A label's mask is what
`COCO.annToRLE` makes of its segmentation (polygons rasterised by pycocotools, RLEs
as they are); a prediction's mask is its stored RLE. IoUs come from
`pycocotools.mask.iou`, so thresholds and ties fall exactly as in COCOeval:
intersection / union, and intersection / prediction area against a crowd label.

Two extensions where pycocotools would fail, both applied identically to the matching
here and to the COCOeval run that gives AP (so the numbers still agree): polygon parts
of fewer than 3 points are left out (pycocotools reads a 4-number part as a box, and
fails), and a label or a prediction without a segmentation (a box, or nothing left) is
taken as the filled rectangle of its box.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools import mask as mask_utils

from studio.ml.analysis.matching import Pairs, image_pairs

if TYPE_CHECKING:
    from studio.ml.analysis.errors import Detections


class IouType(StrEnum):
    """What the overlap of a prediction and a label is measured on."""

    AUTO = "auto"  # masks when the predictions carry masks, else boxes
    BBOX = "bbox"
    SEGM = "segm"


def resolve_iou_type(requested: str | IouType, dets: Detections) -> IouType:
    """`requested`, with AUTO made SEGM when any prediction carries a mask or polygons."""
    kind = IouType(requested)
    if kind != IouType.AUTO:
        return kind
    has_masks = dets.segm is not None and any(s for s in dets.segm)
    return IouType.SEGM if has_masks else IouType.BBOX


def rectangle(box: Sequence[float]) -> list[list[float]]:
    """The polygon (one part, x, y pairs in pixels) of an (x, y, w, h) box."""
    x, y, w, h = (float(v) for v in box)
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def usable_segm(segm: Any, box: Sequence[float]) -> Any:
    """The segmentation pycocotools can rasterise: polygons without their parts of
    fewer than 3 points, an RLE as it is; the box's rectangle when nothing is left."""
    if isinstance(segm, list):
        segm = [p for p in segm if len(p) >= 6]
    return segm or rectangle(box)


def segm_gt(gt: dict[str, Any]) -> dict[str, Any]:
    """A copy of the COCO dict `gt` whose annotations all have a segmentation that
    pycocotools can rasterise (`usable_segm`: boxes become rectangles)."""
    out = dict(gt)
    anns = []
    for a in gt["annotations"]:
        segm = usable_segm(a.get("segmentation"), a["bbox"])
        if segm is not a.get("segmentation"):
            a = copy.copy(a)
            a["segmentation"] = segm
        anns.append(a)
    out["annotations"] = anns
    return out


def ann_rle(segm: Any, height: int, width: int) -> dict[str, Any]:
    """`COCO.annToRLE`: polygons (a list of parts) or an uncompressed RLE rasterised on
    a height x width grid, merged into one compressed RLE; a compressed RLE unchanged."""
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    if isinstance(segm.get("counts"), list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def rles_of(
    segms: Sequence[Any] | None,
    boxes: np.ndarray,
    image_ids: np.ndarray,
    sizes: dict[int, tuple[int, int]],
) -> list[dict[str, Any]]:
    """The compressed RLE of each shape: its segmentation (polygons or an RLE, as
    `ann_rle` reads them) rasterised on its image's grid (`sizes`: image id -> (height,
    width)), or, when it has none, its (x, y, w, h) box's rectangle."""
    segms = segms if segms is not None else [None] * len(boxes)
    return [
        ann_rle(usable_segm(s, b), *sizes[int(i)])
        for s, b, i in zip(segms, np.asarray(boxes).tolist(), image_ids.tolist(), strict=True)
    ]


def image_sizes(gt: dict[str, Any]) -> dict[int, tuple[int, int]]:
    """Image id -> (height, width) of a COCO dict's images."""
    return {int(im["id"]): (int(im["height"]), int(im["width"])) for im in gt["images"]}


def label_rles(gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The compressed RLE of every annotation of `gt` (in order), boxes as rectangles."""
    anns = gt["annotations"]
    return rles_of(
        [a.get("segmentation") for a in anns],
        np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
        np.array([a["image_id"] for a in anns], dtype=np.int64),
        image_sizes(gt),
    )


def det_rles(dets: Detections, gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The compressed RLE of every prediction (polygons rasterised on its image's grid,
    predictions without a mask as their box's rectangle). Predictions must be of `gt`'s
    images."""
    return rles_of(dets.segm, dets.box, dets.image_id, image_sizes(gt))


def rle_boxes(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """float64 [N, 4]: the tight (x, y, w, h) pixel box of each RLE (0s when empty)."""
    if not len(rles):
        return np.zeros((0, 4))
    return np.asarray(mask_utils.toBbox(list(rles)), dtype=np.float64).reshape(-1, 4)


def rle_areas(rles: Sequence[dict[str, Any]]) -> np.ndarray:
    """float64 [N]: the pixel count of each RLE."""
    # pycocotools' `area` of 256 or more RLEs at once fails under NumPy 2 (it sizes its
    # output array with a uint8), so it is called on chunks of 255.
    out = [mask_utils.area(list(rles[i : i + 255])) for i in range(0, len(rles), 255)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def mask_pairs(
    pred_image: np.ndarray,
    pred_rle: Sequence[dict[str, Any]],
    label_image: np.ndarray,
    label_rle: Sequence[dict[str, Any]],
) -> Pairs:
    """Every (prediction, label) pair of the same image whose masks overlap, with mask
    IoU and crowd IoU (intersection over the prediction's mask area), ordered by
    prediction then label order, as `matching.image_pairs` orders box pairs.

    Candidates are the pairs whose masks' pixel boxes overlap (pycocotools' `rleIou`
    skips the others the same way); their IoUs come from one `mask.iou` call per image.
    Masks of different grid sizes never match (pycocotools gives them -1)."""
    cand = image_pairs(pred_image, rle_boxes(pred_rle), label_image, rle_boxes(label_rle))
    if not len(cand.pred):
        return cand
    crowd = _crowd_ious(cand, pred_image, pred_rle, label_rle)
    d_area = rle_areas(pred_rle)[cand.pred]
    l_area = rle_areas(label_rle)[cand.label]
    # intersection / prediction area, computed in C, gives the integer intersection back
    # exactly; the union is then an exact integer too, so iou = i / u is the very double
    # rleIou computes for a regular label.
    inter = np.rint(crowd * d_area)
    keep = inter > 0
    inter, d_area, l_area = inter[keep], d_area[keep], l_area[keep]
    iou = inter / (d_area + l_area - inter)
    return Pairs(cand.pred[keep], cand.label[keep], iou, inter / d_area)


def _crowd_ious(
    cand: Pairs, pred_image: np.ndarray, pred_rle: Sequence[dict], label_rle: Sequence[dict]
) -> np.ndarray:
    """Intersection / prediction area of each candidate pair (-1: grids differ), one
    pycocotools call per image."""
    out = np.empty(len(cand.pred))
    img = pred_image[cand.pred]
    order = np.argsort(img, kind="stable")
    bounds = np.flatnonzero(np.r_[True, img[order][1:] != img[order][:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        at = order[lo:hi]
        dp, di = np.unique(cand.pred[at], return_inverse=True)
        lp, li = np.unique(cand.label[at], return_inverse=True)
        m = mask_utils.iou(
            [pred_rle[i] for i in dp.tolist()],
            [label_rle[i] for i in lp.tolist()],
            [1] * len(lp),
        )
        out[at] = np.asarray(m, dtype=np.float64).reshape(len(dp), len(lp))[di, li]
    return out


def segm_results(dets: Detections, rles: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """COCO "segm" results: image_id, category_id, segmentation (RLE), score, in order.
    No bbox: pycocotools' loadRes then takes box and area from the mask, as it does for
    every segmenter's results."""
    return [
        {"image_id": int(i), "category_id": int(c), "segmentation": r, "score": float(s)}
        for i, c, r, s in zip(dets.image_id, dets.class_id, rles, dets.score, strict=True)
    ]

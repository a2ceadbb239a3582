"""Validation metrics: COCO AP/AR through pycocotools, mIoU and Dice for semantic maps.

`coco_evaluate` runs pycocotools' COCOeval unchanged (default parameters), so its numbers
are exactly those of the reference implementation on the same ground truth and results;
it only silences COCOeval's printing and adds per-class AP read from the same
`eval["precision"]` array that `summarize()` averages. Results use the snapshot's
database ids for images and categories (the COCO results format).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.ml.evaluation.detections import coco_results, sem_labels
from studio.ml.tasks import Task

# The order of COCOeval.stats after summarize() for bbox and segm.
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


@contextlib.contextmanager
def _quiet():
    # pycocotools prints progress to stdout; an application must not (and in the
    # training process stdout may be a closed pipe).
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def coco_from_dict(data: dict[str, Any]) -> COCO:
    """A pycocotools COCO object from an in-memory dict (no file, no printing)."""
    coco = COCO()
    coco.dataset = data
    with _quiet():
        coco.createIndex()
    return coco


def coco_evaluate(
    gt: COCO | dict[str, Any], results: list[dict[str, Any]], iou_type: str = "bbox"
) -> dict[str, Any]:
    """COCOeval of `results` (COCO results format) against `gt`; iou_type "bbox"|"segm".

    Returns {"AP", "AP50", ..., "ARl": float (COCOeval.stats, -1 where undefined),
    "per_class": {category id: AP averaged over IoU 0.5:0.95, all areas, 100 dets}}.
    Categories without ground truth in the evaluated images are left out of per_class.
    With no results at all every defined number is 0 (pycocotools itself cannot load an
    empty results list).
    """
    coco_gt = gt if isinstance(gt, COCO) else coco_from_dict(gt)
    with _quiet():
        if results:
            # loadRes adds "id", "area" (and rewrites "bbox" for masks) in place.
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
        else:
            coco_dt = coco_from_dict(
                {
                    "images": coco_gt.dataset["images"],
                    "categories": coco_gt.dataset["categories"],
                    "annotations": [],
                }
            )
        E = COCOeval(coco_gt, coco_dt, iou_type)
        E.evaluate()
        E.accumulate()
        E.summarize()
    out: dict[str, Any] = {name: float(v) for name, v in zip(STAT_NAMES, E.stats, strict=True)}
    out["per_class"] = per_class_ap(E)
    return out


def per_class_ap(E: COCOeval) -> dict[int, float]:
    """AP@[.5:.95] per category id from an accumulated COCOeval (area "all", maxDets 100),
    computed as summarize() does for the overall AP, restricted to one category."""
    precision = E.eval["precision"]  # [T IoUs, R recalls, K cats, A areas, M maxDets]
    a = list(E.params.areaRngLbl).index("all")
    m = len(E.params.maxDets) - 1
    out = {}
    for k, cat_id in enumerate(E.params.catIds):
        p = precision[:, :, k, a, m]
        p = p[p > -1]
        if p.size:
            out[int(cat_id)] = float(np.mean(p))
    return out


# --- model outputs at the original image size ------------------------------------------


def scale_output(
    output: dict[str, torch.Tensor], input_size: tuple[int, int], orig_size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Map one model output from the input image's size (h, w) to the original image.

    Boxes are scaled; masks [N, 1, h, w] are resized bilinearly (probabilities);
    "sem_seg" ([C, h, w] logits or [h, w] labels) is resized to (H, W)."""
    if tuple(input_size) == tuple(orig_size):
        return output
    (h, w), (H, W) = input_size, orig_size
    out = dict(output)
    if "boxes" in out:
        scale = torch.tensor([W / w, H / h, W / w, H / h], device=out["boxes"].device)
        out["boxes"] = out["boxes"] * scale
    if "masks" in out and out["masks"].numel():
        out["masks"] = _resize_masks(out["masks"], (H, W))
    if "sem_logits" in out:
        out["sem_logits"] = F.interpolate(
            out["sem_logits"][None].float(), size=(H, W), mode="bilinear"
        )[0]
    if "sem_seg" in out:
        s = out["sem_seg"]
        if s.dim() == 3:
            out["sem_seg"] = F.interpolate(s[None].float(), size=(H, W), mode="bilinear")[0]
        else:
            out["sem_seg"] = F.interpolate(s[None, None].float(), size=(H, W), mode="nearest")[
                0, 0
            ].long()
    return out


def _resize_masks(masks: torch.Tensor, size: tuple[int, int], chunk: int = 16) -> torch.Tensor:
    # In chunks: 100 masks of a 12-megapixel photo would need 4.8 GB at once.
    parts = [
        F.interpolate(masks[i : i + chunk].float(), size=size, mode="bilinear")
        for i in range(0, masks.shape[0], chunk)
    ]
    return torch.cat(parts)


# --- semantic segmentation -------------------------------------------------------------


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_labels: int) -> torch.Tensor:
    """[num_labels, num_labels] int64 counts, rows = ground truth, columns = prediction.
    Pixels whose target is outside 0..num_labels-1 (an ignore value) are not counted."""
    t, p = target.reshape(-1).long(), pred.reshape(-1).long()
    valid = (t >= 0) & (t < num_labels)
    idx = t[valid] * num_labels + p[valid].clamp(0, num_labels - 1)
    return torch.bincount(idx, minlength=num_labels**2).reshape(num_labels, num_labels).cpu()


def semantic_metrics(confusion: np.ndarray | torch.Tensor, class_names: Sequence[str]) -> dict:
    """mIoU, mDice, pixel accuracy and per-class IoU/Dice from a confusion matrix whose
    label 0 is the background and labels 1..K are `class_names`. The means run over the
    classes that occur in the ground truth or the predictions (background excluded)."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    union = tp + fp + fn
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    dice = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=present)
    classes = [k for k in range(1, cm.shape[0]) if present[k]]
    total = cm.sum()
    return {
        "mIoU": float(np.mean(iou[classes])) if classes else 0.0,
        "mDice": float(np.mean(dice[classes])) if classes else 0.0,
        "pixel_acc": float(tp.sum() / total) if total else 0.0,
        "IoU": {class_names[k - 1]: float(iou[k]) for k in classes},
        "Dice": {class_names[k - 1]: float(dice[k]) for k in classes},
    }


# --- running a model over a loader -----------------------------------------------------


@dataclass(slots=True)
class EvalResult:
    metrics: dict[str, Any]  # nested: {"bbox": {...}, "segm": {...}} or {"semantic": {...}}
    results: list[dict[str, Any]] = field(default_factory=list)  # COCO results (det/inst)


@torch.no_grad()
def run_model(
    model: torch.nn.Module,
    batches: Iterable[tuple[Sequence[torch.Tensor], Sequence[dict[str, Any]]]],
    device: torch.device,
    *,
    autocast: torch.dtype | None = None,
) -> Iterable[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    """Yield (target, output in original image pixels, on the CPU) per image; `autocast`:
    the mixed-precision dtype on CUDA (training's), None for float32."""
    model.eval()
    for images, targets in batches:
        images = [im.to(device, non_blocking=True) for im in images]
        on = autocast is not None and device.type == "cuda"
        with torch.autocast(device.type, autocast if on else None, enabled=on):
            outputs = model(images)
        for im, t, o in zip(images, targets, outputs, strict=True):
            o = {k: v.float() if v.is_floating_point() else v for k, v in o.items()}
            o = scale_output(o, tuple(im.shape[-2:]), tuple(t["orig_size"]))
            yield t, {k: v.cpu() for k, v in o.items()}


def evaluate_outputs(
    pairs: Iterable[tuple[dict[str, Any], dict[str, torch.Tensor]]],
    task: str,
    snapshot: Any,
    image_ids: Sequence[int],
) -> EvalResult:
    """Metrics for (target, output) pairs of `image_ids` against `snapshot`'s ground truth.

    Detection: {"bbox": coco stats}; instance segmentation adds {"segm": ...};
    semantic: {"semantic": semantic_metrics}. per_class keys become class names."""
    names = dict(zip(snapshot.category_ids, snapshot.class_names, strict=True))
    if task == Task.SEMANTIC_SEGMENTATION:
        k = snapshot.num_classes + 1
        cm = torch.zeros((k, k), dtype=torch.int64)
        for t, o in pairs:
            sem = t["sem_mask"]
            pred = sem_labels(o)
            if pred.shape != sem.shape:  # target at the loader's size, prediction at full
                pred = F.interpolate(pred[None, None].float(), size=sem.shape, mode="nearest")[
                    0, 0
                ].long()
            cm += confusion_matrix(pred, sem, k)
        return EvalResult({"semantic": semantic_metrics(cm, snapshot.class_names)})
    with_masks = task == Task.INSTANCE_SEGMENTATION
    results: list[dict[str, Any]] = []
    for t, o in pairs:
        results += coco_results(o, t["image_id"], task, snapshot.category_ids)
    metrics: dict[str, Any] = {}
    for iou_type in ("bbox", "segm") if with_masks else ("bbox",):
        gt = snapshot.coco_gt(image_ids, iou_type)
        m = coco_evaluate(gt, results, iou_type)
        m["per_class"] = {names[c]: v for c, v in m["per_class"].items()}
        metrics[iou_type] = m
    return EvalResult(metrics, results)


def flatten_metrics(nested: dict[str, Any]) -> dict[str, float]:
    """{"bbox": {"AP": .., "per_class": {"cat": ..}}} -> {"bbox/AP": .., "bbox/AP/cat": ..};
    semantic: {"mIoU": .., "IoU/cat": ..}. Values of -1 (undefined in COCOeval) are kept."""
    flat: dict[str, float] = {}
    for group, values in nested.items():
        prefix = "" if group == "semantic" else group + "/"
        for key, v in values.items():
            if isinstance(v, dict):
                sub = "AP" if key == "per_class" else key
                for name, x in v.items():
                    flat[f"{prefix}{sub}/{name}"] = float(x)
            else:
                flat[prefix + key] = float(v)
    return flat


def primary_metric(task: str) -> str:
    """The flat metric that picks the best checkpoint and drives early stopping."""
    return {Task.DETECTION: "bbox/AP", Task.INSTANCE_SEGMENTATION: "segm/AP"}.get(task, "mIoU")

"""Inference with a trained run: load a checkpoint, predict images, convert the outputs.

Outputs are mapped back to each image's full displayed size, and converted either to
rows for `Project.replace_predictions` (database class ids, boxes as x, y, w, h, masks
as COCO RLE) or to the COCO results format (database image and category ids).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from studio.core.errors import StudioError
from studio.ml.data.dataset import (
    Sample,
    SnapshotDataset,
    build_eval_loader,
    build_transforms,
    load_max_side,
)
from studio.ml.evaluation.coco import masks_to_rles, run_model, sem_labels, to_coco_results
from studio.ml.train.config import TrainConfig
from studio.ml.train.trainer import build_with_state, load_checkpoint, resolve_device

DEFAULT_SCORE_THRESHOLD = 0.05  # COCO's convention: keep low scores, the viewer filters


@dataclass(slots=True)
class LoadedModel:
    """A checkpoint's model in eval mode on `device`, with what is needed to read it."""

    model: torch.nn.Module
    task: str
    class_names: list[str]
    category_ids: list[int]  # database class id of label i + 1
    image_size: int | None
    device: torch.device
    config: TrainConfig
    checkpoint: Path


def load_model(checkpoint: Path, device: str = "auto") -> LoadedModel:
    """Load a Studio checkpoint (best.pt / last.pt) for inference."""
    ckpt = load_checkpoint(Path(checkpoint))
    try:
        cfg = TrainConfig.from_dict(ckpt["config"])
        names = list(ckpt["class_names"])
        cat_ids = [int(c) for c in ckpt["category_ids"]]
    except (KeyError, TypeError) as e:
        raise StudioError(f"{checkpoint}: not a Studio training checkpoint ({e})") from None
    bundle = build_with_state(cfg, len(names), ckpt["model"])
    dev = resolve_device(device)
    model = bundle.model.to(dev).eval()
    return LoadedModel(
        model=model,
        task=str(ckpt.get("task") or bundle.task),
        class_names=names,
        category_ids=cat_ids,
        image_size=ckpt.get("image_size") or bundle.image_size,
        device=dev,
        config=cfg,
        checkpoint=Path(checkpoint),
    )


def predict_samples(
    lm: LoadedModel, samples: Sequence[Sample], *, batch_size: int = 4, workers: int = 0
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(image id, output in full-image pixels, on the CPU) for each sample, in order."""
    # Decoding as "detection" builds no mask targets: inference needs none.
    ds = SnapshotDataset(
        list(samples),
        "detection",
        build_transforms("detection", False),
        load_max_side(lm.image_size),
    )
    loader = build_eval_loader(ds, batch_size=batch_size, workers=workers)
    for target, output in run_model(lm.model, loader, lm.device):
        yield int(target["image_id"]), output


def samples_for_images(images: Sequence[Any]) -> tuple[list[Sample], int]:
    """Samples (no labels) for ImageRecords; returns them and the number of missing files."""
    out, missing = [], 0
    for im in images:
        if not Path(im.abs_path).is_file():
            missing += 1
            continue
        out.append(Sample(im.id, str(im.abs_path), im.width, im.height, [], [], []))
    return out, missing


def _bbox_of_mask(m: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(m)
    if xs.size == 0:
        return None
    return (
        float(xs.min()),
        float(ys.min()),
        float(xs.max() + 1 - xs.min()),
        float(ys.max() + 1 - ys.min()),
    )


def prediction_rows(
    output: dict[str, torch.Tensor],
    image_id: int,
    task: str,
    category_ids: Sequence[int],
    *,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
) -> list[dict[str, Any]]:
    """Rows for `Project.replace_predictions`: image_id, class_id (database id), kind
    ("box", or "mask" with a COCO RLE), bbox (x, y, w, h), rle, score.

    Semantic maps give one "mask" row per class present, scored by its mean probability."""
    rows: list[dict[str, Any]] = []
    if task == "semantic_segmentation":
        labels = sem_labels(output).cpu().numpy()
        probs = None
        if "sem_logits" in output:
            probs = torch.softmax(output["sem_logits"].float(), 0).cpu().numpy()
        for label in np.unique(labels):
            if label <= 0 or label > len(category_ids):
                continue
            m = labels == label
            bbox = _bbox_of_mask(m)
            if bbox is None:
                continue
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            score = float(probs[label][m].mean()) if probs is not None else 1.0
            rows.append(
                {
                    "image_id": image_id,
                    "class_id": int(category_ids[label - 1]),
                    "kind": "mask",
                    "bbox": bbox,
                    "rle": rle,
                    "score": score,
                }
            )
        return rows
    keep = output["scores"] >= score_threshold
    boxes = output["boxes"][keep].float().cpu()
    scores = output["scores"][keep].float().cpu()
    labels = output["labels"][keep].cpu()
    rles = None
    if task == "instance_segmentation" and "masks" in output:
        rles = masks_to_rles(output["masks"][keep])
    for i in range(boxes.shape[0]):
        label = int(labels[i])
        if not 1 <= label <= len(category_ids):
            continue
        x0, y0, x1, y1 = boxes[i].tolist()
        row: dict[str, Any] = {
            "image_id": image_id,
            "class_id": int(category_ids[label - 1]),
            "kind": "box",
            "bbox": (x0, y0, x1 - x0, y1 - y0),
            "score": float(scores[i]),
        }
        if rles is not None:
            row["kind"] = "mask"
            row["rle"] = rles[i]
        rows.append(row)
    return rows


def coco_results(
    output: dict[str, torch.Tensor],
    image_id: int,
    task: str,
    category_ids: Sequence[int],
    *,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
) -> list[dict[str, Any]]:
    """COCO results-format entries (database ids) for one image's output."""
    if task == "semantic_segmentation":
        rows = prediction_rows(output, image_id, task, category_ids)
        return [
            {
                "image_id": r["image_id"],
                "category_id": r["class_id"],
                "bbox": list(r["bbox"]),
                "segmentation": r["rle"],
                "score": r["score"],
            }
            for r in rows
        ]
    return to_coco_results(
        output,
        image_id,
        category_ids,
        with_masks=task == "instance_segmentation",
        score_threshold=score_threshold,
    )

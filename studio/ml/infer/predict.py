"""Inference with a trained run: load a checkpoint, predict images, convert the outputs.

Outputs are mapped back to each image's full displayed size, and converted (through
`evaluation.detections`, the one conversion) either to rows for
`Project.replace_predictions` (database class ids, boxes as x, y, w, h, masks as COCO
RLE) or to the COCO results format (database image and category ids).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.core.errors import StudioError
from studio.ml.data.dataset import SnapshotDataset
from studio.ml.data.loaders import build_eval_loader
from studio.ml.data.snapshot import Sample
from studio.ml.data.transforms import build_transforms, load_max_side
from studio.ml.evaluation.coco import run_model
from studio.ml.evaluation.detections import coco_results, detections
from studio.ml.tasks import Task
from studio.ml.train.checkpoint import build_with_state, load_checkpoint
from studio.ml.train.config import TrainConfig
from studio.ml.train.device import resolve_device

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "LoadedModel",
    "coco_results",
    "load_model",
    "predict_samples",
    "prediction_rows",
    "samples_for_images",
]

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


class _Readable(SnapshotDataset):
    """A sample whose file cannot be decoded (damaged since import) comes back as
    (None, {"image_id", "unreadable": reason}) instead of stopping every image."""

    def __getitem__(self, key: Any) -> tuple[Any, dict[str, Any]]:
        try:
            return super().__getitem__(key)
        except StudioError as e:
            s = self.samples[key if isinstance(key, int) else key[0]]
            return None, {"image_id": s.image_id, "unreadable": str(e)}


def predict_samples(
    lm: LoadedModel,
    samples: Sequence[Sample],
    *,
    batch_size: int = 4,
    workers: int = 0,
    unreadable: list[tuple[int, str]] | None = None,
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(image id, output in full-image pixels, on the CPU) for each sample, grouped by
    image size (`same_size_batches`).
    A sample whose image cannot be decoded is left out and added to `unreadable` as
    (image id, reason)."""
    # Decoding as "detection" builds no mask targets: inference needs none.
    ds = _Readable(
        list(samples),
        Task.DETECTION,
        build_transforms(Task.DETECTION, False),
        load_max_side(lm.image_size),
    )
    loader = build_eval_loader(ds, batch_size=batch_size, workers=workers)

    def readable() -> Iterator[tuple[list[torch.Tensor], list[dict[str, Any]]]]:
        for images, targets in loader:
            for t in targets:
                if "unreadable" in t and unreadable is not None:
                    unreadable.append((int(t["image_id"]), t["unreadable"]))
            kept = [(im, t) for im, t in zip(images, targets, strict=True) if im is not None]
            if kept:
                yield [im for im, _ in kept], [t for _, t in kept]

    for target, output in run_model(lm.model, readable(), lm.device):
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
    for d in detections(output, task, category_ids, score_threshold=score_threshold):
        row: dict[str, Any] = {
            "image_id": image_id,
            "class_id": d.category_id,
            "kind": d.kind,
            "bbox": d.bbox,
            "score": d.score,
        }
        if d.rle is not None:
            row["rle"] = d.rle
        rows.append(row)
    return rows

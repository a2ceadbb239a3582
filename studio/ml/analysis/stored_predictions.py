"""A run's stored predictions, kept up to date: predict only what changed.

Predictions are stored in the database per run (`PredictionRepo`), with every score at or
above the run's score floor (0.05 by default, COCO's convention: the viewer filters).
Which images they are current for is kept in a small JSON index in the run folder
(`predictions_index.json`): the checkpoint they came from (name, size and a digest of
its ends, so a copied or moved project keeps them), the score floor, and each image's
pixel checksum. An image is predicted again when its checksum changed, when it has none
in the index, or when the checkpoint or the floor changed (then every image is). This
needs no schema change; a lost or unreadable index only costs a full re-prediction.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.project import Project
from studio.core.records import ImageRecord, RunRecord

INDEX_NAME = "predictions_index.json"
_EDGE = 64 * 1024  # bytes read from each end of a checkpoint for its fingerprint
SCORE_FLOOR = 0.05  # = studio.ml.infer.predict.DEFAULT_SCORE_THRESHOLD (kept torch-free)


@dataclass(frozen=True, slots=True)
class PredictReport:
    run_id: int
    images: int  # images asked for
    predicted: int  # images run through the model now
    skipped: int  # images whose stored predictions were current
    stored: int  # prediction rows written now
    missing_files: int  # image files not found (left without predictions)
    # (image file, reason) of images that could not be decoded (left without predictions)
    unreadable: tuple[tuple[str, str], ...] = ()


def _fingerprint(checkpoint: Path, score_floor: float) -> dict[str, Any]:
    """What identifies the checkpoint's weights wherever the project lies: its name (from
    the run folder when it is inside it), its size, and a digest of its first and last
    64 KiB. A checkpoint is a zip archive whose central directory, at its end, holds
    the CRC of every tensor record, so the digest changes with the weights, not with
    the path or the modification time a copy of the project gives it."""
    size = checkpoint.stat().st_size
    digest = hashlib.sha1(usedforsecurity=False)
    with open(checkpoint, "rb") as f:
        digest.update(f.read(_EDGE))
        f.seek(max(size - _EDGE, 0))
        digest.update(f.read(_EDGE))
    return {
        "checkpoint": checkpoint.name,
        "size": size,
        "digest": digest.hexdigest(),
        "score_floor": score_floor,
    }


def _read_index(path: Path, fingerprint: dict[str, Any]) -> dict[str, str]:
    """{image id (str): checksum} of the images whose predictions are current."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("model") != fingerprint:
        return {}
    images = data.get("images")
    return images if isinstance(images, dict) else {}


def _write_index(path: Path, fingerprint: dict[str, Any], images: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"model": fingerprint, "images": images}), encoding="utf-8")
    os.replace(tmp, path)


def stale_images(
    run: RunRecord, checkpoint: Path, images: Sequence[ImageRecord], score_floor: float
) -> list[ImageRecord]:
    """The images whose stored predictions are missing or out of date."""
    index = _read_index(run.dir / INDEX_NAME, _fingerprint(checkpoint, score_floor))
    return [im for im in images if index.get(str(im.id)) != im.checksum]


def current_ids(
    run: RunRecord, checkpoint: Path, images: Sequence[ImageRecord], score_floor: float
) -> set[int]:
    """The images the run's model was run on as they are now, whether or not it found
    anything there (an image it found nothing in has no prediction rows)."""
    try:
        fp = _fingerprint(checkpoint, score_floor)
    except OSError:
        return set()
    index = _read_index(run.dir / INDEX_NAME, fp)
    return {im.id for im in images if index.get(str(im.id)) == im.checksum}


def update_predictions(
    project: Project,
    run: RunRecord,
    checkpoint: Path,
    images: Sequence[ImageRecord],
    *,
    device: str = "auto",
    score_floor: float = SCORE_FLOOR,
    batch_size: int = 4,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PredictReport:
    """Predict those of `images` whose stored predictions are stale (all with `force`)
    with the run's `checkpoint`, store them (other images keep theirs) and record them
    in the run's index. Boxes are stored in displayed pixels (x, y, w, h)."""
    # torch is imported only when there is something to predict.
    from studio.ml.infer.predict import (
        load_model,
        predict_samples,
        prediction_rows,
        samples_for_images,
    )

    fp = _fingerprint(checkpoint, score_floor)
    index_path = run.dir / INDEX_NAME
    index = _read_index(index_path, fp)
    todo = list(images) if force else stale_images(run, checkpoint, images, score_floor)
    if not todo:
        return PredictReport(run.id, len(images), 0, len(images), 0, 0)
    samples, missing = samples_for_images(todo)
    class_ids = {c.id for c in project.classes()}
    rows: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    if samples:
        lm = load_model(checkpoint, device)
        pairs = predict_samples(lm, samples, batch_size=batch_size, unreadable=bad)
        for i, (image_id, output) in enumerate(pairs, 1):
            rows += prediction_rows(
                output, image_id, lm.task, lm.category_ids, score_threshold=score_floor
            )
            if progress is not None:
                progress(i, len(samples))
    # A class deleted since training has no row to point at: drop its predictions.
    rows = [r for r in rows if r["class_id"] in class_ids]
    bad_ids = {i for i, _ in bad}
    done = [s.image_id for s in samples if s.image_id not in bad_ids]
    n = project.store.predictions.replace(run.id, rows, image_ids=done)
    checksums = {im.id: im.checksum for im in todo}
    index.update({str(i): checksums[i] for i in done})
    _write_index(index_path, fp, index)
    paths = {s.image_id: s.path for s in samples}
    return PredictReport(
        run.id, len(images), len(done), len(images) - len(todo), n, missing,
        tuple((paths[i], reason) for i, reason in bad),
    )  # fmt: skip


def results_for(project: Project, run_id: int, image_ids: Sequence[int]) -> list[dict]:
    """The stored predictions of `image_ids` in the COCO results format (database image
    and category ids, bbox x, y, w, h, masks as "segmentation" RLE)."""
    out = []
    for r in project.predictions(run_id, image_ids):
        res: dict[str, Any] = {
            "image_id": r["image_id"],
            "category_id": r["class_id"],
            "bbox": list(r["bbox"]),
            "score": r["score"],
        }
        if r.get("rle"):
            res["segmentation"] = r["rle"]
        out.append(res)
    return out

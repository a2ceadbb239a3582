"""Model-assisted labelling: a run's predictions become annotations to review.

`prelabel` adds every stored prediction at or above a score on the chosen images as an
annotation with source "predicted" (its score kept), and marks the images that got one
"needs_review": one command, so one undo removes the shapes and restores the statuses.
Coordinates are pixels of the image as displayed (x, y, w, h boxes, RLE masks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus, ShapeKind, Source
from studio.core.project import Project, make_annotation_row
from studio.core.undo import commands as C
from studio.core.undo.stack import Command
from studio.ml.analysis.matching import image_pairs
from studio.ml.analysis.stored_predictions import update_predictions
from studio.ml.run.runs import find_run, run_checkpoint

if TYPE_CHECKING:
    from studio.core.store import Store

OVERLAP_IOU = 0.5  # --skip-overlapping: a prediction this close to a label is that label


class Prelabel(Command):
    """Add predicted shapes and set their images to "needs_review", as one undo step."""

    def __init__(self, rows: list[dict], image_ids: list[int]):
        self.add = C.AddAnnotations(rows)
        self.status = C.SetImageField(image_ids, "status", ImageStatus.NEEDS_REVIEW)
        self.text = f"pre-label {len(rows)} shapes"

    @property
    def ids(self) -> list[int]:
        return self.add.ids

    def do(self, store: Store) -> None:
        self.add.do(store)
        self.status.do(store)

    def undo(self, store: Store) -> None:
        self.status.undo(store)
        self.add.undo(store)


def annotation_rows(predictions: Sequence[dict[str, Any]]) -> list[dict]:
    """Annotation rows (source "predicted", score kept) for stored prediction rows; a
    box without area (stored by runs before such boxes were left out) is passed over."""
    rows = []
    for r in predictions:
        kind = r.get("kind") or ShapeKind.BOX
        if kind == ShapeKind.BOX and not (r["bbox"][2] > 0 and r["bbox"][3] > 0):
            continue
        rows.append(
            make_annotation_row(
                r["image_id"], r["class_id"], kind, bbox=tuple(r["bbox"]),
                polygons=r.get("polygons"), rle=r.get("rle"),
                source=Source.PREDICTED, score=float(r["score"]),
            )
        )  # fmt: skip
    return rows


def _overlapping(project: Project, preds: list[dict], image_ids: list[int]) -> np.ndarray:
    """Which predictions overlap an existing label of their image at IoU >= 0.5."""
    anns = project.annotations(image_ids)
    if not anns or not preds:
        return np.zeros(len(preds), dtype=bool)
    pairs = image_pairs(
        np.array([r["image_id"] for r in preds], dtype=np.int64),
        np.array([r["bbox"] for r in preds], dtype=np.float64),
        np.array([a.image_id for a in anns], dtype=np.int64),
        np.array([a.bbox for a in anns], dtype=np.float64),
    )
    hit = np.zeros(len(preds), dtype=bool)
    hit[pairs.pred[pairs.iou >= OVERLAP_IOU]] = True
    return hit


def _target_images(
    p: Project, unlabelled: bool, split: str | None, names: Sequence[str] | None
) -> list:
    if sum([unlabelled, split is not None, names is not None]) != 1:
        raise StudioError("choose the images: one of --unlabelled, --split or --images")
    if names is not None:
        from studio.core.splits import resolve_files

        return p.images(ids=resolve_files(p, names))
    if split is not None:
        return p.images(split)
    labelled = {a.image_id for a in p.annotations()}
    return [im for im in p.images() if im.id not in labelled]


def prelabel(
    project: Project,
    run: int | str,
    *,
    unlabelled: bool = False,
    split: str | None = None,
    names: Sequence[str] | None = None,
    score: float = 0.5,
    skip_overlapping: bool = False,
    device: str = "auto",
) -> dict[str, Any]:
    """Pre-label images with a run's predictions (predicting first where stale).
    Returns {"run_id", "images" (targeted), "annotations" (added), "skipped_overlapping",
    "needs_review" (images marked)}; the undo stack holds one `Prelabel` step."""
    if not 0 <= score <= 1:
        raise StudioError(f"--score {score}: must be in [0, 1]")
    rec = find_run(project, run)
    images = _target_images(project, unlabelled, split, names)
    ids = [im.id for im in images]
    if ids:
        update_predictions(project, rec, run_checkpoint(rec), images, device=device)
    preds = [r for r in project.predictions(rec.id, ids) if r["score"] >= score] if ids else []
    skipped = 0
    if skip_overlapping and preds:
        hit = _overlapping(project, preds, ids)
        skipped = int(hit.sum())
        preds = [r for r, h in zip(preds, hit.tolist(), strict=True) if not h]
    rows = annotation_rows(preds)
    marked = sorted({r["image_id"] for r in rows})
    if rows:
        project.execute(Prelabel(rows, marked))
    return {
        "run_id": rec.id,
        "images": len(ids),
        "annotations": len(rows),
        "skipped_overlapping": skipped,
        "needs_review": len(marked),
    }


def prelabel_command(a: Any) -> int:
    """`studio prelabel DIR --run R (--unlabelled | --split S | --images LIST) [--score T]
    [--skip-overlapping]`."""
    names = None
    if a.images is not None:
        src = Path(a.images)
        names = (
            src.read_text(encoding="utf-8").splitlines() if src.is_file() else a.images.split(",")
        )
    with Project.open(a.dir) as p:
        res = prelabel(
            p, a.run, unlabelled=a.unlabelled, split=a.split, names=names, score=a.score,
            skip_overlapping=a.skip_overlapping,
        )  # fmt: skip
    print(f"added {res['annotations']} predicted shapes (score >= {a.score}) on "
          f"{res['needs_review']} of {res['images']} images, now marked needs_review"
          + (f"; {res['skipped_overlapping']} overlapped labels and were skipped"
             if res["skipped_overlapping"] else ""))  # fmt: skip
    return 0

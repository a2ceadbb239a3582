"""The inspection panel's background work, as plain functions of a `Progress`.

They run on a worker thread (`studio.ui.common.concurrency.run_task`), so each opens its
own `Project` (SQLite connections stay on the thread that made them) and hands back plain
data. Prediction imports torch, here and not in the window's thread. No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from studio.core.errors import StudioError
from studio.core.formats.coco_writer import coco_dict
from studio.core.kinds import ImageStatus
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import ImageRecord, RunRecord
from studio.core.store.snapshot import without_unreviewed
from studio.ml.analysis.errors import Detections, ErrorReport, Matching, analyze_errors, match

PREDICT_CHUNK = 64  # images per model pass between cancel checks (the model loads once each)
# Project setting: the Evaluation view's size-band edges (object side, pixels), a list.
SIZE_BANDS_SETTING = "evaluation.size_bands"


class ObjectRef(NamedTuple):
    """One object behind a number: an image and a prediction or annotation of it."""

    image_id: int
    object_id: int
    kind: str  # "prediction" or "label"


@dataclass(frozen=True)
class PredictResult:
    run_id: int
    images: int  # asked for
    predicted: int  # run through the model now
    skipped: int  # already current
    stored: int  # prediction rows written
    missing_files: int = 0  # image files not found (left without predictions)
    unreadable: int = 0  # image files that could not be decoded (left without predictions)


def predict_images(
    project_dir: Path, run_id: int, image_ids: list[int] | None, progress: Progress
) -> PredictResult:
    """Bring the run's stored predictions of `image_ids` (all images: None) up to date,
    in chunks so that Cancel keeps what is done. Raises `Cancelled` when asked to stop."""
    from studio.ml.analysis.stored_predictions import stale_images, update_predictions
    from studio.ml.run.runs import run_checkpoint

    with Project.open(project_dir) as p:
        run = p.run(run_id)
        checkpoint = run_checkpoint(run)
        images = p.images(ids=image_ids) if image_ids is not None else p.images()
        todo = stale_images(run, checkpoint, images, _floor())
        progress.start(len(todo), f"Predicting {len(todo)} images with run {run.name}")
        predicted = stored = missing = unreadable = 0
        for start in range(0, len(todo), PREDICT_CHUNK):
            chunk = todo[start : start + PREDICT_CHUNK]

            def step(done: int, _total: int, base: int = predicted) -> None:
                progress.check()
                progress.done = base + done
                progress.step(0)

            rep = update_predictions(p, run, checkpoint, chunk, progress=step)
            predicted += rep.predicted
            stored += rep.stored
            missing += rep.missing_files
            unreadable += len(rep.unreadable)
        skipped = len(images) - len(todo)
        return PredictResult(run_id, len(images), predicted, skipped, stored, missing, unreadable)


def _floor() -> float:
    from studio.ml.analysis.stored_predictions import SCORE_FLOOR

    return SCORE_FLOOR


def same_scoring(a: ErrorReport, b: ErrorReport) -> bool:
    """Whether two reports scored the same images, labels (ids, classes, boxes) and
    predictions: AP and the error breakdown of one then hold for the other (an image
    without labels marked done, or moved into the split, changes the predictions alone)."""
    la, lb, da, db = a.labels, b.labels, a.dets, b.dets
    return (
        np.array_equal(la.ann_id, lb.ann_id)
        and np.array_equal(la.class_id, lb.class_id)
        and np.array_equal(la.box, lb.box)
        and np.array_equal(da.pred_id, db.pred_id)
        and _image_ids(a) == _image_ids(b)
    )


def _image_ids(report: ErrorReport) -> set[int]:
    return {im["id"] for im in (report.gt or {}).get("images", [])}


def evaluation_images(p: Project, run_id: int, split: str | None) -> tuple[dict, list[dict]]:
    """(COCO ground truth, prediction rows) of the images that can be scored: in `split`
    (all: None), labelled or marked done, and with stored predictions of the run. Shapes
    pre-labelled on images waiting for review are no labels (`without_unreviewed`)."""
    from studio.ml.run.runs import split_snapshot

    # The model's own output is no truth; "val" without val images: the held-out ones.
    run = p.run(run_id)
    snap = without_unreviewed(split_snapshot(p, run, split))
    rows = p.predictions(run_id, [im.id for im in snap.images])
    # Images the model ran on: those it found something in, and those it found nothing
    # in (their labels are all missed; left out, they made recall and AP look better).
    predicted = {r["image_id"] for r in rows} | _ran_on(run, snap.images)
    labelled = {a.image_id for a in snap.annotations}
    snap.images[:] = [
        im for im in snap.images
        if im.id in predicted and (im.id in labelled or im.status == ImageStatus.DONE)
    ]  # fmt: skip
    keep = {im.id for im in snap.images}
    snap.annotations[:] = [a for a in snap.annotations if a.image_id in keep]
    return coco_dict(snap), [r for r in rows if r["image_id"] in keep]


def _ran_on(run: RunRecord, images: list[ImageRecord]) -> set[int]:
    from studio.ml.analysis.stored_predictions import current_ids
    from studio.ml.run.runs import run_checkpoint

    try:
        checkpoint = run_checkpoint(run)
    except StudioError:  # no weights on disk: only the stored rows tell
        return set()
    return current_ids(run, checkpoint, images, _floor())


def evaluate(
    project_dir: Path,
    run_id: int,
    *,
    split: str | None,
    iou: float,
    score: float,
    with_ap: bool = True,
    progress: Progress | None = None,
) -> ErrorReport:
    """The run's errors against the labels (see `evaluation_images` for which images),
    on masks when the run predicts masks, else on boxes. AP and the TIDE breakdown
    (which do not depend on `score`) only `with_ap`; AP with the project's size bands."""
    with Project.open(project_dir) as p:
        gt, rows = evaluation_images(p, run_id, split)
        bands = saved_size_bands(p)
    if not gt["images"]:
        raise StudioError(
            f"{project_dir}: no labelled images with predictions of run {run_id}; predict first"
        )
    if progress is not None:
        progress.check()
    return analyze_errors(
        gt, Detections.from_rows(rows), iou=iou, score=score, with_ap=with_ap,
        with_tide=with_ap, size_bands=bands,
    )  # fmt: skip


def saved_size_bands(p: Project) -> dict[str, tuple[float, float]]:
    """The project's size bands (label -> area range); none when unset or unreadable
    (a setting written by hand must not stop an evaluation)."""
    from studio.ml.analysis.size_bands import SizeBandsError, bands_from_edges, parse_size_edges

    edges = p.get_setting(SIZE_BANDS_SETTING, []) or []
    try:
        return bands_from_edges(parse_size_edges(" ".join(str(v) for v in edges)))
    except (SizeBandsError, TypeError):
        return {}


def _matching(report: ErrorReport) -> Matching:
    """The report's matching before any score threshold (made again for a report built
    without it), on the report's IoU type."""
    if report.matching is not None:
        return report.matching
    return match(report.labels, report.dets, report.iou, report.pairs)


def pr_curve(report: ErrorReport, class_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, score) along one class's predictions, best score first, at the
    report's IoU; every stored prediction counts (the threshold is a point on it).
    Predictions COCO ignores (matched to crowd labels, past the 100 per image) are
    left out; recall is over the class's non-crowd labels."""
    d, lab = report.dets, report.labels
    # The report's counts keep matches above its threshold only: use the full matching.
    m = _matching(report)
    sel = (d.class_id == class_id) & m.pred_kept & ~m.pred_crowd
    score, tp = d.score[sel], (m.pred_label >= 0)[sel]
    order = np.argsort(-score, kind="stable")
    score, tp = score[order], tp[order]
    n_pos = int(((lab.class_id == class_id) & ~lab.crowd).sum())
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(tp) + 1)
    recall = ctp / n_pos if n_pos else np.zeros(len(tp))
    return recall, precision, score


def pr_point_refs(report: ErrorReport, class_id: int, score: float) -> list[ObjectRef]:
    """The objects behind one point of a class's PR curve (the operating point at
    threshold `score`): its false positives, the labels still missed there, then its
    true positives. Predictions are those of the class with score >= `score` that the
    curve counts (not matched to a crowd label, among the 100 best of their image);
    a label is missed when no such prediction matched it."""
    d, lab = report.dets, report.labels
    m = _matching(report)
    sel = (d.class_id == class_id) & m.pred_kept & ~m.pred_crowd & (d.score >= score)
    tp = sel & (m.pred_label >= 0)
    fp = sel & (m.pred_label < 0)
    found = np.zeros(len(lab.ann_id), dtype=bool)
    found[m.pred_label[tp]] = True
    missed = (lab.class_id == class_id) & ~lab.crowd & ~found

    def preds(mask: np.ndarray) -> list[ObjectRef]:
        # Best score first: the order the curve walks them in.
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-d.score[idx], kind="stable")]
        return refs(list(zip(d.image_id[idx].tolist(), d.pred_id[idx].tolist(), strict=True)),
                    "prediction")  # fmt: skip

    labels = list(zip(lab.image_id[missed].tolist(), lab.ann_id[missed].tolist(), strict=True))
    return preds(fp) + refs(labels, "label") + preds(tp)


def refs(pairs: list[tuple[int, int]], kind: str) -> list[ObjectRef]:
    return [ObjectRef(int(i), int(o), kind) for i, o in pairs]


def cell_refs(report: ErrorReport, row: int, col: int) -> list[ObjectRef]:
    """The objects of one confusion cell: its predictions, then its labels."""
    items = report.cell_items(row, col)
    return refs(items["predictions"], "prediction") + refs(items["labels"], "label")


def error_refs(report: ErrorReport, error: str) -> list[ObjectRef]:
    """The objects of one TIDE error type ("cls", "loc", "both", "dupe", "bkg": the
    predictions; "miss": the labels)."""
    from studio.ml.analysis.tide import ERROR_NAMES

    tide = report.tide
    if tide is None:
        return []
    if error == "miss":
        sel = tide.label_missed
        return refs(list(zip(report.labels.image_id[sel].tolist(),
                             report.labels.ann_id[sel].tolist(), strict=True)), "label")  # fmt: skip
    code = next(k for k, v in ERROR_NAMES.items() if v == error)
    sel = tide.pred_error == code
    pairs = zip(report.dets.image_id[sel].tolist(), report.dets.pred_id[sel].tolist(), strict=True)
    return refs(list(pairs), "prediction")


def class_refs(report: ErrorReport, class_id: int | None) -> list[ObjectRef]:
    """Everything counted in a table row: its false positives, misses, then true
    positives (what a user reviews first comes first)."""
    return (
        refs(report.items("fp", class_id), "prediction")
        + refs(report.items("fn", class_id), "label")
        + refs(report.items("tp", class_id), "prediction")
    )


def summary(report: ErrorReport) -> dict[str, Any]:
    """The numbers the panel shows at the top."""
    return {"images": len(set(report.labels.image_id.tolist()) | set(report.dets.image_id.tolist())),
            **report.total()}  # fmt: skip

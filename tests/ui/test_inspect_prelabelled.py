"""Shapes a model pre-labelled on an image waiting for review are the model's own output:
the Inspect overlay, the evaluation and the zoom table do not count them as labels
(a prediction matched its own copy as a true positive) until the review is marked done."""

from __future__ import annotations

from studio.core.kinds import ImageStatus, Source
from studio.ml.analysis.zoom_objects import InputResize, object_sizes
from studio.ui.analysis.work import evaluation_images
from tests.ui.test_inspect import (  # noqa: F401
    chosen_run,
    first_image_shown,
    project,
    synthetic_run,
    ui,
)


def test_the_overlay_counts_pre_labelled_shapes_only_once_reviewed(ui, project, qtbot):  # noqa: F811
    win, canvas, dock = ui
    chosen_run(project, dock)
    image = first_image_shown(project, canvas)
    dock.slider.setValue(50)
    layer = canvas.layer("predictions")
    before = layer.counts()
    # The model's background box (an FP) pre-labelled on the image, now waiting for review.
    cid = project.classes()[0].id
    project.add_annotation(image.id, cid, "box", bbox=(2, 2, 6, 6), source=Source.PREDICTED,
                           score=0.6)  # fmt: skip
    project.set_status([image.id], ImageStatus.NEEDS_REVIEW)
    qtbot.wait(50)
    layer.reload_labels()
    assert layer.counts() == before  # still an FP, not a TP against itself
    project.set_status([image.id], ImageStatus.DONE)  # reviewed: a label now
    want = {"tp": before["tp"] + 1, "fp": before["fp"] - 1, "fn": before["fn"]}
    qtbot.waitUntil(lambda: layer.counts() == want, timeout=5000)


def test_evaluation_and_zoom_leave_out_shapes_waiting_for_review(project):  # noqa: F811
    run_id = synthetic_run(project)
    image = project.images()[1]
    project.delete_annotations([a.id for a in project.annotations(image_ids=[image.id])])
    cid = project.classes()[0].id
    ann = project.add_annotation(image.id, cid, "box", bbox=(2, 2, 6, 6),
                                 source=Source.PREDICTED, score=0.6)  # fmt: skip
    project.set_status([image.id], ImageStatus.NEEDS_REVIEW)
    gt, _rows = evaluation_images(project, run_id, None)
    assert image.id not in {im["id"] for im in gt["images"]}
    assert ann not in {a["id"] for a in gt["annotations"]}
    resize = InputResize(fixed=320)
    assert ann not in {s.annotation_id for s in object_sizes(project, resize)}
    project.set_status([image.id], ImageStatus.DONE)
    gt, _rows = evaluation_images(project, run_id, None)
    assert image.id in {im["id"] for im in gt["images"]}
    assert ann in {s.annotation_id for s in object_sizes(project, resize)}


def test_edits_read_no_labels_for_the_overlay_without_a_run(ui, project, qtbot, monkeypatch):  # noqa: F811
    win, canvas, dock = ui
    image = first_image_shown(project, canvas)
    layer = canvas.layer("predictions")
    reads = []
    monkeypatch.setattr(layer, "_truth", lambda: reads.append(1) or [])
    ann = project.annotations(image_ids=[image.id])[0]
    x, y, w, h = ann.bbox
    project.update_annotation(ann.id, bbox=(x + 1, y, w, h))
    qtbot.wait(100)
    assert reads == []  # no run chosen: nothing to match
    chosen_run(project, dock)
    reads.clear()
    project.update_annotation(ann.id, bbox=(x + 2, y, w, h))
    qtbot.waitUntil(lambda: len(reads) > 0, timeout=5000)


def test_ap_and_the_breakdown_follow_a_label_edit(ui, project, qtbot):  # noqa: F811
    """The recount after a label edit kept the old AP and error breakdown: the AP of a
    class without labels stayed, and clicking "missed" raised IndexError (the breakdown
    was sized to the old labels)."""
    from studio.ui.analysis.work import error_refs
    from tests.ui.test_inspect import wait_report

    win, canvas, dock = ui
    chosen_run(project, dock)
    dock.eval_split.setCurrentText("all images")
    wait_report(qtbot, dock)
    before = len(dock.report.labels.ann_id)
    gone = [a.id for a in project.annotations()][:5]
    project.delete_annotations(gone)
    old = dock.report
    dock.evaluate(full=False)  # what the recount after an edit does
    qtbot.waitUntil(lambda: dock.report is not old, timeout=30_000)
    # Another recount before the full evaluation that one asked for came back (it is
    # superseded): its counts-only report must not take the first recount's (none) as
    # its AP and breakdown.
    dock.evaluate(full=False)
    qtbot.waitUntil(
        lambda: dock.report.tide is not None
        and len(dock.report.tide.label_missed) == before - 5, timeout=30_000,
    )  # fmt: skip
    missed = error_refs(dock.report, "miss")
    assert all(ref.object_id not in gone for ref in missed)


def test_predict_split_and_evaluate_default_to_the_same_split(ui):  # noqa: F811
    win, canvas, dock = ui
    assert dock.bar.split.currentText() == dock.eval_split.currentText() == "val"


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_accept_all_adds_no_copy_of_a_label_or_of_another_prediction(ui, project, qtbot):  # noqa: F811
    """Accept all shown added the true positives again (and duplicates of them): the
    labels they copied then counted as missed."""
    win, canvas, dock = ui
    run_id = chosen_run(project, dock)
    image = first_image_shown(project, canvas)
    rows = project.predictions(run_id, [image.id])
    (bkg,) = [r for r in rows if r["score"] == 0.6]
    twin = {**bkg, "bbox": (bkg["bbox"][0] + 0.5, *bkg["bbox"][1:]), "score": 0.55}
    others = project.predictions(run_id)
    project.replace_predictions(run_id, [{k: v for k, v in r.items() if k != "id"}
                                         for r in [*others, twin]])  # fmt: skip
    dock.slider.setValue(50)
    canvas.layer("predictions").reload()
    old = project.annotations(image_ids=[image.id])
    added = dock.review.accept_all()
    new = project.annotations(ids=added)
    assert len(new) == 2  # the background box once, and the confusion (another class)
    for a in new:
        assert all(_iou(a.bbox, o.bbox) < 0.5 for o in old if o.class_id == a.class_id)
    assert {a.bbox for a in new} >= {tuple(bkg["bbox"])}


def test_ap_follows_an_image_without_labels_joining_the_evaluation(ui, project, qtbot):  # noqa: F811
    """An image without labels but with predictions, marked done, changes the predictions
    scored but not the labels: the recount kept the old AP, and clicking "bkg" raised
    IndexError (the breakdown was sized to the old predictions)."""
    from studio.ui.analysis.work import error_refs
    from tests.ui.test_inspect import wait_report

    win, canvas, dock = ui
    run_id = chosen_run(project, dock)
    dock.eval_split.setCurrentText("all images")
    image = project.images()[2]
    project.delete_annotations([a.id for a in project.annotations(image_ids=[image.id])])
    project.set_status([image.id], ImageStatus.NEW)  # unlabelled, not done: not scored
    wait_report(qtbot, dock)
    n_preds = len(dock.report.dets.pred_id)
    old = dock.report
    project.set_status([image.id], ImageStatus.DONE)  # a negative image now: scored
    dock.evaluate(full=False)
    added = len(project.predictions(run_id, [image.id]))
    qtbot.waitUntil(lambda: dock.report is not old and dock.report.tide is not None
                    and len(dock.report.tide.pred_error) == n_preds + added, timeout=30_000)  # fmt: skip
    error_refs(dock.report, "bkg")  # no IndexError


def test_accept_all_skips_a_duplicate_of_a_true_positive(ui, project, qtbot):  # noqa: F811
    """B overlaps the true positive A (IoU 0.54) but the label A found only at 0.25: it
    was accepted as a new object."""
    win, canvas, dock = ui
    run_id = chosen_run(project, dock)
    image = first_image_shown(project, canvas)
    label = project.annotations(image_ids=[image.id])[-1]
    x, y, w, h = label.bbox
    a = dict(image_id=image.id, class_id=label.class_id, bbox=(x + 0.3 * w, y, w, h), score=0.95)
    b = dict(image_id=image.id, class_id=label.class_id, bbox=(x + 0.6 * w, y, w, h), score=0.85)
    project.replace_predictions(run_id, [a, b])
    dock.slider.setValue(50)
    canvas.layer("predictions").reload()
    assert dock.review.accept_all() == []  # A is on the label, B on A

"""The Evaluation view: a mouse click on a PR-curve point lists the objects behind that
operating point, its hover text gives score, precision and recall; the size-band field
adds AP[band] columns (pycocotools' numbers), refuses bad text with a visible message,
and is saved in the project's settings."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from studio.core.project import Project
from studio.ml.analysis.errors import Detections, analyze_errors
from studio.ml.analysis.size_bands import band_aps, bands_from_edges
from studio.ui.analysis.evaluation import EvaluationView
from studio.ui.analysis.work import SIZE_BANDS_SETTING, ObjectRef

A, B = 1, 2


def _report():
    """Image 1: labels 11, 12, 13 of class a (10 x 10, 20 x 20, 40 x 40 px); predictions
    of a scored 0.9 (on 11: TP), 0.8 (background: FP), 0.7 (on 12: TP), 0.6 (FP);
    one label 14 of class b (6 x 6) and its TP 0.95."""
    gt = {
        "images": [{"id": 1, "width": 200, "height": 200}],
        "categories": [{"id": A, "name": "a"}, {"id": B, "name": "b"}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": c, "bbox": [x, y, s, s], "area": s * s,
             "iscrowd": 0, "segmentation": []}
            for i, c, x, y, s in ((11, A, 0, 0, 10), (12, A, 50, 0, 20), (13, A, 100, 100, 40),
                                  (14, B, 0, 150, 6))
        ],
    }  # fmt: skip
    rows = [(A, 0, 0, 10, 10, 0.9), (A, 150, 20, 10, 10, 0.8), (A, 50, 0, 20, 20, 0.7),
            (A, 160, 60, 10, 10, 0.6), (B, 0, 150, 6, 6, 0.95)]  # fmt: skip
    a = np.array(rows, dtype=np.float64)
    dets = Detections(np.ones(len(a), np.int64), np.arange(1, len(a) + 1),
                      a[:, 0].astype(np.int64), a[:, 1:5].copy(), a[:, 5].copy())  # fmt: skip
    return analyze_errors(gt, dets, iou=0.5, score=0.3)


@pytest.fixture
def view(qtbot):
    v = EvaluationView()
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.set_colors({A: "#1f77b4", B: "#ff7f0e"})
    v.set_report(_report())
    v.views.setCurrentWidget(v.pr)
    v.show()
    qtbot.waitExposed(v)
    yield v
    QThreadPool.globalInstance().waitForDone(30_000)


def _click_point(view: EvaluationView, class_id: int, index: int) -> None:
    """A real mouse click at a PR point, mapped from data to widget pixels."""
    pt = view.pr_points[class_id].points()[index]
    vb = view.pr.getPlotItem().getViewBox()
    at = view.pr.mapFromScene(vb.mapViewToScene(QPointF(pt.pos().x(), pt.pos().y())))
    QTest.mouseClick(view.pr.viewport(), Qt.MouseButton.LeftButton, pos=at)


def test_clicking_a_pr_point_lists_its_objects(view, qtbot):
    points = view.pr_points[A].points()
    # Curve of class a, best score first: (recall, precision) = (1/3, 1), (1/3, 1/2),
    # (2/3, 2/3), (2/3, 1/2).
    assert [(round(p.pos().x(), 3), round(p.pos().y(), 3)) for p in points] == [
        (0.333, 1.0), (0.333, 0.5), (0.667, 0.667), (0.667, 0.5)]  # fmt: skip
    with qtbot.waitSignal(view.objects_chosen, timeout=2000) as sig:
        _click_point(view, A, 1)  # the point of score 0.8
    # Its false positive, the labels still missed at score >= 0.8 (12 is found only at
    # 0.7), then its true positive; nothing of class b.
    assert sig.args[0] == [
        ObjectRef(1, 2, "prediction"), ObjectRef(1, 12, "label"), ObjectRef(1, 13, "label"),
        ObjectRef(1, 1, "prediction"),
    ]  # fmt: skip
    with qtbot.waitSignal(view.objects_chosen, timeout=2000) as sig:
        _click_point(view, A, 3)  # the last point: every prediction of a
    assert sig.args[0] == [
        ObjectRef(1, 2, "prediction"), ObjectRef(1, 4, "prediction"), ObjectRef(1, 13, "label"),
        ObjectRef(1, 1, "prediction"), ObjectRef(1, 3, "prediction"),
    ]  # fmt: skip
    # Hover text: score, precision and recall of the point.
    scatter = view.pr_points[A]
    p = points[2]
    tip = scatter.opts["tip"](x=p.pos().x(), y=p.pos().y(), data=p.data())
    assert "a: score ≥ 0.700" in tip and "precision 0.667" in tip and "recall 0.667" in tip


def _headers(view: EvaluationView) -> list[str]:
    t = view.classes
    return [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())]


def test_size_band_field_adds_columns_and_persists(view, qtbot, tmp_path):
    project = Project.create(tmp_path / "p")
    try:
        view.set_project(project)
        field = view.bands
        QTest.keyClicks(field.edit, "8, 16, 32")
        QTest.keyClick(field.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: "AP[<8]" in _headers(view), timeout=10_000)
        cols = ["AP[<8]", "AP[8-16]", "AP[16-32]", "AP[>32]"]
        assert _headers(view)[7:11] == cols and _headers(view)[-3:] == ["TP", "FP", "FN"]
        assert project.get_setting(SIZE_BANDS_SETTING) == [8.0, 16.0, 32.0]
        # The "all" row shows pycocotools' band APs (class means).
        expected = band_aps(view.report, bands_from_edges([8, 16, 32]))["all"]
        row = view.classes.rowCount() - 1
        for c, col in enumerate(cols, 7):
            want = expected[f"ap_{col[3:-1]}"]
            assert view.classes.item(row, c).text() == (f"{want:.3f}" if want >= 0 else "–")
        assert view.classes.item(row, 7).text() == "1.000"  # the 6 x 6 label of b, found

        # Invalid text: red, a visible message and tooltip; refused (nothing changes).
        field.edit.clear()
        QTest.keyClicks(field.edit, "8, x")
        assert field.error.isVisible() and field.error.text() == "Size bands: 'x' is not a number"
        assert "d0021b" in field.edit.styleSheet() and "'x' is not a number" in field.edit.toolTip()
        QTest.keyClick(field.edit, Qt.Key.Key_Return)
        assert project.get_setting(SIZE_BANDS_SETTING) == [8.0, 16.0, 32.0]
        assert _headers(view)[7:11] == cols
        field.edit.clear()
        QTest.keyClicks(field.edit, "8")
        assert not field.error.isVisible() and field.edit.styleSheet() == ""

        # Saved: another view of the project (found through its panel) shows the bands.
        holder = QWidget()
        holder.project = project  # as the Inspect dock holds it
        qtbot.addWidget(holder)
        other = EvaluationView(holder)
        other.set_report(None)
        assert other.bands.edit.text() == "8, 16, 32"
    finally:
        project.close()


def test_the_inspect_dock_evaluates_with_the_saved_bands(qtbot, tmp_path):
    """Bands saved in the project: the dock's view shows them once the project opens (no
    extra wiring) and a full evaluation has their columns, pycocotools' numbers."""
    from studio.core.demo import create_demo_project
    from studio.ui.analysis.dock import InspectDock

    p = create_demo_project(tmp_path / "demo", n_images=6, seed=0, image_size=(320, 240))
    dock = InspectDock()
    qtbot.addWidget(dock)
    try:
        run = p.create_run("synthetic", "none", "detection", {})
        rows = [dict(image_id=a.image_id, class_id=a.class_id, bbox=a.bbox, score=0.8)
                for a in p.annotations()]  # fmt: skip
        p.replace_predictions(run.id, rows)
        p.set_setting(SIZE_BANDS_SETTING, [24, 48])
        dock.set_project(p)
        assert dock.evaluation.bands.edit.text() == "24, 48"
        dock.bar.reload_runs()
        dock.bar.set_run(run.id)
        dock.eval_split.setCurrentText("all images")
        dock.evaluate(full=True)
        qtbot.waitUntil(lambda: dock.report is not None, timeout=30_000)
        view = dock.evaluation
        assert _headers(view)[7:10] == ["AP[<24]", "AP[24-48]", "AP[>48]"]
        assert dock.report.aps["all"]["ap_24-48"] == pytest.approx(1.0)  # exact copies
    finally:
        dock.shutdown()
        QThreadPool.globalInstance().waitForDone(30_000)
        p.close()

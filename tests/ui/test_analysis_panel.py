"""The Analysis dock: the zoom-scale view (IDEAS.md's table, clickable histograms, the
measured AP live per zoom, cancel) and the activation-map view (computed off the GUI
thread, shown on the canvas's heatmap layer at the image's size)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import make_project, wait_until  # noqa: E402

from studio.core.kinds import ShapeKind  # noqa: E402
from studio.core.project import Project  # noqa: E402
from studio.ml.analysis.zoom_objects import CELL_BINS  # noqa: E402
from studio.ui.analysis.analysis_dock import AnalysisDock  # noqa: E402
from studio.ui.analysis.cam_work import PanelMethod  # noqa: E402
from studio.ui.canvas import CanvasView  # noqa: E402

IDEAS_TABLE = [  # IDEAS.md: a 64-px box at 640 on P3/8, P4/16, P5/32
    ["1.000", "640", "64", "8", "4", "2"],
    ["0.800", "512", "51.2", "6.4", "3.2", "1.6"],
    ["0.567", "362", "36.2", "4.5", "2.3", "1.1"],
    ["0.400", "256", "25.6", "3.2", "1.6", "0.8"],
    ["0.280", "179", "17.9", "2.2", "1.1", "0.56"],
]


@pytest.fixture
def boxes_project(tmp_path):
    """Two 640x640 images; boxes of 4, 12, 24 and 64 px (sides) on the first, 6 px on
    the second: at the composable detector's input (640) known cells on each level."""
    project, ids = make_project(tmp_path, [(640, 640), (640, 640)])
    cid = project.add_class("thing")
    anns = {}
    for side, image in ((4, 0), (12, 0), (24, 0), (64, 0), (6, 1)):
        anns[side] = project.add_annotation(
            ids[image], cid, ShapeKind.BOX, bbox=(10.0, 10.0, float(side), float(side))
        )
    yield project, ids, anns
    project.close()


@pytest.fixture
def dock(qtbot):
    d = AnalysisDock()
    qtbot.addWidget(d)
    d.resize(700, 900)
    yield d
    d.shutdown()


def table_text(table) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def analyse(qtbot, panel) -> None:
    panel.analyse()
    qtbot.waitUntil(lambda: not panel.busy and panel.result is not None, timeout=60_000)


def test_static_table_is_ideas_table_for_a_64px_box_at_640(qtbot, dock, boxes_project):
    project, _, _ = boxes_project
    panel = dock.zoom
    panel.set_project(project)
    panel.set_model("model", "composable")
    panel.image_size.setValue(640)
    panel.box.setValue(64)
    analyse(qtbot, panel)
    heads = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert heads == ["zoom", "image", "box (px)", "cells on P3/8", "on P4/16", "on P5/32"]
    assert table_text(panel.table) == IDEAS_TABLE
    flagged = [(r, c) for r in range(5) for c in range(6) if panel.table.item(r, c).toolTip()]
    assert flagged == [(3, 5), (4, 5)]  # 0.8 and 0.56 cells on P5: below one cell
    assert "At input 640" in panel.advice.text()


def test_a_short_dock_scrolls_the_zoom_view_instead_of_overlapping_its_rows(
    qtbot, dock, boxes_project
):
    """In a dock 440 px tall the tables' pane was squeezed below its rows: the last row of
    the zoom table was drawn under the per-class heading, the tinted cells unreadable in
    the dark theme."""
    project, _, _ = boxes_project
    panel = dock.zoom
    panel.set_project(project)
    panel.set_model("model", "composable")
    dock.resize(520, 440)
    dock.show()
    analyse(qtbot, panel)
    qtbot.wait(100)
    stacked = [panel.box_label, panel.table, panel.classes, panel.advice]
    tops = [w.mapTo(panel, w.rect().topLeft()).y() for w in stacked]
    bottoms = [w.mapTo(panel, w.rect().bottomLeft()).y() for w in stacked]
    assert all(bottoms[i] < tops[i + 1] for i in range(len(stacked) - 1)), (tops, bottoms)
    assert panel.table.height() >= panel.table.minimumHeight()
    tinted = next(panel.table.item(r, c) for r in range(5) for c in range(6)
                  if panel.table.item(r, c).toolTip())  # fmt: skip
    assert tinted.foreground().color().lightness() < 100  # dark text on the light tint


def test_clicking_a_histogram_bar_emits_its_objects(qtbot, dock, boxes_project):
    project, ids, anns = boxes_project
    panel = dock.zoom
    panel.set_project(project)
    panel.set_model("model", "composable")
    analyse(qtbot, panel)
    panel.show()
    qtbot.waitExposed(panel)
    hist = panel.histogram
    # At zoom 1 on P3/8: 4 px = 0.5 cell and 6 px = 0.75 ("0.5-1"), 12 px = 1.5 ("1-2"),
    # 24 px = 3 ("2-4"), 64 px = 8 ("8-16").
    assert hist.counts[0] == [0, 2, 1, 1, 0, 1, 0]
    emitted = []
    dock.objects_chosen.connect(emitted.append)
    pos = hist.bar_pos(0, CELL_BINS.index("0.5-1")).toPoint()
    QTest.mouseClick(hist.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    qtbot.waitUntil(lambda: len(emitted) == 1, timeout=3000)
    refs = emitted[0]
    assert sorted((r.image_id, r.object_id) for r in refs) == sorted(
        [(ids[0], anns[4]), (ids[1], anns[6])]
    )
    assert all(r.kind == "label" for r in refs)
    # At zoom 0.28 (179 px) the 4, 6 and 12 px objects shrink below half a P3 cell, the
    # 24 px one to 0.84 cell.
    panel.hist_zoom.setCurrentIndex(4)
    assert hist.counts[0][:3] == [3, 1, 0]
    pos = hist.bar_pos(0, 0).toPoint()
    QTest.mouseClick(hist.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(pos))
    qtbot.waitUntil(lambda: len(emitted) == 2, timeout=3000)
    assert sorted(r.object_id for r in emitted[1]) == sorted([anns[4], anns[6], anns[12]])


# --- with a trained run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    import tests.ml.conftest  # noqa: F401 - registers the tiny models
    from tests.ml.test_cam import planted_run

    return planted_run(tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_measured_view_plots_one_point_per_zoom_live(qtbot, dock, planted):
    with Project.open(planted) as project:
        panel = dock.zoom
        panel.set_project(project)
        panel.set_model("run", 1)
        view = panel.measured
        view.device = "cpu"
        counts = []

        def plotted(curve) -> None:
            xs = curve.getData()[0]
            counts.append(0 if xs is None else len(xs))

        view.curves["all"].sigPlotChanged.connect(plotted)
        view.measure()
        qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
        assert [r.zoom for r in view.results] == [1.0, 0.8, 0.567, 0.4, 0.28]
        # Live: the curve grew one point at a time as each zoom finished.
        assert [n for n in counts if n] == [1, 2, 3, 4, 5]
        xs, ys = view.curves["all"].getData()
        assert list(xs) == sorted([1.0, 0.8, 0.567, 0.4, 0.28])
        assert ys[-1] > ys[0]  # AP at zoom 1 above AP at zoom 0.28
        out = Path(project.path) / "zoom.csv"
        view.export_csv(out)
        assert len(out.read_text().splitlines()) == 1 + 5 * 4

        # Cancel as the first zoom finishes (on the worker, so no zoom can slip past it):
        # the evaluation stops at its next image; the finished zoom stays plotted.
        stop = lambda _result: view.task.cancel()  # noqa: E731
        view._relay.scale_done.connect(stop, Qt.ConnectionType.DirectConnection)
        view.measure()
        qtbot.waitUntil(lambda: not view.busy, timeout=60_000)
        qtbot.waitUntil(lambda: view.status.text().startswith("Cancelled"), timeout=5000)
        assert [r.zoom for r in view.results] == [1.0]
        assert len(view.curves["all"].getData()[0]) == 1
        panel.set_project(None)


def canvas_with_dock(qtbot, dock: AnalysisDock, project: Project) -> CanvasView:
    """A shown canvas on `project` whose heatmap layer `dock` draws on."""
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.resize(500, 500)
    canvas.show()
    canvas.set_project(project)
    dock.attach_canvas(canvas)
    dock.set_project(project)
    return canvas


@pytest.mark.slow
def test_cam_view_computes_off_the_gui_thread_and_shows_the_map(qtbot, dock, planted, tmp_path):
    threads = []
    from studio.ui.analysis import cam_work

    real = cam_work.CamService.compute

    def spy(self, ask, progress):
        threads.append(threading.current_thread())
        return real(self, ask, progress)

    cam_work.CamService.compute = spy
    try:
        with Project.open(planted) as project:
            canvas = canvas_with_dock(qtbot, dock, project)
            dock.tabs.setCurrentWidget(dock.cam)
            dock.show()
            panel, layer = dock.cam, canvas.layer("heatmap")
            qtbot.waitUntil(lambda: panel.layers is not None, timeout=60_000)
            image = project.images()[0]
            canvas.image_shown.connect(dock.show_image)
            canvas.show_image(image.id)
            qtbot.waitUntil(lambda: layer.has_map, timeout=60_000)
            assert threads and all(t is not threading.main_thread() for t in threads)
            rect = layer.item.sceneBoundingRect()
            assert (rect.width(), rect.height()) == (image.width, image.height)
            assert (rect.x(), rect.y()) == (0, 0)
            assert not layer.item.pixmap().isNull() and layer.item.isVisible()
            assert layer.item.zValue() < canvas.layer("annotations").z

            panel.opacity.setValue(80)
            assert layer.item.opacity() == pytest.approx(0.8)
            panel.colormap.setCurrentText("viridis")
            assert layer.colormap == "viridis"

            # Grad-CAM of the top prediction: the title names its box.
            panel.method.setCurrentIndex(panel.method.findData(PanelMethod.GRADCAM))
            qtbot.waitUntil(lambda: panel.result is not None
                            and panel.result.ask.method == PanelMethod.GRADCAM, timeout=60_000)  # fmt: skip
            assert "box 0" in panel.status.text()
            out = tmp_path / "cam.png"
            panel.export_png(out)
            from PIL import Image

            assert Image.open(out).size == (image.width, image.height)

            # Another image: the old map goes at once, the new one comes.
            other = project.images()[1]
            canvas.show_image(other.id)
            assert layer.map_image_id in (None, other.id)
            qtbot.waitUntil(lambda: layer.map_image_id == other.id, timeout=60_000)
            dock.shutdown()
            canvas.shutdown()
    finally:
        cam_work.CamService.compute = real


@pytest.mark.slow
def test_no_model_and_no_map_while_the_dock_is_hidden_or_on_another_tab(qtbot, dock, planted):
    """A project with a trained run drew an EigenCAM over the labelling canvas at every
    image with the Analysis dock closed (and paid a forward pass for each)."""
    with Project.open(planted) as project:
        canvas = canvas_with_dock(qtbot, dock, project)
        canvas.image_shown.connect(dock.show_image)
        panel, layer = dock.cam, canvas.layer("heatmap")
        first, second = project.images()[:2]
        dock.tabs.setCurrentWidget(dock.cam)
        canvas.show_image(first.id)
        qtbot.wait(500)
        assert panel.task is None and panel.layers is None  # no model loaded
        assert not layer.has_map
        dock.show()  # the user opens the dock: the model loads, the map comes
        qtbot.waitUntil(lambda: layer.map_image_id == first.id, timeout=60_000)
        dock.tabs.setCurrentWidget(dock.zoom)
        assert not layer.has_map
        dock.tabs.setCurrentWidget(dock.cam)
        qtbot.waitUntil(lambda: layer.map_image_id == first.id, timeout=60_000)
        qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
        dock.hide()
        assert not layer.has_map
        canvas.show_image(second.id)
        qtbot.wait(500)
        assert not panel.busy and not layer.has_map
        dock.show()  # back: the image shown now
        qtbot.waitUntil(lambda: layer.map_image_id == second.id, timeout=60_000)
        qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
        dock.shutdown()
        canvas.shutdown()


def test_heatmap_layer_aligns_a_model_input_map_to_the_image(qtbot, tmp_path):
    project, ids = make_project(tmp_path, [(800, 600), (640, 480)])
    canvas = CanvasView()
    qtbot.addWidget(canvas)
    canvas.set_project(project)
    canvas.show_image(ids[0])
    layer = canvas.layer("heatmap")
    heat = np.zeros((48, 64), np.float32)  # the image at a 64-px model input
    heat[:, 32:] = 1.0
    assert layer.set_map(ids[0], heat)
    rect = layer.item.sceneBoundingRect()
    assert (rect.width(), rect.height()) == (800, 600)
    # Map column 32 (its right half) lands on displayed x = 400.
    assert layer.item.mapToScene(32, 0).x() == pytest.approx(400)
    assert not layer.set_map(ids[1], heat)  # not the image shown: refused
    canvas.show_image(ids[1])
    wait_until(lambda: not layer.has_map)
    assert not layer.item.isVisible()
    canvas.shutdown()
    project.close()

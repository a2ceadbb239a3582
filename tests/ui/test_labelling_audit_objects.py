"""The objects list at the size the issue was filed at (1920x1080): every column shows,
the score included, and a wider or narrower dock gives or takes room from the class
names only."""

from __future__ import annotations

from canvas_helpers import click
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from studio.core.kinds import ShapeKind, Source
from studio.core.project import Project
from studio.ui.main_window import MainWindow
from studio.ui.objects.model import Column

LEFT = Qt.MouseButton.LeftButton
LONG_NAME = "traffic light"


def _columns_fit(dock) -> None:
    """Every column's right edge inside the list's viewport, and each as wide as the
    widest text it shows (header or cell)."""
    tree, header = dock.tree, dock.tree.header()
    fm = tree.fontMetrics()
    width = tree.viewport().width()
    for col in Column:
        right = header.sectionViewportPosition(col) + header.sectionSize(col)
        assert right <= width, (col.name, right, width)
    for col in (Column.KIND, Column.SOURCE, Column.SCORE):
        texts = [dock.model.headerData(col, Qt.Orientation.Horizontal)]
        texts += [dock.model.data(dock.model.index(r, col)) for r in range(len(dock.model.rows))]
        widest = max(fm.horizontalAdvance(t or "") for t in texts)
        assert header.sectionSize(col) >= widest, (col.name, header.sectionSize(col), widest)


def test_every_column_shows_at_1920x1080_and_the_class_column_takes_the_slack(qtbot, project_dir):
    with Project.open(project_dir) as p:
        cid = p.add_class(LONG_NAME)
        first = p.images()[0].id
        p.add_annotation(first, cid, ShapeKind.BOX, bbox=(40, 5, 10, 8),
                         source=Source.PREDICTED, score=0.875)  # fmt: skip
        for _ in range(40):  # a busy image: the list scrolls (its scroll bar takes room)
            p.add_annotation(first, cid, ShapeKind.BOX, bbox=(2, 30, 9, 9))
        p.undo_stack.clear()
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    w.show()
    w.open_project(Project.open(project_dir))
    qtbot.waitExposed(w)
    dock = w.objects
    w.show_image(first)
    qtbot.waitUntil(lambda: len(dock.model.rows) == 43, timeout=3000)
    QApplication.processEvents()
    assert [r.score for r in dock.model.rows][:3] == [None, None, 0.875]
    qtbot.waitUntil(dock.tree.verticalScrollBar().isVisible, timeout=3000)
    _columns_fit(dock)
    header = dock.tree.header()
    class_before = header.sectionSize(Column.CLASS)
    others = [header.sectionSize(c) for c in Column if c != Column.CLASS]
    # Narrower: the class column gives the room, the score still shows.
    w.resizeDocks([dock], [dock.tree.minimumWidth() + 20], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: header.sectionSize(Column.CLASS) < class_before, timeout=3000)
    _columns_fit(dock)
    assert [header.sectionSize(c) for c in Column if c != Column.CLASS] == others
    # Wider: the class column takes the room.
    w.resizeDocks([dock], [class_before + sum(others) + 200], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: header.sectionSize(Column.CLASS) > class_before, timeout=3000)
    _columns_fit(dock)
    w.close()
    w.browser.thumbs.wait(5000)


def test_eye_and_lock_still_toggle_in_the_fitted_columns(window, qtbot):
    dock, canvas = window.objects, window.canvas
    qtbot.waitUntil(lambda: len(dock.model.rows) == 2, timeout=3000)
    for col in (Column.EYE, Column.LOCK):
        index = dock.proxy.mapFromSource(dock.model.index(dock.model.row_of(1), col))
        qtbot.mouseClick(dock.tree.viewport(), LEFT, pos=dock.tree.visualRect(index).center())
    assert dock.hidden_ids() == [1] and dock.locked_ids() == [1]
    assert not canvas.shapes.items[1].isVisible()
    click(canvas, 14, 9)  # box 1's inside: hidden, so not hit
    assert canvas.selected_annotation_ids() == []

"""The objects list's own cell painter draws what Qt's standard painter drew, pixel for
pixel, in the light and the dark theme: selected rows (tinted icons, highlighted text),
alternate rows, a hidden and a locked shape, a right-aligned score, a class name elided
at the column's edge.

The window fixture shows img_000 (64x48) with box 1 (cat) and box 2 (dog)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QStyledItemDelegate

from studio.core.kinds import ShapeKind, Source
from studio.ui.objects.model import Column
from studio.ui.theme import Theme, apply_theme

LONG_NAME = "traffic light at a crossing, partly hidden by a lorry"


def _viewport(dock) -> QImage:
    QApplication.processEvents()
    return dock.tree.viewport().grab().toImage()


@pytest.fixture
def themed():
    """Apply a theme for the test; the application's palette and style come back after."""
    app = QApplication.instance()
    palette, style = app.palette(), app.style().name()
    yield apply_theme
    if app.style().name() != style:
        app.setStyle(style)
    app.setPalette(palette)


@pytest.mark.parametrize("theme", [Theme.LIGHT, Theme.DARK])
def test_the_rows_look_as_qts_standard_painter_drew_them(window, qtbot, themed, theme):
    themed(theme)
    p, dock = window.project, window.objects
    image = p.images()[0].id
    long = p.add_class(LONG_NAME)
    for score in (0.875, 0.05, None):
        p.add_annotation(image, long, ShapeKind.BOX, bbox=(2, 2, 9, 9),
                         source=Source.PREDICTED if score else Source.MANUAL, score=score)  # fmt: skip
    p.add_annotation(image, long, ShapeKind.POLYGON, polygons=[[1, 1, 20, 1, 10, 15]])
    qtbot.waitUntil(lambda: len(dock.model.rows) == 6, timeout=3000)
    ids = [r.ann_id for r in dock.model.rows]
    dock.set_hidden([ids[1]], True)
    dock.set_locked([ids[2]], True)
    window.canvas.select([ids[2], ids[3]])
    header = dock.tree.header()
    assert header.sectionSize(Column.CLASS) < dock.tree.fontMetrics().horizontalAdvance(LONG_NAME)
    ours = _viewport(dock)
    dock.tree.setItemDelegate(QStyledItemDelegate(dock.tree))
    theirs = _viewport(dock)
    assert ours == theirs
    # Not a blank picture: the selection's colour fills the selected rows.
    row = dock.tree.visualRect(dock.model.index(dock.model.row_of(ids[3]), Column.KIND))
    highlight = dock.tree.palette().color(dock.tree.palette().ColorRole.Highlight)
    dpr = ours.devicePixelRatio()
    assert ours.pixelColor(int(row.right() * dpr) - 2, int(row.top() * dpr) + 1) == highlight


def _colours_in(image: QImage, rect) -> set[str]:
    dpr = image.devicePixelRatio()
    return {
        image.pixelColor(x, y).name()
        for x in range(int(rect.left() * dpr), int(rect.right() * dpr))
        for y in range(int(rect.top() * dpr), int(rect.bottom() * dpr))
    }


def test_a_selected_rows_swatch_keeps_its_class_colour(window, qtbot):
    """The swatch is compared with the shapes on the canvas: selecting its row does not
    tint it with the selection's colour."""
    dock = window.objects
    qtbot.waitUntil(lambda: len(dock.model.rows) == 2, timeout=3000)
    first, second = dock.model.rows
    window.canvas.select([first.ann_id])
    shot = _viewport(dock)
    for r in (first, second):  # selected, and not
        cell = dock.tree.visualRect(dock.model.index(dock.model.row_of(r.ann_id), Column.CLASS))
        assert r.color.lower() in _colours_in(shot, cell), r

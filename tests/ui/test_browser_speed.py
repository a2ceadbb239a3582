"""What keeps a browser scroll step cheap at 100,000 images, checked by the work done
rather than by timings: the delegate reads a row's text and picture from the model
directly (no `data()` round trips per role), keeps one icon per thumbnail, and a
thumbnail that arrives repaints its row without a `dataChanged` (which makes QListView
lay out every row again). The timings are benchmarks/bench_browser.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, QThreadPool
from PySide6.QtGui import QColor, QPixmap

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import make_project, wait_until  # noqa: E402

from studio.ui.browser import dock as dock_module  # noqa: E402
from studio.ui.browser.dock import BrowserDock  # noqa: E402
from studio.ui.browser.model import ImageListModel  # noqa: E402


class CountingModel(ImageListModel):
    """The browser's model, counting the roles `data()` is asked for (a subclass made
    before the view uses it: Qt calls a Python override it knows from the start)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.asked: list[int] = []

    def data(self, index, role=0):
        self.asked.append(role)
        return super().data(index, role)


@pytest.fixture
def browser(qtbot, tmp_path, monkeypatch):
    """A browser dock over a project of six small images, every row painted once."""
    monkeypatch.setattr(dock_module, "ImageListModel", CountingModel)
    project, ids = make_project(tmp_path, [(64 + 8 * i, 48) for i in range(6)])
    dock = BrowserDock()
    qtbot.addWidget(dock)
    dock.resize(QSize(360, 600))
    dock.set_project(project)
    dock.show()
    wait_until(lambda: all(dock.thumbs.pixmap(i) is not None for i in ids), timeout=20)
    dock.view.viewport().repaint()
    yield dock, project, ids
    dock.close()
    dock.thumbs.wait(10_000)
    QThreadPool.globalInstance().waitForDone(10_000)
    project.close()


def test_painting_rows_asks_the_model_for_no_roles(browser):
    dock, _project, ids = browser
    dock.model.asked.clear()
    dock.view.viewport().repaint()
    assert dock.model.asked == []  # Qt's own delegate asked nine roles per row


def test_a_repaint_makes_no_new_icon(browser):
    dock, _project, ids = browser
    model = dock.model
    made = model.icons_made
    assert made >= len(ids)
    for _ in range(3):
        dock.view.viewport().repaint()
    assert model.icons_made == made


def test_a_new_thumbnail_repaints_its_row_without_data_changed(browser, monkeypatch):
    dock, _project, ids = browser
    model = dock.model
    changes: list[int] = []
    model.dataChanged.connect(lambda a, b, roles=(): changes.append(a.row()))
    painted: list[int] = []
    row_info = model.row_info

    def recorded(row):  # the delegate reads each row it paints
        painted.append(row)
        return row_info(row)

    monkeypatch.setattr(model, "row_info", recorded)
    red = QPixmap(model.thumbs.size)
    red.fill(QColor(255, 0, 0))
    model.thumbs._pixmaps[ids[2]] = red  # what `_on_done` stores, then it signals
    model.thumbs.ready.emit(ids[2])
    wait_until(lambda: bool(painted), timeout=5)  # the row's repaint, turns later
    assert changes == [] and set(painted) == {model.row_of(ids[2])}


def test_the_icon_follows_a_new_thumbnail_of_the_same_image(browser):
    dock, _project, ids = browser
    model = dock.model
    info = model.row_info(model.row_of(ids[0]))
    first = model.icon(info)
    blue = QPixmap(model.thumbs.size)
    blue.fill(QColor(0, 0, 255))
    model.thumbs._pixmaps[ids[0]] = blue  # remade (say after the file changed)
    second = model.icon(info)
    assert second.pixmap(model.thumbs.size).cacheKey() != first.pixmap(model.thumbs.size).cacheKey()
    assert second.pixmap(model.thumbs.size).toImage().pixelColor(5, 5) == QColor(0, 0, 255)

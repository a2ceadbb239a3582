"""The window's layout and look: toolbar, empty project hint, theme, canvas fill and
tags, and panels that keep their size."""

from __future__ import annotations

from canvas_helpers import click
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel, QToolBar, QToolButton

from studio.core.importing import import_images
from studio.core.project import Project
from studio.ui.main_window import MainWindow
from studio.ui.theme import Look, Theme, apply_theme, saved_fill, saved_tags, saved_theme

LONG_NAME = "traffic light (pedestrian crossing, far side)"


def test_toolbar_train_button_shows_the_training_panel(window, qtbot):
    assert not window.train_dock.isVisible()
    button = window.findChild(QToolButton, "train_button")
    assert button is not None and button.text().replace("&", "").startswith("Train")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.train_dock.isVisible()
    # The toolbar's tool buttons drive the canvas too.
    toolbar = window.findChild(QToolBar, "main_toolbar")
    box = toolbar.widgetForAction(window.actions["tool.box"])
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert window.canvas.tool == "box"


def test_theme_switch_changes_the_palette_at_once_and_is_kept(window):
    base = lambda: window.palette().color(QPalette.ColorRole.Base).lightness()  # noqa: E731
    try:
        window.actions["view.theme.dark"].trigger()
        QApplication.processEvents()
        assert base() < 60
        assert saved_theme() == Theme.DARK
        assert window.actions["view.theme.dark"].isChecked()
        window.actions["view.theme.light"].trigger()
        QApplication.processEvents()
        assert base() > 200
        assert saved_theme() == Theme.LIGHT
    finally:
        apply_theme(Theme.LIGHT)


def test_fill_opacity_and_tags_toggles_change_the_canvas_and_are_kept(window, qtbot):
    item = window.canvas.shapes.items[1]
    window.actions["view.fill.0"].trigger()
    assert item.brush().color().alpha() == 0
    window.actions["view.fill.50"].trigger()
    assert item.brush().color().alpha() == 128
    assert saved_fill() == 50
    click(window.canvas, 14, 9)  # select box 1: its class tag shows
    assert window.canvas.shapes.tag.isVisible()
    window.actions["view.tags"].trigger()  # off
    assert not window.canvas.shapes.tag.isVisible()
    assert saved_tags() is False
    # A new window starts as the user left it.
    other = MainWindow(restore=False)
    qtbot.addWidget(other)
    assert other.actions["view.fill.50"].isChecked()
    assert not other.actions["view.tags"].isChecked()
    assert other.canvas.shapes.fill_alpha == 128 and other.canvas.shapes.tags is False
    assert isinstance(other.look, Look)


def test_empty_project_says_what_to_do_first(qtbot, tmp_path, window_write_images):
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.resize(1000, 700)
    w.show()
    w.open_project(Project.create(tmp_path / "empty"))
    assert w.stack.currentWidget() is w.empty_hint
    text = w.empty_hint.findChild(QLabel, "empty_hint_text").text()
    assert "Drop images here" in text and "Import images" in text and "Ctrl+I" in text
    # The first images arrive: the canvas takes over and shows one.
    folder = tmp_path / "pics"
    window_write_images(folder, 2)
    import_images(w.project, [folder])
    qtbot.waitUntil(lambda: w.stack.currentWidget() is w.canvas, timeout=3000)
    qtbot.waitUntil(lambda: w.canvas.image_id is not None, timeout=3000)
    w.close()
    w.browser.thumbs.wait(5000)


def test_class_list_is_wide_enough_for_long_names(window, qtbot):
    window.project.add_class(LONG_NAME)
    qtbot.waitUntil(lambda: window.class_dock.tree.topLevelItemCount() == 4, timeout=3000)
    QApplication.processEvents()
    tree = window.class_dock.tree
    assert tree.minimumWidth() > tree.fontMetrics().horizontalAdvance(LONG_NAME)
    qtbot.waitUntil(lambda: window.class_dock.width() >= tree.minimumWidth(), timeout=3000)


def test_browser_keeps_its_width_when_a_filter_changes_the_rows(window, qtbot):
    dock = window.browser
    qtbot.wait(300)  # facet counts arrive from a worker
    width = dock.width()
    for name, value in (("status", "done"), ("split", "val"), ("status", None)):
        dock.set_filter(name, value)
        qtbot.wait(300)
        assert dock.width() == width, (name, value)
    dock.text_edit.setText("img_00")
    qtbot.wait(400)
    assert dock.width() == width

"""Plugins reach the window: the example panel docks and follows the open project; a
canvas layer plugin joins the canvas; a broken panel is reported, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import plugins
from studio.core.project import Project

ROOT = Path(__file__).resolve().parents[2]

LAYER_PLUGIN = """
from studio.ui.canvas.layers.base import SceneLayer

class Marker(SceneLayer):
    name = "marker"
    z = 50.0
    shown = 0

    def show_image(self, image, project):
        Marker.shown += 1

def register(api):
    api.add_canvas_layer("marker", Marker)
    api.add_panel("Broken", lambda window: 1 / 0, area="left")
"""


@pytest.fixture
def plugin_path(monkeypatch, tmp_path):
    def use(*folders: Path) -> None:
        monkeypatch.setenv(plugins.ENV_PATH, ":".join(map(str, folders)))
        plugins.load_plugins(reload=True)

    yield use
    monkeypatch.setenv(plugins.ENV_PATH, "")
    plugins.load_plugins(reload=True)


def test_example_panel_plugin_lists_the_open_projects_classes(qtbot, project_dir, plugin_path):
    from studio.ui.main_window import MainWindow

    plugin_path(ROOT / "plugins")
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    (dock,) = [d for d in w.plugin_docks if d.windowTitle() == "Label counts"]
    assert dock.widget().count() == 0  # no project yet
    w.open_project(Project.open(project_dir))
    items = [dock.widget().item(i).text() for i in range(dock.widget().count())]
    assert items == ["cat: 1", "dog: 2", "bird: 1"]
    w.close_project()
    assert dock.widget().count() == 0
    w.close()


def test_canvas_layer_plugin_joins_and_broken_panel_is_reported(
    qtbot, project_dir, plugin_path, tmp_path
):
    from studio.ui.main_window import MainWindow

    folder = tmp_path / "plugs"
    folder.mkdir()
    (folder / "marker.py").write_text(LAYER_PLUGIN)
    plugin_path(folder)
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    assert "ZeroDivisionError" in w.statusBar().currentMessage()
    assert w.plugin_docks == []
    layer = w.canvas.layer("marker")
    assert layer is not None
    before = type(layer).shown
    w.open_project(Project.open(project_dir))
    assert type(layer).shown > before  # the view called the plugin layer's hook
    w.close_project()
    w.close()

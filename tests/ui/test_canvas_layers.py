"""The canvas's shape: a view plus layers, tools behind a small protocol, decoding on the
one background-work API, project events through the one bridge."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import click, drag, make_project, wait_until  # noqa: E402

from studio.core.kinds import ShapeKind  # noqa: E402
from studio.ui.canvas.editor import Editor  # noqa: E402
from studio.ui.canvas.layers import AnnotationLayer, Layer, SceneLayer  # noqa: E402
from studio.ui.canvas.tools import CanvasContext, Interaction  # noqa: E402


class GridLayer(SceneLayer):
    """What a future layer looks like: a module, a class, no edit of the view."""

    name = "grid"
    z = 45.0

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.frame = QGraphicsRectItem()

    def attach(self, scene: QGraphicsScene) -> None:
        super().attach(scene)
        scene.addItem(self.frame)
        self.calls.append("attach")

    def show_image(self, image, project) -> None:
        self.frame.setRect(QRectF(0, 0, image.width, image.height))
        self.calls.append(f"show {image.id}")

    def view_changed(self, visible: QRectF, zoom: float) -> None:
        self.calls.append("view")

    def clear(self) -> None:
        self.calls.append("clear")

    def _apply_visible(self) -> None:
        self.frame.setVisible(self.visible)


def test_built_in_layers_in_order(setup):
    view, _, _ = setup
    assert [layer.name for layer in view.layers] == [
        "image",
        "heatmap",
        "annotations",
        "predictions",
        "crosshair",
    ]
    assert all(isinstance(layer, Layer) for layer in view.layers)
    assert [layer.z for layer in view.layers] == sorted(layer.z for layer in view.layers)
    assert view.layer("annotations") is view.shapes
    with pytest.raises(KeyError):
        view.layer("no such layer")


def test_an_added_layer_gets_every_hook(setup):
    view, project, ids = setup
    grid = GridLayer()
    view.add_layer(grid)
    assert [layer.name for layer in view.layers] == [
        "image",
        "heatmap",
        "annotations",
        "predictions",
        "grid",
        "crosshair",
    ]
    assert grid.calls == ["attach", f"show {ids[0]}"]  # the shown image at once
    assert grid.frame.scene() is view.scene()
    wait_until(lambda: "view" in grid.calls)
    view.show_image(ids[1])
    assert f"show {ids[1]}" in grid.calls
    assert grid.frame.rect() == QRectF(0, 0, 640, 480)
    view.set_layer_visible("grid", False)
    assert not grid.frame.isVisible()
    view.set_project(None)
    assert grid.calls[-1] == "clear"


def test_hiding_the_annotations_layer_hides_and_unselects(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    ann = project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 100, 100))
    view.select([ann])
    seen = []
    view.selection_changed.connect(seen.append)
    view.set_layer_visible("annotations", False)
    assert seen == [[]] and not view.shapes.items[ann].isVisible()
    click(view, 150, 150)  # nothing to pick
    assert view.selected_annotation_ids() == []
    view.set_layer_visible("annotations", True)
    click(view, 150, 150)
    assert view.selected_annotation_ids() == [ann]


def test_hiding_the_image_layer_keeps_the_shapes_editable(setup):
    view, project, ids = setup
    view.set_layer_visible("image", False)
    assert not view.image_layer.preview.isVisible()
    view.set_tool("box")
    drag(view, [(100, 100), (200, 180)])
    assert len(project.annotations(image_ids=[ids[0]])) == 1
    view.set_layer_visible("image", True)
    assert view.image_layer.preview.isVisible()


@dataclass
class FakeCanvas:
    """A `CanvasContext` without a view: tools need nothing more."""

    editor: Editor
    shapes: AnnotationLayer
    _scene: QGraphicsScene
    size: tuple[float, float]
    cursors: list = field(default_factory=list)

    def scene(self) -> QGraphicsScene:
        return self._scene

    def image_size(self) -> tuple[float, float]:
        return self.size

    def tol(self, screen_px: float) -> float:
        return screen_px  # zoom 1

    def set_cursor_for(self, hit) -> None:
        self.cursors.append(hit)


def test_tools_work_through_the_context_alone(qtbot, tmp_path):
    project, ids = make_project(tmp_path, [(400, 300)])
    scene = QGraphicsScene()
    shapes = AnnotationLayer()
    shapes.attach(scene)
    messages: list[str] = []
    selections: list[list[int]] = []
    editor = Editor(shapes, messages.append, selections.append)
    editor.project, editor.image = project, project.image(ids[0])
    editor.reload_classes()
    ctx: CanvasContext = FakeCanvas(editor, shapes, scene, (400.0, 300.0))
    tools = Interaction(ctx)
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier

    tools.set_tool("box")
    tools.press(10, 20, left, none)
    tools.move(60, 50, none)
    tools.release(110, 80, left, none)
    (rec,) = project.annotations(image_ids=[ids[0]])
    assert rec.kind == ShapeKind.BOX and rec.bbox == (10, 20, 100, 60)
    assert selections[-1] == [rec.id] and shapes.record(rec.id) == rec

    tools.set_tool("select")
    tools.move(50, 50, none)  # hover: the select tool shows what a press would grab
    assert ctx.cursors and ctx.cursors[-1].ann_id == rec.id
    tools.press(50, 50, left, none)
    tools.move(70, 60, none)
    tools.release(70, 60, left, none)
    assert project.annotations(image_ids=[ids[0]])[0].bbox == (30, 30, 100, 60)
    project.close()


def test_edits_from_another_thread_reach_the_canvas(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    out: list[int] = []
    worker = threading.Thread(
        target=lambda: out.append(project.add_annotation(ids[0], cid, "box", bbox=(5, 5, 9, 9)))
    )
    worker.start()
    worker.join()
    wait_until(lambda: out and out[0] in view.shapes.items)  # queued to the GUI thread


def test_no_events_after_the_project_is_let_go(setup):
    view, project, ids = setup
    view.set_project(None)
    cid = project.classes()[0].id
    project.add_annotation(ids[0], cid, "box", bbox=(5, 5, 9, 9))
    assert view.shapes.items == {} and view.image_id is None


def test_decoding_runs_on_the_canvas_pool_and_stops(setup):
    view, project, ids = setup
    source = view.source
    assert source.pool.maxThreadCount() == 2
    source.invalidate(ids[1])
    source.prefetch([project.image(ids[1])])
    wait_until(lambda: source.cached_preview(project.image(ids[1])) is not None)
    source.invalidate(ids[1])
    source.prefetch([project.image(i) for i in ids])
    source.shutdown()
    assert source.pool.activeThreadCount() == 0
    source.prefetch([project.image(ids[1])])  # after shutdown: nothing runs
    assert source.pool.activeThreadCount() == 0

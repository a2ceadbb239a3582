"""The objects list: selection both ways, hide and lock, following edits; driven through
real clicks on the list and real mouse gestures on the canvas.

The window fixture shows img_000 (64x48) with box 1 (cat, 4,4 20x10) and box 2 (dog,
30,20 10x10), in image pixels."""

from __future__ import annotations

import sqlite3

from canvas_helpers import click, drag
from PySide6.QtCore import Qt

from studio.ui.objects.model import Column

LEFT = Qt.MouseButton.LeftButton


def _rows(project) -> list[tuple]:
    with sqlite3.connect(project.db_path) as conn:
        return conn.execute("SELECT id, x, y, w, h FROM annotations ORDER BY id").fetchall()


def _click_cell(qtbot, dock, ann_id: int, column: Column) -> None:
    row = dock.model.row_of(ann_id)
    assert row is not None, f"annotation {ann_id} not listed"
    index = dock.proxy.mapFromSource(dock.model.index(row, column))
    rect = dock.tree.visualRect(index)
    qtbot.mouseClick(dock.tree.viewport(), LEFT, pos=rect.center())


def _listed(window, n: int, qtbot) -> None:
    qtbot.waitUntil(lambda: len(window.objects.model.rows) == n, timeout=3000)


def test_list_and_canvas_select_each_other_and_a_drawn_box_appears(window, qtbot):
    dock, canvas = window.objects, window.canvas
    _listed(window, 2, qtbot)
    assert [(r.class_name, r.kind, r.source) for r in dock.model.rows] == [
        ("cat", "box", "manual"),
        ("dog", "box", "manual"),
    ]
    _click_cell(qtbot, dock, 2, Column.CLASS)
    assert canvas.selected_annotation_ids() == [2]
    click(canvas, 14, 9)  # box 1's inside, on the canvas
    assert canvas.selected_annotation_ids() == [1]
    assert dock.selected_ids() == [1]
    window.set_tool("box")
    drag(canvas, [(44, 30), (50, 36), (60, 44)])
    new = max(a.id for a in window.project.annotations())
    _listed(window, 3, qtbot)  # follows the edit through the project's events
    qtbot.waitUntil(lambda: dock.selected_ids() == [new], timeout=3000)
    assert dock.count_label.text() == "3 objects"


def test_a_hidden_shape_is_not_drawn_nor_hit(window, qtbot):
    dock, canvas = window.objects, window.canvas
    _listed(window, 2, qtbot)
    before = _rows(window.project)
    _click_cell(qtbot, dock, 1, Column.EYE)
    assert dock.hidden_ids() == [1]
    assert not canvas.shapes.items[1].isVisible()
    assert canvas.shapes.shape_at(14, 9) is None
    click(canvas, 14, 9)
    assert canvas.selected_annotation_ids() == []
    assert dock.selected_ids() == []  # the eye's click did not select the row either
    assert _rows(window.project) == before  # per session: nothing written
    assert dock.count_label.text() == "2 objects, 1 hidden"
    _click_cell(qtbot, dock, 1, Column.EYE)
    assert canvas.shapes.items[1].isVisible()
    click(canvas, 14, 9)
    assert canvas.selected_annotation_ids() == [1]


def test_a_locked_shape_refuses_a_drag_and_delete(window, qtbot):
    dock, canvas = window.objects, window.canvas
    _listed(window, 2, qtbot)
    before = _rows(window.project)
    _click_cell(qtbot, dock, 1, Column.LOCK)
    assert dock.locked_ids() == [1]
    messages: list[str] = []
    canvas.message.connect(messages.append)
    drag(canvas, [(14, 9), (20, 14), (30, 20)])
    assert canvas.selected_annotation_ids() == [1]  # still selectable
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert _rows(window.project) == before
    assert any("Locked" in m for m in messages)
    _click_cell(qtbot, dock, 1, Column.LOCK)  # unlocked, the same drag moves it
    drag(canvas, [(14, 9), (20, 14), (30, 20)])
    assert _rows(window.project)[0][1:3] != before[0][1:3]


def test_hidden_and_locked_are_forgotten_with_the_project(window, qtbot, project_dir):
    from studio.core.project import Project

    _listed(window, 2, qtbot)
    window.objects.set_hidden([1], True)
    window.objects.set_locked([2], True)
    window.open_project(Project.open(project_dir))
    _listed(window, 2, qtbot)
    assert window.canvas.shapes.hidden_shapes == set()
    assert window.canvas.shapes.locked == set()
    assert window.canvas.shapes.items[1].isVisible()


def _attrs(project) -> list[tuple]:
    with sqlite3.connect(project.db_path) as conn:
        return conn.execute(
            "SELECT id, occluded, truncated, difficult, group_id, notes FROM annotations "
            "WHERE id IN (1, 2) "
            "ORDER BY id"
        ).fetchall()


def test_attributes_of_two_selected_shapes_change_and_undo(window, qtbot):
    dock = window.objects
    _listed(window, 2, qtbot)
    before = _attrs(window.project)
    assert before == [(1, 0, 0, 0, None, None), (2, 0, 0, 0, None, None)]
    editor = dock.attributes
    assert not editor.isEnabled()  # nothing selected yet
    _click_cell(qtbot, dock, 1, Column.CLASS)
    row = dock.model.row_of(2)
    rect = dock.tree.visualRect(dock.proxy.mapFromSource(dock.model.index(row, Column.CLASS)))
    qtbot.mouseClick(
        dock.tree.viewport(), LEFT, Qt.KeyboardModifier.ControlModifier, pos=rect.center()
    )
    assert dock.selected_ids() == [1, 2]
    assert window.canvas.selected_annotation_ids() == [1, 2]
    qtbot.mouseClick(editor.flags["occluded"], LEFT)
    assert _attrs(window.project) == [(1, 1, 0, 0, None, None), (2, 1, 0, 0, None, None)]
    editor.group.setValue(5)
    editor.group.editingFinished.emit()
    editor.notes.setFocus()
    qtbot.keyClicks(editor.notes, "rider")
    qtbot.keyClick(editor.notes, Qt.Key.Key_Return)
    assert _attrs(window.project) == [(1, 1, 0, 0, 5, "rider"), (2, 1, 0, 0, 5, "rider")]
    window.undo()
    window.undo()
    assert _attrs(window.project) == [(1, 1, 0, 0, None, None), (2, 1, 0, 0, None, None)]
    window.undo()  # one step for both shapes' flag
    assert _attrs(window.project) == before
    qtbot.waitUntil(
        lambda: editor.flags["occluded"].checkState() == Qt.CheckState.Unchecked, timeout=3000
    )


def test_mixed_flags_show_partly_ticked_and_a_click_sets_all(window, qtbot):
    dock = window.objects
    _listed(window, 2, qtbot)
    window.project.set_attributes([1], difficult=True)
    qtbot.waitUntil(lambda: dock._attributes.get(1, None) is not None and
                    dock._attributes[1].difficult, timeout=3000)  # fmt: skip
    dock.select_ids([1, 2])
    box = dock.attributes.flags["difficult"]
    assert box.checkState() == Qt.CheckState.PartiallyChecked
    qtbot.mouseClick(box, LEFT)
    assert [r[3] for r in _attrs(window.project)] == [1, 1]

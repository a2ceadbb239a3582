"""Bugs an experienced annotator hit, each driven through real mouse and key events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QPoint, Qt

from studio.core.importing import import_images
from studio.core.project import Project

KEY = Qt.Key
LEFT = Qt.MouseButton.LeftButton


def sql(project: Project, query: str, params=()) -> list[tuple]:
    with sqlite3.connect(project.db_path) as conn:
        return conn.execute(query, params).fetchall()


def _solid_project(folder: Path, rgb: tuple[int, int, int], classes: tuple[str, ...]) -> Path:
    """A project of three solid-colour 64x48 images (ids 1-3, like any fresh project)."""
    project = Project.create(folder)
    (project.path / "images").mkdir()
    for i in range(3):
        Image.new("RGB", (64, 48), rgb).save(project.path / "images" / f"solid_{i}.png")
    import_images(project, [project.path / "images"])
    project.ensure_classes(classes)
    project.close()
    return folder


def _shown_rgb(window) -> tuple[int, int, int]:
    image = window.canvas.image_layer.preview.pixmap().toImage()
    c = image.pixelColor(image.width() // 2, image.height() // 2)
    return c.red(), c.green(), c.blue()


# --- 1: the canvas keeps showing images after switching projects -------------------------


def test_switching_projects_shows_the_new_projects_pixels(window, qtbot, tmp_path):
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.image_layer.has_pixels, timeout=5000)
    qtbot.wait(300)  # the neighbours' previews are cached under the same ids
    for rgb, name in (((250, 0, 0), "red"), ((0, 0, 250), "blue")):
        folder = _solid_project(tmp_path / name, rgb, (f"{name}_a", f"{name}_b"))
        window.open_project(Project.open(folder))
        qtbot.waitUntil(lambda: canvas.image_layer.has_pixels, timeout=5000)
        assert _shown_rgb(window) == rgb
        window.step_image(+1)
        qtbot.waitUntil(lambda: canvas.image_layer.has_pixels, timeout=5000)
        assert _shown_rgb(window) == rgb
        # A class added now is drawn in the colour the class list shows.
        cid = window.project.add_class(f"{name}_new")
        qtbot.wait(20)
        colour = next(c.color for c in window.project.classes() if c.id == cid)
        assert canvas.shapes.style(cid).color.name().lower() == colour.lower()


# --- 2: Space tapped is "done and next"; Space held with a drag only pans -----------------


def _space_drag(qtbot, window, key_target) -> None:
    """Space down, a left drag over the canvas, Space up, as a user does it: the mouse
    is over the canvas before the key goes down."""
    viewport = window.canvas.viewport()
    centre = viewport.rect().center()
    qtbot.mouseMove(viewport, centre)
    qtbot.keyPress(key_target, KEY.Key_Space)
    qtbot.mousePress(viewport, LEFT, pos=centre)
    qtbot.mouseMove(viewport, centre + QPoint(60, 30))
    qtbot.mouseRelease(viewport, LEFT, pos=centre + QPoint(60, 30))
    # The release goes where the keyboard focus is now.
    qtbot.keyRelease(window.focusWidget() or key_target, KEY.Key_Space)
    qtbot.wait(20)


def test_space_drag_pans_even_when_the_browser_had_the_focus(window, qtbot):
    p = window.project
    ids = window.browser.ids()
    window.show_image(ids[3])
    window.canvas.set_zoom(8.0)
    window.browser.view.setFocus()  # the thumbnail just clicked
    before = window.canvas.to_image(window.canvas.viewport().rect().center())
    _space_drag(qtbot, window, window.browser.view)
    after = window.canvas.to_image(window.canvas.viewport().rect().center())
    assert window.current_image_id() == ids[3]
    assert sql(p, "SELECT status FROM images WHERE id = ?", (ids[3],)) == [("new",)]
    # Dragged 60 x 30 screen pixels at 8x: the view moved 7.5 x 3.75 image pixels back.
    assert abs((before.x() - after.x()) - 7.5) < 0.3
    assert abs((before.y() - after.y()) - 3.75) < 0.3
    assert p.annotations(image_ids=[ids[3]]) == []  # and drew nothing


def test_space_tap_over_the_canvas_is_done_and_next_not_done(window, qtbot):
    p = window.project
    ids = window.browser.ids()
    window.show_image(ids[1])
    window.browser.view.setFocus()
    viewport = window.canvas.viewport()
    qtbot.mouseMove(viewport, viewport.rect().center())
    qtbot.keyPress(window.browser.view, KEY.Key_Space)
    assert window.current_image_id() == ids[1]  # nothing yet: this may be a pan
    qtbot.keyRelease(window.focusWidget(), KEY.Key_Space)
    # ids[2] has a shape but is not done: it is next.
    qtbot.waitUntil(lambda: window.current_image_id() == ids[2])
    assert sql(p, "SELECT status FROM images WHERE id = ?", (ids[1],)) == [("done",)]


# --- 4: undo and redo go to the image they change and select the shape -------------------


def _drag(qtbot, viewport, a: QPoint, b: QPoint) -> None:
    qtbot.mouseMove(viewport, a)
    qtbot.mousePress(viewport, LEFT, pos=a)
    qtbot.mouseMove(viewport, (a + b) / 2)
    qtbot.mouseMove(viewport, b)
    qtbot.mouseRelease(viewport, LEFT, pos=b)


def test_undo_and_redo_show_the_image_they_change(window, qtbot):
    p = window.project
    ids = window.browser.ids()
    window.show_image(ids[4])
    canvas, viewport = window.canvas, window.canvas.viewport()
    canvas.setFocus()
    qtbot.keyClick(canvas, KEY.Key_W)  # box tool
    centre = viewport.rect().center()
    _drag(qtbot, viewport, centre - QPoint(100, 80), centre + QPoint(100, 60))
    (box,) = p.annotations(image_ids=[ids[4]])
    qtbot.keyClick(canvas, KEY.Key_V)
    _drag(qtbot, viewport, centre, centre + QPoint(50, 0))  # move it
    moved = p.annotations(ids=[box.id])[0].bbox
    assert moved[0] > box.bbox[0]
    qtbot.keyClick(canvas, KEY.Key_Escape)
    qtbot.keyClick(canvas, KEY.Key_D)
    qtbot.keyClick(canvas, KEY.Key_D)
    assert window.current_image_id() == ids[6]
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(canvas, KEY.Key_Z, ctrl)  # undo the move: back on ids[4], box selected
    assert window.current_image_id() == ids[4]
    assert p.annotations(ids=[box.id])[0].bbox == box.bbox
    assert canvas.selected_annotation_ids() == [box.id]
    qtbot.keyClick(canvas, KEY.Key_D)
    qtbot.keyClick(canvas, KEY.Key_Z, ctrl)  # undo the add: back again, box gone
    assert window.current_image_id() == ids[4]
    assert p.annotations(image_ids=[ids[4]]) == []
    qtbot.keyClick(canvas, KEY.Key_A)
    qtbot.waitUntil(lambda: window.actions["edit.redo"].isEnabled())  # a queued event
    qtbot.keyClick(
        canvas, KEY.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier
    )  # redo the add: the box is back, selected
    assert window.current_image_id() == ids[4]
    assert canvas.selected_annotation_ids() == [box.id]


# --- 3: class keys stay with their class; the merge target is chosen ---------------------


def test_deleting_a_class_does_not_renumber_the_keys(window, qtbot, monkeypatch):
    from studio.ui.classes.dialog import ClassDialog
    from studio.ui.common import plain_text

    p = window.project
    ids = window.browser.ids()
    cat, dog, bird = (p.class_by_name(n).id for n in ("cat", "dog", "bird"))
    monkeypatch.setattr(plain_text, "ask", lambda *a: True)
    dialog = ClassDialog(p, window)
    qtbot.addWidget(dialog)
    dialog.delete(cat)
    qtbot.waitUntil(lambda: window.class_dock.tree.topLevelItemCount() == 2)
    keys = [window.class_dock.tree.topLevelItem(i).text(0) for i in range(2)]
    assert keys == ["2", "3"]  # dog and bird keep theirs
    window.show_image(ids[2])
    (poly,) = p.annotations(image_ids=[ids[2]])
    assert poly.class_id == bird
    window.canvas.select([poly.id])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, KEY.Key_2)  # dog, as before the delete
    assert sql(p, "SELECT class_id FROM annotations WHERE id = ?", (poly.id,)) == [(dog,)]
    qtbot.keyClick(window.canvas, KEY.Key_1)  # nobody's key now: nothing changes
    assert sql(p, "SELECT class_id FROM annotations WHERE id = ?", (poly.id,)) == [(dog,)]
    assert "No class 1" in window.status_bar.currentMessage()
    # The user gives bird key 1; then key 1 picks bird.
    dialog.set_key(bird, 1)
    qtbot.keyClick(window.canvas, KEY.Key_1)
    assert sql(p, "SELECT class_id FROM annotations WHERE id = ?", (poly.id,)) == [(bird,)]


def test_merge_target_must_be_chosen(qtbot, window):
    from PySide6.QtWidgets import QDialogButtonBox

    from studio.ui.classes.choosers import MergeTargetDialog

    classes = [c for c in window.project.classes() if c.name != "dog"]
    chooser = MergeTargetDialog(["'dog'"], classes)
    qtbot.addWidget(chooser)
    chooser.show()
    ok = chooser.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert chooser.combo.currentIndex() == -1 and not ok.isEnabled()
    qtbot.keyClick(chooser.combo, KEY.Key_Down)
    assert ok.isEnabled() and chooser.chosen == classes[0].id


# --- 5: the shortcut editor never lets two actions share a key --------------------------


def test_shortcut_clash_is_refused_or_swapped(window, qtbot, monkeypatch):
    from PySide6.QtGui import QKeySequence

    from studio.ui.common import plain_text
    from studio.ui.shortcuts import ShortcutsDialog

    asked: list[str] = []
    answer = [False]

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(plain_text, "ask", question)
    dialog = ShortcutsDialog(window.shortcuts, window)
    qtbot.addWidget(dialog)
    ids = window.browser.ids()
    # "Next image" gets W, the box tool's key: declined, nothing changes.
    assert not dialog.assign("nav.next", QKeySequence("W"))
    assert "W is already the key of “Box tool”" in asked[0]
    assert "gets D" in asked[0]
    assert not window.shortcuts.conflicts()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, KEY.Key_W)
    assert window.canvas.tool == "box"
    # Accepted: the keys swap, and each key does one thing.
    answer[0] = True
    assert dialog.assign("nav.next", QKeySequence("W"))
    assert not window.shortcuts.conflicts()
    qtbot.keyClick(window.canvas, KEY.Key_V)
    qtbot.keyClick(window.canvas, KEY.Key_W)
    assert window.current_image_id() == ids[1] and window.canvas.tool == "select"
    qtbot.keyClick(window.canvas, KEY.Key_D)
    assert window.canvas.tool == "box" and window.current_image_id() == ids[1]
    assert ("Tools", "Box tool", "D") in dialog.rows()

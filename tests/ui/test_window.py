"""The labelling window, driven by real key events (pytest-qt), checked in the database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import insert

from studio.core import browse
from studio.core import schema as S
from studio.core.project import Project
from studio.ui.browser.dock import BrowserDock
from studio.ui.classes.dialog import ClassDialog
from studio.ui.common import plain_text
from studio.ui.main_window import MainWindow

KEY = Qt.Key


def sql(project: Project, query: str, params=()) -> list[tuple]:
    with sqlite3.connect(project.db_path) as conn:
        return conn.execute(query, params).fetchall()


def canvas_shape_ids(canvas) -> set[int]:
    """Annotation ids the canvas shows: one scene item per shape, keyed by id."""
    return set(canvas.shapes.items)


def select_shapes(canvas, ids: list[int]) -> None:
    canvas.select(ids)
    assert sorted(canvas.selected_annotation_ids()) == sorted(ids)


def wait_counts(qtbot, browser: BrowserDock) -> dict:
    browser.last_counts = {}
    browser.refresh_now()
    qtbot.waitUntil(lambda: bool(browser.last_counts), timeout=5000)
    return browser.last_counts


# --- opening and navigating ---------------------------------------------------------------


def test_opens_on_first_image_then_on_last_worked_on(window, qtbot, project_dir):
    p = window.project
    first = browse.query_images(p)[0]
    assert window.current_image_id() == first
    assert window.browser.current_id() == first
    qtbot.keyClick(window, KEY.Key_D)
    qtbot.keyClick(window, KEY.Key_D)
    third = browse.query_images(p)[2]
    assert window.current_image_id() == third
    assert "img_002.png" in window.status_bar.image_label.text()
    assert "64 × 48" in window.status_bar.image_label.text()
    window.close_project()
    assert window.stack.currentWidget() is window.start_page
    assert window.start_page.recent_list.count() == 1  # this project, now recent
    window.open_project(Project.open(project_dir))
    assert window.current_image_id() == third  # setting "last_image"


def test_next_previous_keep_every_edit(window, qtbot):
    p = window.project
    ids = window.browser.ids()
    start = window.current_image_id()
    cls = p.classes()[0].id
    ann = p.add_annotation(start, cls, "box", bbox=(10, 10, 5, 5))
    qtbot.waitUntil(lambda: ann in canvas_shape_ids(window.canvas))
    qtbot.keyClick(window, KEY.Key_D)
    assert window.current_image_id() == ids[1]
    qtbot.keyClick(window.canvas, KEY.Key_Right)
    assert window.current_image_id() == ids[2]
    qtbot.keyClick(window.canvas, KEY.Key_Left)
    qtbot.keyClick(window, KEY.Key_A)
    assert window.current_image_id() == start
    assert sql(p, "SELECT class_id, x, y FROM annotations WHERE id = ?", (ann,)) == [
        (cls, 10.0, 10.0)
    ]
    qtbot.waitUntil(lambda: ann in canvas_shape_ids(window.canvas))
    qtbot.keyClick(window, KEY.Key_A)  # already the first: stays
    assert window.current_image_id() == start
    # With shapes selected on the canvas, Left/Right nudge them instead of navigating.
    select_shapes(window.canvas, [ann])
    qtbot.keyClick(window.canvas, KEY.Key_Right)
    assert window.current_image_id() == start
    assert sql(p, "SELECT x FROM annotations WHERE id = ?", (ann,)) == [(11.0,)]
    qtbot.keyClick(window.canvas, KEY.Key_Escape)  # clears the selection
    assert window.canvas.selected_annotation_ids() == []
    qtbot.keyClick(window.canvas, KEY.Key_Right)
    assert window.current_image_id() == ids[1]


def test_space_marks_done_and_jumps_to_next_not_done(window, qtbot):
    p = window.project
    ids = window.browser.ids()
    # image 0 is done; 1 and 2 have shapes (imported labels, say) but are not done.
    window.show_image(ids[1])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, KEY.Key_Space)
    qtbot.waitUntil(lambda: window.current_image_id() == ids[2])
    assert sql(p, "SELECT status FROM images WHERE id = ?", (ids[1],)) == [("done",)]
    # From the browser, with the mouse over it, Space is the plain shortcut.
    window.browser.view.setFocus()
    qtbot.mouseMove(window.browser.view, QPoint(5, 5))
    qtbot.keyClick(window.browser.view, KEY.Key_Space)
    assert window.current_image_id() == ids[3]
    # Wraps around past the done ones; with none left, stays and says so.
    p.set_status(ids[4:], "done")
    p.set_status([ids[1]], "new")
    qtbot.keyClick(window.browser.view, KEY.Key_Space)
    assert window.current_image_id() == ids[1]
    qtbot.keyClick(window.browser.view, KEY.Key_Space)
    assert window.current_image_id() == ids[1]
    assert "Every image in the list is done" in window.status_bar.currentMessage()


def test_space_held_while_dragging_pans_instead(window, qtbot):
    p = window.project
    start = window.current_image_id()
    window.canvas.setFocus()
    before = sql(p, "SELECT status FROM images WHERE id = ?", (start,))
    qtbot.keyPress(window.canvas, KEY.Key_Space)
    viewport = window.canvas.viewport()
    centre = viewport.rect().center()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 10))
    qtbot.keyRelease(window.canvas, KEY.Key_Space)
    qtbot.wait(20)
    assert window.current_image_id() == start
    assert sql(p, "SELECT status FROM images WHERE id = ?", (start,)) == before


def test_undo_redo_through_the_window(window, qtbot):
    p = window.project
    image = window.current_image_id()
    ann = p.add_annotation(image, p.classes()[0].id, "box", bbox=(1, 1, 3, 3))
    qtbot.waitUntil(lambda: window.actions["edit.undo"].isEnabled())
    qtbot.keyClick(window, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert sql(p, "SELECT COUNT(*) FROM annotations WHERE id = ?", (ann,)) == [(0,)]
    qtbot.waitUntil(lambda: ann not in canvas_shape_ids(window.canvas))
    # The actions follow the undo stack through queued events, as between keystrokes.
    qtbot.waitUntil(lambda: window.actions["edit.redo"].isEnabled())
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, KEY.Key_Z, shift_ctrl)
    assert sql(p, "SELECT COUNT(*) FROM annotations WHERE id = ?", (ann,)) == [(1,)]
    qtbot.keyClick(window, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.actions["edit.redo"].isEnabled())
    qtbot.keyClick(window, KEY.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert sql(p, "SELECT COUNT(*) FROM annotations WHERE id = ?", (ann,)) == [(1,)]
    qtbot.waitUntil(lambda: ann in canvas_shape_ids(window.canvas))
    qtbot.waitUntil(lambda: "add shape" in window.actions["edit.undo"].text())


def test_class_keys_reclass_the_selected_shapes(window, qtbot):
    p = window.project
    image = window.current_image_id()  # two shapes: cat and dog
    anns = p.annotations(image_ids=[image])
    qtbot.waitUntil(lambda: canvas_shape_ids(window.canvas) == {a.id for a in anns})
    bird = p.class_by_name("bird").id
    select_shapes(window.canvas, [anns[0].id])
    qtbot.keyClick(window, KEY.Key_3)  # the third class: bird
    rows = dict(sql(p, "SELECT id, class_id FROM annotations WHERE image_id = ?", (image,)))
    assert rows[anns[0].id] == bird
    assert rows[anns[1].id] == anns[1].class_id  # not selected: unchanged
    assert window.class_dock.current_class == bird
    qtbot.waitUntil(lambda: window.actions["edit.undo"].isEnabled())
    qtbot.keyClick(window, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert sql(p, "SELECT class_id FROM annotations WHERE id = ?", (anns[0].id,)) == [
        (anns[0].class_id,)
    ]
    qtbot.keyClick(window, KEY.Key_9)  # no ninth class: a message, nothing else
    assert window.class_dock.current_class == bird


def test_tool_keys(window, qtbot):
    seen = []
    window.canvas.tool_changed.connect(seen.append)
    qtbot.keyClick(window, KEY.Key_W)
    assert window.actions["tool.box"].isChecked()
    qtbot.keyClick(window, KEY.Key_P)
    assert window.actions["tool.polygon"].isChecked()
    qtbot.keyClick(window, KEY.Key_Escape)
    assert window.actions["tool.select"].isChecked()
    assert seen[:3] == ["box", "polygon", "select"]


# --- browser ------------------------------------------------------------------------------


def test_filters_show_the_right_counts(window, qtbot):
    p = window.project
    b = window.browser
    dog = p.class_by_name("dog").id
    counts = wait_counts(qtbot, b)
    n_dog = sql(p, "SELECT COUNT(DISTINCT image_id) FROM annotations WHERE class_id = ?", (dog,))
    assert counts["classes"][dog] == n_dog[0][0] == 2
    assert f"dog ({n_dog[0][0]})" in [
        b.class_combo.itemText(i) for i in range(b.class_combo.count())
    ]
    b.set_filter("classes", dog)
    assert b.model.rowCount() == 2
    assert set(b.ids()) == {
        r[0] for r in sql(p, "SELECT image_id FROM annotations WHERE class_id = ?", (dog,))
    }
    b.set_filter("classes", None)
    b.set_filter("status", "new")
    assert b.model.rowCount() == sql(p, "SELECT COUNT(*) FROM images WHERE status = 'new'")[0][0]
    counts = wait_counts(qtbot, b)
    assert b.status_combo.itemText(b.status_combo.findData("done")) == "Done (1)"
    b.set_filter("status", None)
    b.set_filter("source", "unlabelled")
    unl = sql(p, "SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM annotations)")
    assert b.model.rowCount() == unl[0][0]
    b.set_filter("source", None)
    b.text_edit.setText("ZZ/")  # typing refreshes after a pause; case does not matter
    qtbot.waitUntil(lambda: b.model.rowCount() == 1)
    assert "1 of 9 images" in b.count_label.text()


def test_sort_and_compact_toggle(window, qtbot):
    b = window.browser
    b.sort_combo.setCurrentIndex(b.sort_combo.findData("objects"))
    b.desc_button.setChecked(True)  # refreshes
    first = b.ids()[0]
    assert first == window.project.images()[0].id  # two shapes: the most
    qtbot.keyClick(window, KEY.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert b.model.compact and b.view.viewMode() == b.view.ViewMode.ListMode
    assert "Done" in b.model.data(b.model.index(0), Qt.ItemDataRole.DisplayRole)


def test_clicking_a_thumbnail_opens_it(window, qtbot):
    b = window.browser
    ids = b.ids()
    rect = b.view.visualRect(b.model.index(3))
    qtbot.mouseClick(b.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.current_image_id() == ids[3]


def test_bulk_split_status_and_delete(window, qtbot, monkeypatch):
    p = window.project
    b = window.browser
    ids = b.ids()
    chosen = ids[2:6]
    b.select_ids(chosen)
    assert b.selected_ids() == chosen
    assert "4 selected" in b.count_label.text()
    b.set_split_selected("test")
    assert sql(p, "SELECT id FROM images WHERE split = 'test' ORDER BY id") == [
        (i,) for i in sorted(chosen)
    ]
    b.set_status_selected("needs_review")
    assert sql(p, "SELECT COUNT(*) FROM images WHERE status = 'needs_review'") == [(4,)]
    qtbot.wait(50)
    assert b.selected_ids() == chosen  # the refresh kept the selection

    asked = []

    def answer(result):
        def question(*args, **kwargs):
            asked.append(args[2])
            return result

        return question

    monkeypatch.setattr(plain_text, "ask", answer(False))
    assert not b.delete_selected()
    assert p.image_count() == 9
    monkeypatch.setattr(plain_text, "ask", answer(True))
    window.show_image(chosen[0])
    b.select_ids(chosen)
    assert b.delete_selected()
    assert "these 4 images" in asked[-1]
    assert p.image_count() == 5
    qtbot.waitUntil(lambda: b.model.rowCount() == 5)
    # the shown image was deleted: the one now in its place is shown
    assert window.current_image_id() in b.ids()
    qtbot.keyClick(window, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: b.model.rowCount() == 9)


def test_corrupt_image_does_not_crash(window, qtbot):
    b = window.browser
    corrupt = next(r.id for r in window.project.images() if "zz/" in r.path)
    messages = []
    window.canvas.message.connect(messages.append)
    b.view.setCurrentIndex(b.model.index(b.model.row_of(corrupt)))  # as a click does
    assert window.current_image_id() == corrupt
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    b.view.scrollToBottom()
    qtbot.waitUntil(lambda: corrupt in b.thumbs.errors, timeout=5000)
    assert "img_000.png" in window.status_bar.image_label.text()
    qtbot.keyClick(window, KEY.Key_A)  # still responsive
    assert window.current_image_id() != corrupt


def test_thumbnails_are_cached_on_disk(window, qtbot):
    b = window.browser
    first = b.ids()[0]
    qtbot.waitUntil(lambda: b.thumbs.pixmap(first) is not None, timeout=5000)
    checksum = window.project.image(first).checksum
    assert (window.project.cache_dir / "thumbs" / f"{checksum}.jpg").is_file()


def test_thumbnails_still_being_made_when_the_browser_goes(qtbot, tmp_path):
    """Deleting the loader while workers run: their results are dropped, nothing raises
    in a worker (it used to: "Signal source has been deleted")."""
    import shiboken6
    from PySide6.QtCore import QSize

    from studio.ui.browser.thumbnails import ThumbnailLoader

    loader = ThumbnailLoader(QSize(64, 64))
    loader.pool.setMaxThreadCount(4)
    for i in range(8):
        loader.request(i, tmp_path / f"missing_{i}.png", "")
    assert loader.started == 4
    shiboken6.delete(loader)  # its pool, a child, waits for the running jobs
    qtbot.wait(50)  # the queued results arrive for nobody


# --- classes ------------------------------------------------------------------------------


def test_class_dialog_merge_asks_and_is_undoable(window, qtbot, monkeypatch):
    p = window.project
    cat, dog = p.class_by_name("cat").id, p.class_by_name("dog").id
    before = dict(sql(p, "SELECT id, class_id FROM annotations"))
    asked = []

    def question(parent, title, text, *args):
        asked.append(text)
        return len(asked) > 1

    monkeypatch.setattr(plain_text, "ask", question)
    dialog = ClassDialog(p, window)
    qtbot.addWidget(dialog)
    assert dialog.merge([dog], cat) is None  # declined: nothing changed
    assert dict(sql(p, "SELECT id, class_id FROM annotations")) == before
    assert "Move 2 shapes from 'dog' to 'cat'" in asked[0]
    assert dialog.merge([dog], cat) == 2
    assert sql(p, "SELECT COUNT(*) FROM annotations WHERE class_id = ?", (dog,)) == [(0,)]
    assert p.class_by_name("dog") is None
    qtbot.waitUntil(lambda: window.class_dock.tree.topLevelItemCount() == 2)
    qtbot.keyClick(window, KEY.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert dict(sql(p, "SELECT id, class_id FROM annotations")) == before
    qtbot.waitUntil(lambda: window.class_dock.tree.topLevelItemCount() == 3)


def test_class_dialog_delete_rename_reorder(window, qtbot, monkeypatch):
    p = window.project
    monkeypatch.setattr(plain_text, "ask", lambda *a: True)
    dialog = ClassDialog(p, window)
    qtbot.addWidget(dialog)
    bird = p.class_by_name("bird").id
    assert dialog.delete(bird) == 1
    assert sql(p, "SELECT COUNT(*) FROM annotations WHERE class_id = ?", (bird,)) == [(0,)]
    p.undo()
    dialog.reload()
    assert [dialog.list.item(i).text().split()[0] for i in range(3)] == ["cat", "dog", "bird"]
    dialog.list.setCurrentRow(2)
    dialog.move_selected(-1)
    assert [c.name for c in p.classes()] == ["cat", "bird", "dog"]
    assert window.class_dock.class_for_key(2) == p.class_by_name("dog").id  # keys stay
    qtbot.waitUntil(lambda: window.class_dock.tree.topLevelItem(1).text(1) == "bird")


def test_class_picker_and_visibility(window, qtbot, monkeypatch):
    from studio.ui.classes.picker import ClassPicker

    p = window.project
    picker = ClassPicker(p.classes(), window)
    qtbot.addWidget(picker)
    picker.search.setText("bi")
    qtbot.keyClick(picker.search, KEY.Key_Return)
    assert picker.chosen == p.class_by_name("bird").id
    hidden = []
    window.class_dock.hidden_changed.connect(hidden.append)
    window.class_dock.set_hidden(p.class_by_name("cat").id, True)
    assert hidden[-1] == [p.class_by_name("cat").id]


# --- shortcuts, imports, state ------------------------------------------------------------


def test_shortcut_list_and_override(window, qtbot, monkeypatch):
    from studio.ui.shortcuts import SHORTCUTS, ShortcutsDialog

    shown = []
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda self: shown.append(self.rows()) or 0)
    qtbot.keyClick(window, KEY.Key_Question)
    assert shown and len(shown[0]) == len(SHORTCUTS)
    assert ("Navigate", "Next image", "D, Right") in shown[0]
    # an override in QSettings applies at once: N becomes "next image"
    from PySide6.QtGui import QKeySequence

    window.shortcuts.set_keys("nav.next", [QKeySequence("N")])
    ids = window.browser.ids()
    qtbot.keyClick(window, KEY.Key_N)
    assert window.current_image_id() == ids[1]
    qtbot.keyClick(window, KEY.Key_D)  # no longer bound
    assert window.current_image_id() == ids[1]
    window.shortcuts.reset_all()
    qtbot.keyClick(window, KEY.Key_D)
    assert window.current_image_id() == ids[2]
    assert not window.shortcuts.conflicts()


def test_dropped_folder_is_imported_with_a_report(window, qtbot, tmp_path, window_write_images):
    folder = tmp_path / "more"
    window_write_images(folder, 3, seed=42)
    (folder / "broken.png").write_bytes(b"not a png")
    task = window.transfers.import_paths([folder])
    qtbot.waitUntil(lambda: task.done, timeout=10_000)
    qtbot.waitUntil(lambda: window.browser.model.rowCount() == 12)
    report = window.transfers.last_report
    assert "imported 3 images" in report
    assert "broken.png" in report


def test_geometry_and_dock_state_are_remembered(qtbot, project_dir):
    from studio.ui.common.settings import settings

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert not w.browser.isVisible()  # the start page has no docks
    w.open_project(Project.open(project_dir))
    assert w.browser.isVisible() and w.class_dock.isVisible()
    w.resize(700, 500)  # inside the offscreen screen (800 x 600)
    w.class_dock.hide()
    size = (w.width(), w.height())  # at least the layout's minimum width
    w.close()
    assert settings().value("window/geometry") is not None
    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert w2.stack.currentWidget() is w2.start_page
    assert (w2.width(), w2.height()) == size
    w2.open_project(Project.open(project_dir))
    assert w2.browser.isVisible() and not w2.class_dock.isVisible()
    w2.close()


# --- scale --------------------------------------------------------------------------------


def _fake_images(project: Project, n: int) -> None:
    now = S.utcnow()
    rows = [
        {"path": f"f/{i:06d}.jpg", "width": 640, "height": 480, "orientation": 1,
         "checksum": f"{i:032x}", "file_size": 1, "status": "new", "split": "train",
         "created_at": now, "updated_at": now}
        for i in range(n)
    ]  # fmt: skip
    with project.engine.begin() as conn:
        conn.execute(insert(S.Image), rows)


@pytest.mark.slow
def test_browser_with_100k_images(qtbot, tmp_path):
    project = Project.create(tmp_path / "big")
    _fake_images(project, 100_000)
    dock = BrowserDock()
    qtbot.addWidget(dock)
    dock.resize(360, 800)
    t = time.perf_counter()
    dock.set_project(project)
    dock.show()
    qtbot.waitExposed(dock)
    assert dock.model.rowCount() == 100_000
    assert time.perf_counter() - t < 2.0
    qtbot.waitUntil(lambda: dock.thumbs.requested > 0)  # the first paint asked
    view = dock.view
    per_row = max(1, view.viewport().width() // view.gridSize().width())
    visible = per_row * (view.viewport().height() // view.gridSize().height() + 2)
    first = dock.thumbs.requested
    assert 0 < first <= visible
    for k in range(1, 41):  # a fast scroll to the bottom
        view.scrollTo(dock.model.index(k * 99_999 // 40))
        qtbot.wait(1)
    qtbot.wait(150)  # scrolling stopped: requests for rows scrolled past are dropped
    # thumbnails were asked for painted rows only, and what scrolled away was dropped
    assert dock.thumbs.requested <= first + 41 * visible
    assert dock.thumbs.pending_count() <= visible
    dock.close()
    dock.thumbs.wait(5000)
    project.close()


def test_screenshot_helper(qtbot, tmp_path):
    from studio.core.demo import create_demo_project
    from studio.ui.app import screenshot

    create_demo_project(tmp_path / "demo", n_images=6, image_size=(320, 240)).close()
    out = screenshot(tmp_path / "demo", tmp_path / "shot.png")
    assert out.stat().st_size > 10_000


def test_start_page_without_project(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    assert w.stack.currentWidget() is w.start_page
    assert not w.actions["nav.next"].isEnabled()
    assert not w.open_path(Path("/nonexistent/project"))  # an error box, not a crash


@pytest.fixture(autouse=True)
def _no_modal_boxes(monkeypatch):
    """A stray critical() would block the test run; record it instead."""
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: QMessageBox.StandardButton.Ok)
    monkeypatch.setattr(QMessageBox, "exec", lambda self: QMessageBox.StandardButton.Ok)


def test_make_project_fixture_is_sane(tmp_path, window_make_project):
    d = window_make_project(tmp_path / "p", n_images=3, corrupt=False)
    with Project.open(d) as p:
        assert p.image_count() == 3


def test_export_runs_in_a_worker(window, qtbot, tmp_path):
    import json

    out = tmp_path / "export" / "annotations.json"
    out.parent.mkdir()
    task = window.transfers.export("coco", out)
    qtbot.waitUntil(lambda: task.done, timeout=10_000)
    data = json.loads(out.read_text())
    assert len(data["annotations"]) == 4
    assert str(out) in window.transfers.last_report


def test_ctrl_t_shows_the_training_panel_for_this_project(window, qtbot):
    assert not window.train_dock.isVisible()
    qtbot.keyClick(window, KEY.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert window.train_dock.isVisible()
    assert window.train_dock.project is window.project
    qtbot.keyClick(window, KEY.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert not window.train_dock.isVisible()
    window.close_project()
    assert window.train_dock.project is None


@pytest.mark.parametrize(
    ("action_id", "dock"),
    [("view.inspect", "inspect_dock"), ("view.analysis", "analysis_dock")],
)
def test_each_hidden_panel_opens_by_its_keys_and_sits_in_the_view_menu(
    window, qtbot, action_id, dock
):
    """A hidden dock's own toggle is live only where a visible widget holds it: Inspect
    and Analysis were in no menu, so Ctrl+Shift+I and Ctrl+Shift+A did nothing."""
    panel = getattr(window, dock)
    assert not panel.isVisible()
    keys = window.actions[action_id].shortcuts()
    assert keys, f"{action_id} has no keys"
    combo = keys[0][0]
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, combo.key(), combo.keyboardModifiers())
    assert panel.isVisible()
    qtbot.keyClick(window.canvas, combo.key(), combo.keyboardModifiers())
    assert not panel.isVisible()
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.actions[action_id] in view.actions()


def test_a_panel_opened_first_gets_most_of_the_column_and_the_class_list_its_rows(window, qtbot):
    """Inspect opened under Classes and Objects got a third of the column while a short
    class list kept empty rows; later the user's own sizes stand."""
    window.resize(1600, 1000)
    qtbot.wait(50)
    column = (window.class_dock, window.objects, window.inspect_dock)
    window.actions["view.inspect"].trigger()
    share = lambda: window.inspect_dock.height() / sum(d.height() for d in column)  # noqa: E731
    qtbot.waitUntil(lambda: share() >= 0.55, timeout=2000)
    assert window.class_dock.height() <= window.class_dock.wanted_height() + 8
    n = window.class_dock.tree.topLevelItemCount()
    rect = window.class_dock.tree.visualItemRect(window.class_dock.tree.topLevelItem(n - 1))
    assert rect.bottom() <= window.class_dock.tree.viewport().height()  # every class seen
    # The user gives Objects more room; closing and reopening the panel keeps it.
    window.resizeDocks([window.objects, window.inspect_dock], [400, 300], Qt.Orientation.Vertical)
    qtbot.wait(50)
    before = window.inspect_dock.height()
    window.actions["view.inspect"].trigger()
    window.actions["view.inspect"].trigger()
    qtbot.wait(100)
    assert abs(window.inspect_dock.height() - before) <= 2


def test_training_opens_under_the_canvas_and_the_right_column_keeps_its_height(window, qtbot):
    """Training spanned the window's width and squeezed Classes and Objects into the top
    third: the objects list showed two rows."""
    window.resize(1600, 1000)
    qtbot.wait(50)
    before = window.objects.height()
    qtbot.keyClick(window, KEY.Key_T, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.train_dock.isVisible)
    qtbot.wait(50)
    assert window.objects.height() == before
    right_edge = window.train_dock.geometry().right()
    assert right_edge < window.objects.geometry().left()


def test_inspect_and_analysis_open_as_tabs_the_newest_in_front(window, qtbot):
    """Both open stacked under Classes and Objects made the window taller than a 1080-px
    screen; Analysis opened while Inspect showed stayed behind it."""
    window.resize(1600, 1000)
    window.actions["view.inspect"].trigger()
    qtbot.waitUntil(lambda: not window.inspect_dock.visibleRegion().isEmpty())
    window.actions["view.analysis"].trigger()
    assert window.tabifiedDockWidgets(window.inspect_dock) == [window.analysis_dock]
    qtbot.waitUntil(lambda: not window.analysis_dock.visibleRegion().isEmpty())
    assert window.inspect_dock.visibleRegion().isEmpty()  # behind, in its tab
    assert window.height() == 1000
    window.actions["view.inspect"].trigger()  # hidden: shown again, in front
    window.actions["view.inspect"].trigger()
    qtbot.waitUntil(lambda: not window.inspect_dock.visibleRegion().isEmpty())


def test_a_long_run_name_does_not_widen_the_panels(window, qtbot):
    """The run combo boxes sized themselves to "#1 <model>-<date> (finished) ★ current
    model": Activation maps pushed the right-hand column 580 px wide."""
    from studio.ml.train.config import TrainConfig

    narrow_dock = window.analysis_dock.minimumSizeHint().width()
    name = "composable_cspnet_pan_fcos-20261130-155304-with-a-long-suffix"
    run = window.project.create_run(name, "composable_cspnet_pan_fcos", "detection",
                                    TrainConfig(model="composable_cspnet_pan_fcos").to_dict())  # fmt: skip
    window.project.update_run(run.id, status="finished")
    for panel in (window.analysis_dock.cam, window.inspect_dock.bar):
        panel.reload_runs()
    window.analysis_dock.zoom.reload_runs()
    combos = (window.analysis_dock.cam.runs, window.inspect_dock.bar.runs,
              window.analysis_dock.zoom.model)  # fmt: skip
    assert all(any(name in c.itemText(i) for i in range(c.count())) for c in combos)
    assert all(c.minimumSizeHint().width() < 300 for c in combos)
    assert window.analysis_dock.minimumSizeHint().width() == narrow_dock


def test_an_error_naming_a_long_path_wraps_instead_of_widening_the_panel(window, qtbot):
    """Such an error widened Inspect to its length; it must show whole, on more lines."""
    from PySide6.QtCore import QRect

    window.resize(1600, 1000)
    window.actions["view.inspect"].trigger()
    qtbot.waitUntil(window.inspect_dock.isVisible)
    before = window.inspect_dock.width()
    path = "/home/someone/projects/" + "a-long-folder-name/" * 8 + "best.pt"
    status = window.inspect_dock.bar.status
    status.setText(f"Prediction failed: {path}: not a readable checkpoint")
    qtbot.wait(100)
    assert window.inspect_dock.width() == before
    flags = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.TextFlag.TextWordWrap)
    needed = status.fontMetrics().boundingRect(QRect(0, 0, status.width(), 10**6), flags,
                                               status.text())  # fmt: skip
    assert needed.height() > 2 * status.fontMetrics().height()  # it takes several lines
    assert status.height() >= needed.height()  # and has them: the whole error shows


def test_a_run_made_by_another_process_reaches_inspect_and_analysis(window, qtbot, project_dir):
    """Runs are made and ended by the checks' worker, the training child or `studio train`
    in a terminal, through their own Project: a run trained from the window's Train was
    missing from Inspect's and Analysis's run boxes until the project was reopened."""
    from studio.ml.train.config import TrainConfig

    model = "composable_cspnet_pan_fcos"
    with Project.open(project_dir) as other:  # another process's view of the project
        run = other.create_run("elsewhere", model, "detection", TrainConfig(model=model).to_dict())
        other.update_run(run.id, status="finished")
    boxes = (window.inspect_dock.bar.runs, window.analysis_dock.cam.runs)
    assert all(box.count() == 0 for box in boxes)  # the window's project heard nothing
    qtbot.waitUntil(lambda: all(box.count() == 1 for box in boxes), timeout=10_000)
    assert "#1 elsewhere (finished)" in window.inspect_dock.bar.runs.currentText()

    def finished_run(name: str) -> int:
        with Project.open(project_dir) as other:
            cfg = TrainConfig(model=model).to_dict()
            run = other.create_run(name, model, "detection", cfg)
            other.update_run(run.id, status="finished")
            other.set_current_model(run.id)  # as a finished run becomes the project's model
        return run.id

    # Following the project's model: a newly trained one takes its place in the boxes.
    second = finished_run("second")
    zoom = window.analysis_dock.zoom.model
    chosen = lambda: {box.currentData() for box in boxes} | {zoom.currentData()[1]}  # noqa: E731
    qtbot.waitUntil(lambda: chosen() == {second}, timeout=10_000)
    # A run chosen by hand (not the project's model) stays chosen.
    for box in (*boxes, zoom):
        box.setCurrentIndex(next(i for i in range(box.count()) if "#1 " in box.itemText(i)))
    finished_run("third")
    qtbot.waitUntil(lambda: boxes[0].count() == 3, timeout=10_000)
    assert chosen() == {run.id}


def test_with_inspect_open_a_still_goes_back_and_shift_a_accepts(window, qtbot):
    """Accept was bound to A, which is also Previous image: with Inspect open Qt found A
    ambiguous and did neither ("QAction::event: Ambiguous shortcut overload: A")."""
    p = window.project
    ids = [im.id for im in p.images()]
    run = p.create_run("r", "composable_cspnet_pan_fcos", "detection", {})
    p.update_run(run.id, status="finished")
    p.replace_predictions(run.id, [dict(image_id=ids[1], class_id=p.classes()[0].id,
                                        bbox=(5.0, 5.0, 20.0, 20.0), score=0.9)])  # fmt: skip
    window.actions["view.inspect"].trigger()
    dock = window.inspect_dock
    dock.bar.reload_runs()
    window.show_image(ids[1])
    qtbot.waitUntil(lambda: dock.review.list.count() == 1)
    dock.review.list.setCurrentRow(0)
    canvas = window.canvas
    canvas.setFocus()
    before = len(p.annotations(image_ids=[ids[1]]))
    qtbot.keyClick(canvas, KEY.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert len(p.annotations(image_ids=[ids[1]])) == before + 1  # accepted
    assert window.current_image_id() == ids[1]
    qtbot.keyClick(canvas, KEY.Key_A)
    assert window.current_image_id() == ids[0]  # A: the previous image, as ever
    assert dock.review.btn_accept.text() == "Accept (Shift+A)"
    assert window.shortcuts.conflicts() == {}


def test_training_and_inspect_open_on_a_laptop_screen_stay_on_it(window, qtbot):
    """At 1366x768 the training panel and Inspect opened together grew the window to
    827 px, and the training panel's wrapped lines were squeezed over one another."""
    window.resize(1366, 768)
    window.actions["view.inspect"].trigger()
    window.actions["view.training"].trigger()
    qtbot.wait(200)
    assert window.height() <= 768
    left = window.train_dock.recipe_label.parentWidget()
    while left is not None and not hasattr(left, "verticalScrollBar"):
        left = left.parentWidget()
    assert left is not None  # the training controls scroll rather than squeeze
    assert window.inspect_dock.minimumSizeHint().height() < 200

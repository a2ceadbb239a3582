"""What a labeller coming from LabelImg, labelme or CVAT hit in a day of work, each
driven through real mouse and key events and checked in the database."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QPoint, Qt

sys.path.insert(0, str(Path(__file__).parent))
from canvas_helpers import click, drag  # noqa: E402

from studio.ui.classes.dock import ClassIdRole  # noqa: E402

KEY = Qt.Key
LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


def _class_id(window, name: str) -> int:
    return next(c.id for c in window.project.classes() if c.name == name)


def _class_row(window, class_id: int):
    tree = window.class_dock.tree
    items = (tree.topLevelItem(i) for i in range(tree.topLevelItemCount()))
    return next(it for it in items if it.data(0, ClassIdRole) == class_id)


def _click_class_box(qtbot, window, class_id: int) -> None:
    """A click on the box at the left of a class's row (the one that hides it)."""
    tree = window.class_dock.tree
    rect = tree.visualItemRect(_class_row(window, class_id))
    qtbot.mouseClick(tree.viewport(), LEFT, pos=QPoint(rect.left() + 8, rect.center().y()))


def test_hiding_a_class_changes_no_shape_and_not_the_current_class(window, qtbot):
    """Unticking a class's box with a shape selected used to give that shape the class
    (the click on the box also counted as picking the class)."""
    first = window.project.images()[0].id
    window.show_image(first)
    cat, dog = _class_id(window, "cat"), _class_id(window, "dog")
    shape = next(a for a in window.project.annotations(image_ids=[first]) if a.class_id == cat)
    window.labelling.pick_class(cat)
    window.canvas.select([shape.id])
    _click_class_box(qtbot, window, dog)
    qtbot.waitUntil(lambda: dog in window.class_dock.hidden_classes(), timeout=2000)
    qtbot.wait(20)
    assert window.project.annotations(ids=[shape.id])[0].class_id == cat
    assert window.class_dock.current_class == cat
    # A click on the name still picks the class, for the selected shape too.
    tree = window.class_dock.tree
    rect = tree.visualItemRect(_class_row(window, dog))
    qtbot.mouseClick(tree.viewport(), LEFT, pos=QPoint(rect.center().x(), rect.center().y()))
    qtbot.waitUntil(
        lambda: window.project.annotations(ids=[shape.id])[0].class_id == dog, timeout=2000
    )


def test_next_image_under_a_filter_goes_on_after_the_image_just_labelled(window, qtbot):
    """Working through "Unlabelled": the labelled image leaves the list at once, and D
    must go to the image after it, A to the one before (not to the first or last)."""
    browser = window.browser
    browser.source_combo.setCurrentIndex(browser.source_combo.findData("unlabelled"))
    browser.refresh_now()
    qtbot.waitUntil(lambda: len(browser.ids()) >= 4, timeout=3000)
    order = list(browser.ids())
    window.show_image(order[1])
    qtbot.wait(50)
    window.project.add_annotation(order[1], _class_id(window, "cat"), "box", bbox=(2, 2, 9, 9))
    qtbot.waitUntil(lambda: order[1] not in browser.ids(), timeout=3000)
    window.activateWindow()
    qtbot.keyClick(window.canvas.viewport(), KEY.Key_D)
    assert window.current_image_id() == order[2]
    window.project.add_annotation(order[2], _class_id(window, "cat"), "box", bbox=(2, 2, 9, 9))
    qtbot.waitUntil(lambda: order[2] not in browser.ids(), timeout=3000)
    qtbot.keyClick(window.canvas.viewport(), KEY.Key_A)
    assert window.current_image_id() == order[0]


def test_escape_mid_drag_leaves_nothing_to_redo_and_keeps_the_redo_before(setup, qtbot):
    view, project, ids = setup
    cid = project.classes()[0].id
    project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 100, 100))
    project.add_annotation(ids[0], cid, "box", bbox=(400, 100, 50, 50))
    project.undo()  # the second box can be redone
    assert project.undo_stack.redo_text is not None
    drag_from, to = view.mapFromScene(150, 150), view.mapFromScene(200, 220)
    qtbot.mousePress(view.viewport(), LEFT, pos=drag_from)
    qtbot.mouseMove(view.viewport(), to)
    qtbot.keyClick(view.viewport(), KEY.Key_Escape)
    qtbot.mouseRelease(view.viewport(), LEFT, pos=to)
    (box,) = project.annotations(image_ids=[ids[0]])
    assert box.bbox == (100, 100, 100, 100)
    # Redo brings back the second box, not the cancelled move.
    project.redo()
    boxes = sorted(a.bbox for a in project.annotations(image_ids=[ids[0]]))
    assert boxes == [(100, 100, 100, 100), (400, 100, 50, 50)]


def test_drawing_with_a_hidden_class_shows_the_class_again(window, qtbot):
    window.show_image(window.project.images()[4].id)
    bird = _class_id(window, "bird")
    window.labelling.pick_class(bird)
    window.class_dock.set_hidden(bird, True)
    assert bird in window.canvas.shapes.hidden
    window.set_tool("box")
    view = window.canvas
    drag(view, [(10, 10), (30, 25), (40, 30)])
    (new,) = window.project.annotations(image_ids=[window.current_image_id()])
    assert new.class_id == bird
    assert window.class_dock.hidden_classes() == []
    assert view.shapes.items[new.id].isVisible()
    assert view.selected_annotation_ids() == [new.id]
    assert "shown again" in window.status_bar.currentMessage()


def test_ctrl_z_while_drawing_a_polygon_takes_back_its_last_point_only(window, qtbot):
    """labelme's way: Ctrl+Z mid-polygon removes the last point. It used to undo an
    earlier edit on the project, select that shape, and the next class key relabelled
    it with the polygon."""
    first = window.project.images()[0].id
    window.show_image(first)
    cat, bird = _class_id(window, "cat"), _class_id(window, "bird")
    moved = next(a for a in window.project.annotations(image_ids=[first]) if a.class_id == cat)
    window.project.update_annotations({moved.id: {"bbox": (6, 6, 20, 10)}})
    view = window.canvas
    view.select([moved.id])
    window.set_tool("polygon")
    for p in ((40, 30), (60, 30), (55, 45)):
        click(view, *p)
    view.setFocus()
    qtbot.waitUntil(lambda: window.actions["edit.undo"].isEnabled())  # a queued event
    qtbot.keyClick(view, KEY.Key_Z, CTRL)
    assert len(view.interaction.draft.points) == 2
    assert window.project.annotations(ids=[moved.id])[0].bbox == (6, 6, 20, 10)
    qtbot.keyClick(view, KEY.Key_3)  # bird, for the polygon only
    for p in ((55, 45), (42, 44)):
        click(view, *p)
    qtbot.keyClick(view, KEY.Key_Return)
    assert window.project.annotations(ids=[moved.id])[0].class_id == cat
    polygon = [a for a in window.project.annotations(image_ids=[first]) if a.kind == "polygon"]
    assert [p.class_id for p in polygon] == [bird]
    assert len(polygon[0].polygons[0]) == 8  # 2 points kept + 2 added


def test_ctrl_z_takes_back_a_point_with_nothing_to_undo_yet(window, qtbot):
    """On a fresh project the window's Undo is off; Ctrl+Z still takes back a point."""
    window.project.undo_stack.clear()
    window.show_image(window.project.images()[5].id)
    view = window.canvas
    window.set_tool("polygon")
    for p in ((10, 10), (40, 10), (30, 30)):
        click(view, *p)
    view.setFocus()
    qtbot.waitUntil(lambda: not window.actions["edit.undo"].isEnabled())
    qtbot.keyClick(view, KEY.Key_Z, CTRL)
    assert len(view.interaction.draft.points) == 2


def test_pasting_twice_stacks_no_copy_under_another(window, qtbot):
    first = window.project.images()[0].id
    window.show_image(first)
    view = window.canvas
    before = window.project.annotations(image_ids=[first])
    view.select([a.id for a in before])
    window.actions["edit.copy"].trigger()
    window.actions["edit.paste"].trigger()
    window.actions["edit.paste"].trigger()
    boxes = [a.bbox for a in window.project.annotations(image_ids=[first])]
    assert len(boxes) == 3 * len(before)
    assert len(set(boxes)) == len(boxes)  # every copy where it can be seen


def test_copy_from_previous_says_why_nothing_came_and_copies_no_twin(window, qtbot):
    images = window.project.images()
    window.show_image(images[0].id)
    window.actions["edit.copy_previous"].trigger()
    assert "No previous image" in window.status_bar.currentMessage()
    window.show_image(images[3].id)  # after images[2], which holds one polygon
    window.actions["edit.copy_previous"].trigger()
    window.actions["edit.copy_previous"].trigger()
    assert len(window.project.annotations(image_ids=[images[3].id])) == 1
    assert "already on this one" in window.status_bar.currentMessage()


def test_cvat_is_offered_for_import_and_not_for_export(window):
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    file_menu = {a.text(): a.menu() for a in menus["&File"].actions() if a.menu()}
    imports = [a.text() for a in file_menu["Import &annotations"].actions()]
    exports = [a.text() for a in file_menu["&Export"].actions()]
    assert "CVAT for images…" in imports and "CVAT for images…" not in exports
    assert "COCO…" in imports and "COCO…" in exports


def test_ctrl_z_in_the_classes_dialog_undoes_as_its_hint_says(window, qtbot):
    from studio.ui.classes.dialog import ClassDialog

    dialog = ClassDialog(window.project, window)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    cat = _class_id(window, "cat")
    window.project.rename_class(cat, "kitten")
    dialog.reload()
    dialog.list.setFocus()
    qtbot.keyClick(dialog.list, KEY.Key_Z, CTRL)
    assert next(c.name for c in window.project.classes() if c.id == cat) == "cat"
    assert dialog.list.item(0).text().startswith("cat")  # the list shows it at once
    qtbot.keyClick(dialog.list, KEY.Key_Y, CTRL)
    assert next(c.name for c in window.project.classes() if c.id == cat) == "kitten"


def test_check_boxes_have_a_visible_edge_in_the_dark_theme(window, qtbot):
    """Fusion draws a dark palette's check box as a near-black square with no edge:
    every check box of the window (attributes, Inspect's layers) gets one."""
    window.actions["view.inspect"].trigger()  # a hidden dock's boxes are drawn later
    boxes = [window.objects.attributes.flags["truncated"], window.inspect_dock.show_labels]
    boxes[1].setChecked(False)  # unticked: the edge alone shows where the box is
    window.actions["view.theme.dark"].trigger()
    qtbot.wait(50)

    def brightest_edge(box) -> int:
        image = box.grab().toImage()
        y = image.height() // 2
        # The indicator sits at the left: its edge is the brightest of its first pixels.
        return max(image.pixelColor(x, y).lightness() for x in range(0, 6))

    for box in boxes:  # the panel is lightness 43; Fusion's edge no more
        assert brightest_edge(box) >= 70, box.text()
    window.actions["view.theme.light"].trigger()
    qtbot.wait(50)
    assert [b.styleSheet() for b in boxes] == ["", ""]  # light: Fusion's own boxes


def test_double_clicking_an_object_row_asks_for_its_class(window, qtbot, monkeypatch):
    """labelme's way to relabel: double-click the shape in the list."""
    from studio.ui.classes.picker import ClassPicker

    first = window.project.images()[0].id
    window.show_image(first)
    cat, bird = _class_id(window, "cat"), _class_id(window, "bird")
    shape = next(a for a in window.project.annotations([first]) if a.class_id == cat)
    asked = []

    def choose_bird(picker):
        asked.append(True)
        picker.chosen = bird
        return 1

    monkeypatch.setattr(ClassPicker, "exec", choose_bird)
    tree = window.objects.tree
    qtbot.waitUntil(lambda: window.objects.model.row_of(shape.id) is not None, timeout=3000)
    row = window.objects.model.row_of(shape.id)
    rect = tree.visualRect(window.objects.model.index(row, 2))
    qtbot.mouseClick(tree.viewport(), LEFT, pos=rect.center())
    qtbot.mouseDClick(tree.viewport(), LEFT, pos=rect.center())
    assert asked
    qtbot.waitUntil(lambda: window.project.annotations(ids=[shape.id])[0].class_id == bird)


def test_the_neighbour_of_an_image_outside_the_list_is_none_for_copying() -> None:
    from studio.ui.labelling import neighbour

    ids, row = [1, 2, 3], {1: 0, 2: 1, 3: 2}.get
    assert neighbour(ids, ids, 9, +1, row) == 1  # a way into the list, for D
    assert neighbour(ids, ids, 9, -1, row, enter=False) is None  # nothing to copy from
    assert neighbour([], [], 9, -1, lambda _i: None) is None
    assert neighbour(ids, [1, 7, 3], 7, -1, row) == 1  # 7 left the list: the one before it

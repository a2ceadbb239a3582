"""The objects list of an image with many shapes is read a page per event-loop turn
(`RowFiller`), never all at once, and listed once every row is read: checked by the
rows read per turn and the column widths, not by timings.

The window fixture's project has 64x48 images; the fourth has no shape of its own."""

from __future__ import annotations

from canvas_helpers import many_polygons
from PySide6.QtCore import Qt

from studio.ui.objects import filling
from studio.ui.objects.filling import PAGE_SIZE
from studio.ui.objects.model import Column

LEFT = Qt.MouseButton.LeftButton
N = 3 * PAGE_SIZE + 30


def _dense(window) -> tuple[int, list[int]]:
    image = window.project.images()[3].id
    return image, many_polygons(window.project, image, N, 64, 64)  # some past the edge


def _turns(dock) -> list[int]:
    """Run the filler's turns now; the rows listed after each."""
    listed = []
    while dock.filler.pending:
        dock.filler._timer.stop()
        dock.filler._turn()
        listed.append(len(dock.model.rows))
    return listed


def _click_row(qtbot, dock, ann_id: int) -> None:
    index = dock.proxy.mapFromSource(dock.model.index(dock.model.row_of(ann_id), Column.CLASS))
    dock.tree.scrollTo(index)
    qtbot.mouseClick(dock.tree.viewport(), LEFT, pos=dock.tree.visualRect(index).center())


def test_a_dense_image_is_listed_a_page_per_turn_and_a_row_selects_its_shape(
    window, qtbot, monkeypatch
):
    monkeypatch.setattr(filling, "TURN_SECONDS", 0.0)
    dock = window.objects
    image, ann = _dense(window)
    pages = dock.filler.pages_read
    window.show_image(image)
    assert dock.model.rows == [] and dock.filler.pages_read == pages  # nothing in the call
    assert _turns(dock) == [0, 0, 0, N]  # listed once, when every row is read
    assert dock.filler.per_turn == [1, 1, 1, 1]
    assert [r.ann_id for r in dock.model.rows] == ann
    assert dock.count_label.text() == f"{N} objects"
    _click_row(qtbot, dock, ann[-1])
    assert window.canvas.selected_annotation_ids() == [ann[-1]]
    dock.set_hidden([ann[0], ann[1]], True)
    assert dock.count_label.text() == f"{N} objects, 2 hidden"


def test_a_shape_selected_before_its_row_is_listed_is_selected_once_it_is(window, monkeypatch):
    monkeypatch.setattr(filling, "TURN_SECONDS", 0.0)
    dock = window.objects
    image, ann = _dense(window)
    window.show_image(image)
    window.canvas.select([ann[-1]])  # the canvas reads that row alone
    assert dock.selected_ids() == []  # not listed yet
    _turns(dock)
    assert dock.selected_ids() == [ann[-1]]


def test_a_re_read_after_an_edit_changes_the_list_once_and_keeps_the_selection(
    window, qtbot, monkeypatch
):
    monkeypatch.setattr(filling, "TURN_SECONDS", 0.0)
    dock = window.objects
    image, ann = _dense(window)
    window.show_image(image)
    _turns(dock)
    _click_row(qtbot, dock, ann[7])
    window.project.set_attributes([ann[7]], occluded=True)
    qtbot.waitUntil(lambda: dock.filler.pending, timeout=3000)  # the re-read, after a pause
    rows = list(dock.model.rows)
    assert set(_turns(dock)) == {N}  # the list as it was until the last page
    assert dock.filler.per_turn == [1, 1, 1, 1]
    assert dock.model.rows == rows and dock._attributes[ann[7]].occluded
    assert dock.selected_ids() == [ann[7]] and dock.attributes.flags["occluded"].isEnabled()


def test_the_columns_are_not_sized_by_measuring_rows(window):
    """Sizing the kind, source and score columns to their contents measured up to 1,000
    rows at every change of the list (~600 ms for 3,000 shapes)."""
    header = window.objects.tree.header()
    fixed = header.ResizeMode.Fixed
    assert all(header.sectionResizeMode(c) == fixed for c in (Column.KIND, Column.SOURCE,
                                                              Column.SCORE))  # fmt: skip

"""The objects list of an image with many shapes is read a page per event-loop turn
(`RowFiller`), never all at once, and a new image's rows are listed a page at a time
in a table that lays out none of them (no per-row size, and pages appended out of sight
repaint nothing); a re-read changes the list once. Checked by the rows read and listed
per turn, the table's layouts and the data it asks for, not by timings.

The window fixture's project has 64x48 images; the fourth has no shape of its own."""

from __future__ import annotations

from collections import Counter

from canvas_helpers import many_polygons
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication

from studio.ui.objects import filling
from studio.ui.objects.filling import PAGE_SIZE
from studio.ui.objects.model import Column

LEFT = Qt.MouseButton.LeftButton
N = 3 * PAGE_SIZE + 30


def _dense(window) -> tuple[int, list[int]]:
    image = window.project.images()[3].id
    return image, many_polygons(window.project, image, N, 64, 64)  # some past the edge


def _page_per_turn(monkeypatch) -> None:
    """One page a turn, and no turn but those `_turns` runs (the read after a paint
    waits RESUME_MS, which a slow `processEvents` could reach)."""
    monkeypatch.setattr(filling, "TURN_SECONDS", 0.0)
    monkeypatch.setattr(filling, "RESUME_MS", 60_000)


def _turns(dock) -> list[int]:
    """Run the filler's turns now, each followed by the events it posted (the table's
    layout and paint); the rows listed after each."""
    listed = []
    while dock.filler.pending:
        dock.filler._timer.stop()
        dock.filler._turn()
        dock.filler._timer.stop()  # its next turn is the loop's next call, not now
        QApplication.processEvents()
        dock._reload_timer.stop()  # the test's own inserts, reported late: no re-read
        listed.append(len(dock.model.rows))
    return listed


class RoleCounter(QObject):
    """Counts what the table asks the model for while it lays out and paints: the
    row-size role (a per-row layout asks it of every row) and the display role."""

    def __init__(self, model) -> None:
        super().__init__()
        self.roles: Counter[int] = Counter()
        self._data = model.data
        model.data = self.data  # Qt calls the override through the instance

    def data(self, index, role=0):
        self.roles[role] += 1
        return self._data(index, role)


def _click_row(qtbot, dock, ann_id: int) -> None:
    index = dock.proxy.mapFromSource(dock.model.index(dock.model.row_of(ann_id), Column.CLASS))
    dock.tree.scrollTo(index)
    qtbot.mouseClick(dock.tree.viewport(), LEFT, pos=dock.tree.visualRect(index).center())


def test_a_dense_image_is_listed_a_page_per_turn_and_a_row_selects_its_shape(
    window, qtbot, monkeypatch
):
    _page_per_turn(monkeypatch)
    dock = window.objects
    image, ann = _dense(window)
    pages = dock.filler.pages_read
    window.show_image(image)
    assert dock.model.rows == [] and dock.filler.pages_read == pages  # nothing in the call
    layouts, quiet = dock.tree.layouts, dock.tree.quiet_layouts
    assert _turns(dock) == [PAGE_SIZE, 2 * PAGE_SIZE, 3 * PAGE_SIZE, N]  # a page a turn
    assert dock.filler.per_turn == [1, 1, 1, 1]
    # The first page fills the list (one real layout); the three below it only move
    # the scroll bar.
    assert (dock.tree.layouts - layouts, dock.tree.quiet_layouts - quiet) == (4, 3)
    assert [r.ann_id for r in dock.model.rows] == ann
    assert dock.count_label.text() == f"{N} objects"
    _click_row(qtbot, dock, ann[-1])
    assert window.canvas.selected_annotation_ids() == [ann[-1]]
    dock.set_hidden([ann[0], ann[1]], True)
    assert dock.count_label.text() == f"{N} objects, 2 hidden"


class PaintCounter:
    """Counts the cells the list's painter draws, by (row, column)."""

    def __init__(self, table, monkeypatch) -> None:
        self.cells: Counter[tuple[int, int]] = Counter()
        painter = table.row_painter
        self._paint = painter.paint
        monkeypatch.setattr(painter, "paint", self.paint)  # Qt calls the instance's

    def paint(self, painter, option, index) -> None:
        self.cells[(index.row(), index.column())] += 1
        self._paint(painter, option, index)


class ModelCalls:
    """Counts the calls Qt makes into the Python model (each crosses into Python)."""

    def __init__(self, model, monkeypatch) -> None:
        self.calls: Counter[str] = Counter()
        for name in ("data", "index", "rowCount", "columnCount", "flags"):
            real = getattr(model, name)
            monkeypatch.setattr(model, name, self._counted(name, real))

    def _counted(self, name, real):
        def call(*args, **kwargs):
            self.calls[name] += 1
            return real(*args, **kwargs)

        return call


def _rows_in_sight(table) -> range:
    last = table.rowAt(table.viewport().height() - 1)
    return range(table.rowAt(0), (last if last >= 0 else table.model().rowCount() - 1) + 1)


def test_listing_asks_no_row_sizes_and_paints_only_the_rows_in_sight(window, monkeypatch):
    """A per-row layout asked every row's size (the tree view did, 3,000 rows through
    the Python model at each change); rows appended below the visible ones are not
    painted."""
    _page_per_turn(monkeypatch)
    dock = window.objects
    counter = RoleCounter(dock.model)
    painted = PaintCounter(dock.tree, monkeypatch)
    image, _ = _dense(window)
    window.show_image(image)
    _turns(dock)
    QApplication.processEvents()
    assert counter.roles[Qt.ItemDataRole.SizeHintRole] == 0
    in_sight = _rows_in_sight(dock.tree)
    # The rows in sight painted a few times (filled; the scroll bar appears and narrows
    # them), never a row below them.
    assert {row for row, _ in painted.cells} == set(in_sight)
    assert 0 < sum(painted.cells.values()) <= 4 * len(in_sight) * len(Column)


def test_a_repaint_draws_each_cell_in_sight_once_asking_the_model_one_index_each(
    window, monkeypatch
):
    """Qt's standard painter asked the model for seven roles of each cell, and the sort
    proxy in front of it the row and column counts behind every index it mapped (~1,600
    data and ~3,600 count calls for the ~40 rows in sight, ~15 ms): the list's painter
    draws from the rows' cells, and Qt asks the model for one index per cell."""
    _page_per_turn(monkeypatch)
    dock = window.objects
    image, ann = _dense(window)
    window.show_image(image)
    _turns(dock)
    dock.select_ids(ann[1:4])
    dock.set_hidden([ann[2]], True)
    QApplication.processEvents()
    painted, model = PaintCounter(dock.tree, monkeypatch), ModelCalls(dock.model, monkeypatch)
    dock.tree.viewport().repaint()
    in_sight = _rows_in_sight(dock.tree)
    assert len(in_sight) > 10
    assert painted.cells == Counter({(r, c): 1 for r in in_sight for c in Column})
    cells = len(in_sight) * len(Column)
    # At most one cell through Qt's standard painter: the one with the keyboard focus.
    assert model.calls["data"] <= 10
    assert model.calls["rowCount"] + model.calls["columnCount"] <= 4
    assert model.calls["index"] <= cells + 4


def test_a_shape_selected_before_its_row_is_listed_is_selected_once_it_is(window, monkeypatch):
    _page_per_turn(monkeypatch)
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
    _page_per_turn(monkeypatch)
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


def test_a_page_in_sight_is_painted_before_the_next_page_is_read(window, monkeypatch):
    """The first page's paint (~4 ms) and the next page's read (~4 ms) shared one pass
    of the event loop: after a page lands in sight the next read waits for the paint;
    pages below sight are read on at once."""
    monkeypatch.setattr(filling, "TURN_SECONDS", 1.0)  # time enough to read every page
    monkeypatch.setattr(filling, "RESUME_MS", 60_000)  # not read during this test's calls
    dock = window.objects
    image, _ = _dense(window)
    painted = PaintCounter(dock.tree, monkeypatch)
    window.show_image(image)
    timer = dock.filler._timer
    timer.stop()
    dock.filler._turn()
    assert len(dock.model.rows) == PAGE_SIZE  # one page: it fills the list
    assert timer.isActive() and timer.interval() == filling.PAINT_WAIT_MS  # at the latest
    QApplication.processEvents()  # the layout and the paint of that page, no read
    assert painted.cells and len(dock.model.rows) == PAGE_SIZE and dock.filler.pending
    assert timer.isActive() and timer.interval() == filling.RESUME_MS  # read on after it
    timer.stop()
    dock.filler._turn()  # the pages below sight, in one turn
    assert len(dock.model.rows) == N and not dock.filler.pending


def test_an_edit_while_a_new_image_is_listed_lets_the_listing_finish(window, monkeypatch):
    """An edit that arrived while a dense image's rows were still being listed emptied
    the list and listed it again from the first row; a stream of edits (a drag) kept
    the list from ever finishing. The listing now goes on, and one re-read follows."""
    _page_per_turn(monkeypatch)
    dock = window.objects
    image, ann = _dense(window)
    window.show_image(image)
    dock.filler._timer.stop()
    dock.filler._turn()  # the first page is listed
    assert len(dock.model.rows) == PAGE_SIZE
    window.project.set_attributes([ann[0]], occluded=True)
    dock.reload()  # what the project's event asks for, after its pause
    assert len(dock.model.rows) == PAGE_SIZE  # the rows listed so far stay
    listed = []
    while dock.filler.pending:
        dock.filler._timer.stop()
        dock.filler._turn()
        QApplication.processEvents()
        dock._reload_timer.stop()
        listed.append(len(dock.model.rows))
    assert min(listed) >= PAGE_SIZE and listed[-1] == N  # never emptied, all listed
    assert dock._attributes[ann[0]].occluded  # the edit read once the listing ended

"""The objects list sorts by a header click inside its model (no sort proxy in front of
it): the same keys and the same order of equal keys as the sort proxy it replaced (a
stable sort over the order shown, so one header's order stays within another's), the
selection following its shapes both ways with the canvas, and rows read or changed
later going after the rows with keys equal to theirs.

The window fixture shows img_000 (64x48) with box 1 (cat) and box 2 (dog), in image
pixels; classes cat, dog, bird."""

from __future__ import annotations

from canvas_helpers import many_polygons
from PySide6.QtCore import QPoint, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QApplication

from studio.core.kinds import ShapeKind, Source
from studio.ui.objects import filling
from studio.ui.objects.filling import PAGE_SIZE
from studio.ui.objects.model import KIND_LABELS, AnnIdRole, Column, ObjectsModel, SortRole

LEFT = Qt.MouseButton.LeftButton

# What each column sorted by, from the rows themselves: names ignoring case, a shape
# without a score below every score, hidden or locked after the others.
KEYS = {
    Column.EYE: lambda r, m: r.ann_id in m.hidden,
    Column.LOCK: lambda r, m: r.ann_id in m.locked,
    Column.CLASS: lambda r, m: r.class_name.lower(),
    Column.KIND: lambda r, m: KIND_LABELS[r.kind],
    Column.SOURCE: lambda r, m: r.source.value,
    Column.SCORE: lambda r, m: -1.0 if r.score is None else r.score,
}


def _mixed_shapes(window) -> list[int]:
    """Boxes 1 and 2 of img_000 plus shapes with ties in every column: a class named
    with a capital (after the others ignoring case, before them by code point), polygons,
    predicted shapes with equal scores."""
    p = window.project
    elk = p.add_class("Elk")
    ids = {c.name: c.id for c in p.classes()}
    image = p.images()[0].id
    tri = [[1, 1, 20, 1, 10, 15]]
    for cls, kind, source, score in (
        (elk, ShapeKind.BOX, Source.PREDICTED, 0.9),
        (ids["bird"], ShapeKind.POLYGON, Source.MANUAL, None),
        (ids["cat"], ShapeKind.BOX, Source.PREDICTED, 0.3),
        (ids["dog"], ShapeKind.POLYGON, Source.PREDICTED, 0.9),
        (elk, ShapeKind.POLYGON, Source.MANUAL, None),
        (ids["cat"], ShapeKind.BOX, Source.PREDICTED, 0.3),
    ):
        if kind == ShapeKind.BOX:
            p.add_annotation(image, cls, kind, bbox=(2, 2, 9, 9), source=source, score=score)
        else:
            p.add_annotation(image, cls, kind, polygons=tri, source=source, score=score)
    return [a.id for a in p.annotations() if a.image_id == image]


def _listed(window, qtbot, n: int) -> None:
    qtbot.waitUntil(lambda: len(window.objects.model.rows) == n, timeout=3000)


def _page_per_turn(monkeypatch) -> None:
    """One page a turn, and no turn but those `_turns` runs (the read after a paint
    waits RESUME_MS, which a slow `processEvents` could reach)."""
    monkeypatch.setattr(filling, "TURN_SECONDS", 0.0)
    monkeypatch.setattr(filling, "RESUME_MS", 60_000)


def _turns(dock) -> list[int]:
    """Run the filler's turns now, each followed by the events it posted; the rows
    listed after each."""
    listed = []
    while dock.filler.pending:
        dock.filler._timer.stop()
        dock.filler._turn()
        dock.filler._timer.stop()
        QApplication.processEvents()
        dock._reload_timer.stop()  # the test's own inserts, reported late: no re-read
        listed.append(len(dock.model.rows))
    return listed


def _click_header(qtbot, dock, col: Column) -> Qt.SortOrder:
    header = dock.tree.header()
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    qtbot.mouseClick(header.viewport(), LEFT, pos=QPoint(x, header.height() // 2))
    assert header.sortIndicatorSection() == col
    return header.sortIndicatorOrder()


def _expected(model: ObjectsModel, shown: list[int], col: Column, order: Qt.SortOrder,
              moved: tuple[int, ...] = ()) -> list[int]:  # fmt: skip
    """A stable sort of the order `shown` (both ways: equal keys keep that order), the
    `moved` shapes after their equals."""
    by_id = {r.ann_id: r for r in model.rows}
    key = KEYS[col]
    ids = [i for i in shown if i not in moved] + list(moved)
    desc = order == Qt.SortOrder.DescendingOrder
    return sorted(ids, key=lambda i: key(by_id[i], model), reverse=desc)


class SortProxy:
    """Qt's sort proxy in front of a model of the same rows, as the list had it: told
    of every header click, it gives the order the user saw."""

    def __init__(self, model: ObjectsModel) -> None:
        self.source = ObjectsModel()
        self.source.set_rows(sorted(model.rows, key=lambda r: r.ann_id))
        self.source.set_states(model.hidden, model.locked)
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.source)
        self.proxy.setSortRole(SortRole)
        self.proxy.sort(-1)  # the list's sort indicator until the first click
        self.order()

    def order(self) -> list[int]:
        return [self.proxy.index(r, 0).data(AnnIdRole) for r in range(self.proxy.rowCount())]


def _shown(model: ObjectsModel) -> list[int]:
    """The annotation ids in the order the table shows them (its model's rows)."""
    return [model.index(r, 0).data(AnnIdRole) for r in range(model.rowCount())]


def test_header_clicks_sort_as_the_sort_proxy_did_and_keep_the_selection(window, qtbot):
    dock, canvas = window.objects, window.canvas
    ann = _mixed_shapes(window)
    _listed(window, qtbot, len(ann))
    dock.set_hidden([ann[3], ann[6]], True)
    dock.set_locked([ann[4]], True)
    canvas.select([ann[5]])
    model, seen = dock.model, set()
    reference = SortProxy(model)
    for col in (Column.SCORE, Column.CLASS, Column.KIND, Column.SOURCE, Column.EYE,
                Column.LOCK, Column.CLASS):  # fmt: skip
        for _ in range(2):  # each way
            before = _shown(model)
            order = _click_header(qtbot, dock, col)
            seen.add(order)
            reference.proxy.sort(col, order)
            assert _shown(model) == _expected(model, before, col, order) == reference.order()
            assert dock.selected_ids() == [ann[5]] == canvas.selected_annotation_ids()
            assert dock.tree.selectionModel().isRowSelected(model.row_of(ann[5]))
    assert seen == {Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder}
    # Class after score: each class's shapes stay in score order (the proxy's stable
    # sort over the order shown); names ignore case ("Elk" after "dog").
    _click_header(qtbot, dock, Column.SCORE)
    score_order = dock.tree.header().sortIndicatorOrder()
    _click_header(qtbot, dock, Column.CLASS)
    for name in ("cat", "dog", "Elk"):
        scores = [-1.0 if r.score is None else r.score for r in model.rows
                  if r.class_name == name]  # fmt: skip
        desc = score_order == Qt.SortOrder.DescendingOrder
        assert scores == sorted(scores, reverse=desc), name
    names = [r.class_name for r in model.rows]
    if dock.tree.header().sortIndicatorOrder() == Qt.SortOrder.AscendingOrder:
        assert names.index("Elk") > names.index("dog")
    else:
        assert names.index("Elk") < names.index("dog")
    # A click on a row selects the shape shown in it on the canvas.
    row = next(i for i, r in enumerate(model.rows) if r.ann_id not in (ann[3], ann[5], ann[6]))
    dock.tree.scrollTo(model.index(row, Column.CLASS))
    rect = dock.tree.visualRect(model.index(row, Column.CLASS))
    qtbot.mouseClick(dock.tree.viewport(), LEFT, pos=rect.center())
    assert canvas.selected_annotation_ids() == [model.rows[row].ann_id]


def test_a_re_read_while_sorted_moves_a_changed_shape_and_keeps_the_selection(window, qtbot):
    """The changed shape goes after the shapes its new key equals; the others keep
    their places. (Qt's sort proxy re-sorted every row from id order at each re-read,
    for the model said every row changed: equal keys the user had put in another
    column's order were shuffled back at every edit.)"""
    dock = window.objects
    ann = _mixed_shapes(window)
    _listed(window, qtbot, len(ann))
    _click_header(qtbot, dock, Column.SCORE)  # equal classes in score order
    order = _click_header(qtbot, dock, Column.CLASS)
    bird = next(r.ann_id for r in dock.model.rows if r.class_name == "bird")
    window.canvas.select([bird])
    before = _shown(dock.model)
    elk = next(c.id for c in window.project.classes() if c.name == "Elk")
    window.project.set_annotation_class([bird], elk)  # its key changes: bird -> elk
    qtbot.waitUntil(lambda: dock.model.rows[dock.model.row_of(bird)].class_name == "Elk",
                    timeout=3000)  # fmt: skip
    assert _shown(dock.model) == _expected(dock.model, before, Column.CLASS, order, (bird,))
    assert dock.selected_ids() == [bird]
    assert dock.tree.selectionModel().isRowSelected(dock.model.row_of(bird))


def test_pages_read_while_sorted_land_in_their_sorted_places(window, qtbot, monkeypatch):
    _page_per_turn(monkeypatch)
    dock, p = window.objects, window.project
    image = p.images()[3].id
    cats = many_polygons(p, image, 2 * PAGE_SIZE + 10, 64, 64)  # class cat, three pages
    ids = {c.name: c.id for c in p.classes()}
    bird = p.add_annotation(image, ids["bird"], ShapeKind.BOX, bbox=(1, 1, 5, 5))  # page 3
    order = _click_header(qtbot, dock, Column.CLASS)
    window.show_image(image)
    listed = _turns(dock)
    assert listed == [PAGE_SIZE, 2 * PAGE_SIZE, len(cats) + 1]
    # Each page after the rows with keys equal to its: the cats in id order both ways.
    shown = [r.ann_id for r in dock.model.rows]
    assert shown == ([bird, *cats] if order == Qt.SortOrder.AscendingOrder else [*cats, bird])

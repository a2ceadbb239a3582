"""The objects list's table: one row per shape of the shown image.

Rows are plain `ObjectRow`s read from the project (class, kind, source, score); whether
a shape is hidden or locked is per session state the dock keeps and hands in. Columns:
eye (shown/hidden), lock, class (with its colour), kind, source, score.

The model sorts its own rows (a click on a header): a sort proxy in front of it cost
each painted cell two more Python calls (the row and column counts behind every index
it mapped), so the rows here are in the order the list shows them, and a row number
is the same in the view, the selection and the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Qt,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from studio.core.kinds import ShapeKind, Source
from studio.core.records import AnnotationRecord, ClassRecord
from studio.ui.icons import icon

AnnIdRole = Qt.ItemDataRole.UserRole
SortRole = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    EYE = 0
    LOCK = 1
    CLASS = 2
    KIND = 3
    SOURCE = 4
    SCORE = 5


HEADERS = {Column.EYE: "", Column.LOCK: "", Column.CLASS: "Class", Column.KIND: "Kind",
           Column.SOURCE: "Source", Column.SCORE: "Score"}  # fmt: skip
TIPS = {
    Column.EYE: "Click to hide or show the shape on the canvas (this session only)",
    Column.LOCK: "Click to lock the shape against moves, reshapes, re-classing and "
    "deletion (this session only)",
}
ICON_NAMES = ("eye", "eye_off", "lock", "unlock")
ICON_PX = 16  # the list's icons' side, logical pixels (the style's small icon size)
KIND_LABELS = {ShapeKind.BOX: "box", ShapeKind.POLYGON: "polygon", ShapeKind.MASK: "mask"}


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One shape as the list shows it. `score` is the model's confidence (0-1) for a
    predicted shape, None for one drawn by hand."""

    ann_id: int
    class_id: int
    class_name: str
    color: str
    kind: ShapeKind
    source: Source
    score: float | None


def object_rows(
    annotations: Iterable[AnnotationRecord], classes: Iterable[ClassRecord]
) -> list[ObjectRow]:
    """The rows for `annotations`, in id order (drawing order)."""
    by_id = {c.id: c for c in classes}
    rows = []
    for a in sorted(annotations, key=lambda a: a.id):
        c = by_id.get(a.class_id)
        name, color = (c.name, c.color) if c is not None else (f"class {a.class_id}", "#888888")
        rows.append(
            ObjectRow(a.id, a.class_id, name, color, ShapeKind(a.kind), Source(a.source), a.score)
        )
    return rows


# Qt's roles as plain ints: `data()` runs for every visible cell and role at each paint,
# and an int comparison is the cheapest dispatch.
DISPLAY = int(Qt.ItemDataRole.DisplayRole)
DECORATION = int(Qt.ItemDataRole.DecorationRole)
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
ANN_ID = int(AnnIdRole)
SORT = int(SortRole)
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
N_COLUMNS = len(Column)  # asked twice per cell painted (Qt's index checks): no enum len
EYE, LOCK, CLASS, SCORE = int(Column.EYE), int(Column.LOCK), int(Column.CLASS), int(Column.SCORE)


@dataclass(frozen=True, slots=True)
class RowCells:
    """What one row shows, made once when the row is listed: the texts by column (None
    for the icon columns), their sort keys, the class colour's swatch icon."""

    texts: tuple[str | None, ...]
    keys: tuple[Any, ...]
    swatch: QIcon


Pairs = list[tuple[ObjectRow, RowCells]]  # rows with their cells, in an order


class ObjectsModel(QAbstractTableModel):
    """The rows, plus the hidden and locked annotation ids (for the eye and lock).

    Rows come in id order, either all at once (`set_rows`) or appended a page at a time
    (`append_rows`: one `rowsInserted` per page, so the view lays out only that page),
    and are shown in id order (drawing order) until `sort` orders them by a column."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.rows: list[ObjectRow] = []  # in the order shown
        self.cells: list[RowCells] = []  # the same order
        self._row_of: dict[int, int] = {}  # annotation id -> row
        self.hidden: set[int] = set()
        self.locked: set[int] = set()
        self._sort_column = -1  # -1: id order
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._swatches: dict[str, QIcon] = {}
        self.icon_size = ICON_PX
        self.icons: dict[str, QIcon] = {}  # by ICON_NAMES
        self.refresh_icons()

    # --- contents ---

    def set_rows(self, rows: Sequence[ObjectRow]) -> None:
        """Show `rows` (in id order). The same shapes keep their rows' selection and the
        scroll position; sorted, a shape keeps its place among equal keys and one new
        or with a new key goes after its equals (where Qt's sort proxy put it); other
        shapes reset the table."""
        fresh = {r.ann_id: (r, self._make_cells(r)) for r in rows}
        listed = self._row_of
        kept = [fresh[r.ann_id] for r in self.rows if r.ann_id in fresh]  # as shown
        added = [pair for i, pair in fresh.items() if i not in listed]
        moved = {r.ann_id for r, _ in added} | self._rekeyed(fresh)
        new = self._ordered(kept + added, moved)
        if [r for r, _ in new] == self.rows:  # the cells are made from the rows
            return
        if [r.ann_id for r, _ in new] == [r.ann_id for r in self.rows]:
            self.rows, self.cells = [r for r, _ in new], [c for _, c in new]
            self._changed_all()
        elif {r.ann_id for r, _ in new} == set(self._row_of):
            self._relayout(new)
        else:
            self.beginResetModel()
            self._take(new)
            self.endResetModel()

    def append_rows(self, rows: Sequence[ObjectRow]) -> None:
        """Add `rows` (shapes not listed yet, ids above those listed): after the others
        in id order, among them when sorted by a column."""
        if not rows:
            return
        if self._sort_column >= 0:  # after the rows with equal keys
            self._relayout(
                self._ordered([*self._pairs(), *((r, self._make_cells(r)) for r in rows)])
            )
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self.cells.extend(self._make_cells(r) for r in rows)
        self._row_of.update((r.ann_id, first + i) for i, r in enumerate(rows))
        self.endInsertRows()

    def set_states(self, hidden: Iterable[int], locked: Iterable[int]) -> None:
        """The hidden and locked annotation ids; sorted by the eye or the lock, the
        shapes that changed go after their new equals."""
        before = self.hidden if self._sort_column == EYE else self.locked
        self.hidden, self.locked = set(hidden), set(locked)
        if self._sort_column in (EYE, LOCK):
            after = self.hidden if self._sort_column == EYE else self.locked
            self._relayout(self._ordered(self._pairs(), before ^ after))
        self._changed_all()

    def _changed_all(self) -> None:
        if self.rows:
            last = self.index(len(self.rows) - 1, N_COLUMNS - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def ann_id(self, row: int) -> int:
        return self.rows[row].ann_id

    def row_of(self, ann_id: int) -> int | None:
        """The row showing `ann_id` (None: not listed)."""
        return self._row_of.get(ann_id)

    def refresh_icons(self, device_pixel_ratio: float = 1.0) -> None:
        """Draw the eye and lock icons once, in the palette's colours now (call again
        when the palette changes): the window's icons draw their glyph at each paint,
        ~80 us each, ~6 ms for every visible row's two."""
        side = self.icon_size
        px = round(side * device_pixel_ratio)
        for name in ICON_NAMES:
            pm = QPixmap(px, px)
            pm.fill(Qt.GlobalColor.transparent)
            pm.setDevicePixelRatio(device_pixel_ratio)
            painter = QPainter(pm)
            icon(name).paint(painter, QRect(0, 0, side, side))
            painter.end()
            self.icons[name] = QIcon(pm)
        self._changed_all()

    def _make_cells(self, r: ObjectRow) -> RowCells:
        score = f"{r.score:.2f}" if r.score is not None else ""
        texts = (None, None, r.class_name, KIND_LABELS.get(r.kind, str(r.kind)),
                 str(r.source.value), score)  # fmt: skip
        keys = (0, 0, *(t.lower() for t in texts[2:5]), -1.0 if r.score is None else r.score)
        return RowCells(texts, keys, self._swatch(r.color))

    # --- sorting ---

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by `column` (-1: id order), as a header click asks. Keys: the
        class, kind and source names ignoring case, the score (hand-drawn shapes, with
        none, below every score), hidden or locked after the others. Stable over the
        order shown, both ways, as Qt's sort proxy sorted: a click on Class after one
        on Score leaves each class's shapes in score order."""
        self._sort_column, self._sort_order = int(column), Qt.SortOrder(order)
        self._relayout(self._ordered(self._pairs()))

    def sortColumn(self) -> int:  # noqa: N802 - the name Qt's sort proxy gives it
        return self._sort_column

    def sortOrder(self) -> Qt.SortOrder:  # noqa: N802
        return self._sort_order

    def mapFromSource(self, index: Index) -> Index:  # noqa: N802
        """The identity: the model sorts its own rows (for callers written against the
        sort proxy that stood in front of it)."""
        return index

    mapToSource = mapFromSource

    def _pairs(self) -> Pairs:
        return list(zip(self.rows, self.cells, strict=True))

    def _ordered(self, pairs: Pairs, moved: Set[int] = frozenset()) -> Pairs:
        """`pairs` in the order to show: id order when not sorted; else by the sort
        column's key, stably over the order given (Python's reverse sort keeps equal
        keys in order too, as Qt's proxy did with its greater-than), the `moved` ids
        after the others with keys equal to theirs."""
        col = self._sort_column
        if col < 0:
            return sorted(pairs, key=lambda p: p[0].ann_id)
        if moved:
            pairs = [p for p in pairs if p[0].ann_id not in moved] + [
                p for p in pairs if p[0].ann_id in moved
            ]
        if col in (EYE, LOCK):
            ids = self.hidden if col == EYE else self.locked
            key: Any = lambda p: p[0].ann_id in ids  # noqa: E731 - one line, used once
        else:
            key = lambda p: p[1].keys[col]  # noqa: E731
        return sorted(pairs, key=key, reverse=self._sort_order == Qt.SortOrder.DescendingOrder)

    def _rekeyed(self, fresh: dict[int, tuple[ObjectRow, RowCells]]) -> set[int]:
        """The listed shapes whose key in the sort column differs in `fresh`."""
        col = self._sort_column
        if col < 0 or col in (EYE, LOCK):  # not sorted, or by per session state
            return set()
        cells, row_of = self.cells, self._row_of
        return {
            i for i, (_, c) in fresh.items()
            if i in row_of and cells[row_of[i]].keys[col] != c.keys[col]
        }  # fmt: skip

    def _relayout(self, pairs: Pairs) -> None:
        """Show `pairs` (the same shapes, plus new ones) in their new order; the view's
        selection and current row follow their shapes (persistent indexes)."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        ids = [self.rows[i.row()].ann_id if 0 <= i.row() < len(self.rows) else None for i in old]
        self._take(pairs)
        new = [
            self.index(self._row_of[a], i.column()) if a in self._row_of else QModelIndex()
            for a, i in zip(ids, old, strict=True)
        ]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def _take(self, pairs: Pairs) -> None:
        self.rows, self.cells = [r for r, _ in pairs], [c for _, c in pairs]
        self._row_of = {r.ann_id: i for i, r in enumerate(self.rows)}

    # --- Qt model ---

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        """One Python call per index the view asks for (Qt's own asks for the row and
        column counts, two calls, for each painted cell)."""
        if 0 <= row < len(self.rows) and 0 <= column < N_COLUMNS and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else N_COLUMNS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        col = Column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[col]
        if role == Qt.ItemDataRole.DecorationRole and col in (Column.EYE, Column.LOCK):
            return self.icons["eye" if col == Column.EYE else "lock"]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TIPS.get(col)
        return None

    def data(self, index: Index, role: int = 0) -> Any:
        """Read from the row's cells made when it was listed: no formatting here. The
        list's painter reads `cells` directly; this serves tooltips, accessibility and
        any other view."""
        if not index.isValid():
            return None
        if role == DISPLAY:
            return self.cells[index.row()].texts[index.column()]
        if role == DECORATION:
            return self.decoration(index.row(), index.column())
        if role == ALIGNMENT:
            return RIGHT if index.column() == SCORE else None
        if role == ANN_ID:
            return self.rows[index.row()].ann_id
        if role == SORT:
            return self._sort_key(index.row(), index.column())
        if role == TOOLTIP:  # asked only when the pointer rests on a cell
            col = Column(index.column())
            return TIPS.get(col, f"Shape #{self.rows[index.row()].ann_id}")
        return None

    def decoration(self, row: int, col: int) -> QIcon | None:
        """The icon of a cell: the eye or lock as the shape's state says, the class's
        colour swatch; None for the text columns."""
        if col == CLASS:
            return self.cells[row].swatch
        if col == EYE:
            return self.icons["eye_off" if self.rows[row].ann_id in self.hidden else "eye"]
        if col == LOCK:
            return self.icons["lock" if self.rows[row].ann_id in self.locked else "unlock"]
        return None

    def _sort_key(self, row: int, col: int) -> Any:
        if col == EYE:
            return int(self.rows[row].ann_id in self.hidden)
        if col == LOCK:
            return int(self.rows[row].ann_id in self.locked)
        return self.cells[row].keys[col]

    def _swatch(self, color: str) -> QIcon:
        swatch = self._swatches.get(color)
        if swatch is None:
            pm = QPixmap(12, 12)
            pm.fill(QColor(color))
            swatch = self._swatches[color] = QIcon(pm)
            # A selected row shows the class's true colour, not one tinted by the
            # selection (the swatch is there to be compared with the canvas).
            swatch.addPixmap(pm, QIcon.Mode.Selected)
        return swatch

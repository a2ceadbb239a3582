"""The objects list's table: one row per shape of the shown image.

Rows are plain `ObjectRow`s read from the project (class, kind, source, score); whether
a shape is hidden or locked is per session state the dock keeps and hands in. Columns:
eye (shown/hidden), lock, class (with its colour), kind, source, score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
class _Cells:
    """What `data()` returns for one row, made once when the row is listed: the texts
    by column (None for the icon columns), their sort keys, the class swatch."""

    texts: tuple[str | None, ...]
    keys: tuple[Any, ...]
    swatch: QIcon


class ObjectsModel(QAbstractTableModel):
    """The rows, plus the hidden and locked annotation ids (for the eye and lock).

    Rows come in id order, either all at once (`set_rows`) or appended a page at a time
    (`append_rows`: one `rowsInserted` per page, so the view lays out only that page)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.rows: list[ObjectRow] = []
        self._cells: list[_Cells] = []
        self._row_of: dict[int, int] = {}  # annotation id -> row
        self.hidden: set[int] = set()
        self.locked: set[int] = set()
        self._swatches: dict[str, QIcon] = {}
        self.icon_size = ICON_PX
        self._icons: dict[str, QIcon] = {}
        self.refresh_icons()

    # --- contents ---

    def set_rows(self, rows: Sequence[ObjectRow]) -> None:
        """Show `rows`; rows of the same shapes in the same order update in place (the
        selection and scroll position stay), anything else resets the table."""
        rows = list(rows)
        if rows == self.rows:
            return
        if [r.ann_id for r in rows] == [r.ann_id for r in self.rows]:
            self.rows, self._cells = rows, [self._make_cells(r) for r in rows]
            self._changed_all()
            return
        self.beginResetModel()
        self.rows, self._cells = rows, [self._make_cells(r) for r in rows]
        self._row_of = {r.ann_id: i for i, r in enumerate(rows)}
        self.endResetModel()

    def append_rows(self, rows: Sequence[ObjectRow]) -> None:
        """Add `rows` (shapes not listed yet, ids above those listed) after the others."""
        if not rows:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self.rows.extend(rows)
        self._cells.extend(self._make_cells(r) for r in rows)
        self._row_of.update((r.ann_id, first + i) for i, r in enumerate(rows))
        self.endInsertRows()

    def set_states(self, hidden: Iterable[int], locked: Iterable[int]) -> None:
        self.hidden, self.locked = set(hidden), set(locked)
        self._changed_all()

    def _changed_all(self) -> None:
        if self.rows:
            last = self.index(len(self.rows) - 1, N_COLUMNS - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def ann_id(self, row: int) -> int:
        return self.rows[row].ann_id

    def row_of(self, ann_id: int) -> int | None:
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
            self._icons[name] = QIcon(pm)
        self._changed_all()

    def _make_cells(self, r: ObjectRow) -> _Cells:
        score = f"{r.score:.2f}" if r.score is not None else ""
        texts = (None, None, r.class_name, KIND_LABELS.get(r.kind, str(r.kind)),
                 str(r.source.value), score)  # fmt: skip
        keys = (0, 0, *(t.lower() for t in texts[2:5]), -1.0 if r.score is None else r.score)
        return _Cells(texts, keys, self._swatch(r.color))

    # --- Qt model ---

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
            return self._icons["eye" if col == Column.EYE else "lock"]
        if role == Qt.ItemDataRole.ToolTipRole:
            return TIPS.get(col)
        return None

    def data(self, index: Index, role: int = 0) -> Any:
        """Read from the row's cells made when it was listed: no formatting here."""
        if not index.isValid():
            return None
        if role == DISPLAY:
            return self._cells[index.row()].texts[index.column()]
        if role == DECORATION:
            return self._decoration(index.row(), index.column())
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

    def _decoration(self, row: int, col: int) -> QIcon | None:
        if col == CLASS:
            return self._cells[row].swatch
        if col == EYE:
            return self._icons["eye_off" if self.rows[row].ann_id in self.hidden else "eye"]
        if col == LOCK:
            return self._icons["lock" if self.rows[row].ann_id in self.locked else "unlock"]
        return None

    def _sort_key(self, row: int, col: int) -> Any:
        if col == EYE:
            return int(self.rows[row].ann_id in self.hidden)
        if col == LOCK:
            return int(self.rows[row].ann_id in self.locked)
        return self._cells[row].keys[col]

    def _swatch(self, color: str) -> QIcon:
        swatch = self._swatches.get(color)
        if swatch is None:
            pm = QPixmap(12, 12)
            pm.fill(QColor(color))
            swatch = self._swatches[color] = QIcon(pm)
        return swatch

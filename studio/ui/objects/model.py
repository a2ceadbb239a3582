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

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap

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


class ObjectsModel(QAbstractTableModel):
    """The rows, plus the hidden and locked annotation ids (for the eye and lock)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.rows: list[ObjectRow] = []
        self._row_of: dict[int, int] = {}  # annotation id -> row
        self.hidden: set[int] = set()
        self.locked: set[int] = set()
        self._swatches: dict[str, QIcon] = {}
        self._icons = {n: icon(n) for n in ("eye", "eye_off", "lock", "unlock")}

    # --- contents ---

    def set_rows(self, rows: Sequence[ObjectRow]) -> None:
        """Show `rows`; rows of the same shapes in the same order update in place (the
        selection and scroll position stay), anything else resets the table."""
        rows = list(rows)
        if rows == self.rows:
            return
        if [r.ann_id for r in rows] == [r.ann_id for r in self.rows]:
            self.rows = rows
            self._changed_all()
            return
        self.beginResetModel()
        self.rows = rows
        self._row_of = {r.ann_id: i for i, r in enumerate(rows)}
        self.endResetModel()

    def set_states(self, hidden: Iterable[int], locked: Iterable[int]) -> None:
        self.hidden, self.locked = set(hidden), set(locked)
        self._changed_all()

    def _changed_all(self) -> None:
        if self.rows:
            last = self.index(len(self.rows) - 1, len(Column) - 1)
            self.dataChanged.emit(self.index(0, 0), last)

    def ann_id(self, row: int) -> int:
        return self.rows[row].ann_id

    def row_of(self, ann_id: int) -> int | None:
        return self._row_of.get(ann_id)

    # --- Qt model ---

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

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
        if not index.isValid():
            return None
        r, col = self.rows[index.row()], Column(index.column())
        if role == AnnIdRole:
            return r.ann_id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(r, col)
        if role == SortRole:
            return self._sort_key(r, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return TIPS.get(col, f"Shape #{r.ann_id}")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == Column.SCORE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, r: ObjectRow, col: Column) -> str | None:
        if col == Column.CLASS:
            return r.class_name
        if col == Column.KIND:
            return KIND_LABELS.get(r.kind, str(r.kind))
        if col == Column.SOURCE:
            return str(r.source.value)
        if col == Column.SCORE:
            return f"{r.score:.2f}" if r.score is not None else ""
        return None

    def _decoration(self, r: ObjectRow, col: Column) -> QIcon | None:
        if col == Column.EYE:
            return self._icons["eye_off" if r.ann_id in self.hidden else "eye"]
        if col == Column.LOCK:
            return self._icons["lock" if r.ann_id in self.locked else "unlock"]
        if col == Column.CLASS:
            return self._swatch(r.color)
        return None

    def _sort_key(self, r: ObjectRow, col: Column) -> Any:
        if col == Column.EYE:
            return int(r.ann_id in self.hidden)
        if col == Column.LOCK:
            return int(r.ann_id in self.locked)
        if col == Column.SCORE:
            return -1.0 if r.score is None else r.score
        return (self._text(r, col) or "").lower()

    def _swatch(self, color: str) -> QIcon:
        swatch = self._swatches.get(color)
        if swatch is None:
            pm = QPixmap(12, 12)
            pm.fill(QColor(color))
            swatch = self._swatches[color] = QIcon(pm)
        return swatch

"""The browser's list model: image ids in browser order, row details a page at a time,
thumbnails asked for only when a view paints a row.

Row details come from `studio.core.browse` on the GUI thread (a page of `PAGE` rows is
one indexed query, well under a millisecond); thumbnails come from `ThumbnailLoader`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    QStringListModel,
    Qt,
)
from PySide6.QtGui import QColor, QIcon, QPixmap

from studio.core import browse
from studio.core.browse import BrowseRow
from studio.core.kinds import ImageStatus
from studio.core.project import Project
from studio.ml.analysis.per_image import ImageErrors
from studio.ui.browser.thumbnails import ThumbnailLoader, placeholder_pixmap
from studio.ui.common.plain_text import plain_tooltip

PAGE = 128  # rows fetched per query when a view paints rows we have no details for
MAX_PAGES = 64
MAX_ICONS = 400  # thumbnail icons kept for painting (they share the loader's pixmaps)
GRID_ICON = QSize(128, 96)
LIST_ICON = QSize(40, 30)
IdRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2
ErrorsRole = Qt.ItemDataRole.UserRole + 3  # the row's `per_image.ImageErrors`, or None

STATUS_COLORS = {
    ImageStatus.NEW: QColor("#9e9e9e"),
    ImageStatus.IN_PROGRESS: QColor("#ffb300"),
    ImageStatus.DONE: QColor("#43a047"),
    ImageStatus.NEEDS_REVIEW: QColor("#e53935"),
}
STATUS_LABELS = {
    ImageStatus.NEW: "New",
    ImageStatus.IN_PROGRESS: "In progress",
    ImageStatus.DONE: "Done",
    ImageStatus.NEEDS_REVIEW: "Needs review",
}

_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.ToolTipRole,
        IdRole,
        RowRole,
        ErrorsRole,
    }
)


class ImageListModel(QStringListModel):
    """Image ids in browser order; details and thumbnails fetched for painted rows.

    A QStringListModel of empty strings underneath, on purpose: QListView lays out by
    asking the model for its row count and indexes once per row, and a Python
    `rowCount` makes that 400,000 calls into Python for 100,000 images (about a second
    per layout). Here they stay in C++; only `data()` for painted rows reaches Python.
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self._ids: list[int] = []
        self._row_of: dict[int, int] | None = None  # built on first use
        self._pages: OrderedDict[int, dict[int, BrowseRow]] = OrderedDict()
        self.error_counts: Mapping[int, ImageErrors] = {}
        self.compact = False
        self.thumbs = ThumbnailLoader(GRID_ICON, self)
        self.thumbs.ready.connect(self._thumb_ready)
        self._placeholder = placeholder_pixmap(GRID_ICON)
        self._broken = placeholder_pixmap(GRID_ICON, broken=True)
        # What the delegate paints a row with, kept between paints: an icon made per
        # paint cost a QIcon and its pixmap lookup for every row of every scroll step.
        self._icons: OrderedDict[int, tuple[int, QIcon]] = OrderedDict()  # id: (pixmap key, icon)
        self._placeholder_icon = QIcon(self._placeholder)
        self._broken_icon = QIcon(self._broken)
        self.icons_made = 0  # QIcons made for thumbnails (tests read it)
        # Repaints the row of a new thumbnail in the view (its delegate sets this). A
        # `dataChanged` instead makes QListView lay out all rows again at its next
        # turn: ~6 ms at 100,000 rows, once per thumbnail while scrolling.
        self.repaint_row: Callable[[QModelIndex], None] | None = None

    # --- contents ---

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.thumbs.set_cache_dir(project.cache_dir if project else None)
        self.set_ids([])

    def set_ids(self, ids: Sequence[int]) -> None:
        self._ids = list(ids)
        self._row_of = None
        self._pages.clear()
        self.setStringList([""] * len(self._ids))  # resets the model

    def ids(self) -> list[int]:
        return self._ids

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, image_id: int) -> int | None:
        if self._row_of is None:
            self._row_of = {i: r for r, i in enumerate(self._ids)}
        return self._row_of.get(image_id)

    def invalidate(self) -> None:
        """Row details changed (status, split, shape count): refetch what is painted."""
        self._pages.clear()
        if self._ids:
            self.dataChanged.emit(self.index(0), self.index(len(self._ids) - 1))

    def set_error_counts(self, counts: Mapping[int, ImageErrors]) -> None:
        """The model's errors per image id ({}: none); repaints the rows."""
        self.error_counts = counts or {}
        if self._ids:
            self.dataChanged.emit(self.index(0), self.index(len(self._ids) - 1))

    def set_compact(self, compact: bool) -> None:
        self.compact = compact
        size = LIST_ICON if compact else GRID_ICON
        self.thumbs.set_size(size)
        self._placeholder = placeholder_pixmap(size)
        self._broken = placeholder_pixmap(size, broken=True)
        self._placeholder_icon = QIcon(self._placeholder)
        self._broken_icon = QIcon(self._broken)
        self._icons.clear()
        self.invalidate()

    def row_info(self, row: int) -> BrowseRow | None:
        if self.project is None or not 0 <= row < len(self._ids):
            return None
        page = row // PAGE
        rows = self._pages.get(page)
        if rows is None:
            rows = browse.image_rows(self.project, self._ids[page * PAGE : (page + 1) * PAGE])
            self._pages[page] = rows
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        return rows.get(self._ids[row])

    # --- Qt model ---

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        # A delegate asks for a dozen roles per paint; answer the unused ones first.
        if role not in _ROLES or not index.isValid():
            return None
        row = index.row()
        if role == IdRole:
            return self._ids[row]
        if role == ErrorsRole:
            return self.error_counts.get(self._ids[row])
        info = self.row_info(row)
        if info is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display_text(info)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(info)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = (
                f"{info.path}\n{info.width} × {info.height} px · "
                f"{STATUS_LABELS[info.status]} · {info.split} · {info.n_objects} shapes"
            )
            errors = self.error_counts.get(info.id)
            if errors is not None:
                tip += f"\nModel: {errors.text()}"
                if errors.lowest_score is not None:
                    tip += f" · lowest score {errors.lowest_score:.2f}"
            error = self.thumbs.errors.get(info.id)
            return plain_tooltip(f"{tip}\ncannot show: {error}" if error else tip)
        if role == RowRole:
            return info
        return None

    def display_text(self, info: BrowseRow) -> str:
        """The row's text: the name in the grid; name, status, split and shape count on
        two lines in the compact list."""
        if self.compact:
            return f"{info.name}\n{STATUS_LABELS[info.status]} · {info.split} · {info.n_objects}"
        return info.name

    def icon(self, info: BrowseRow) -> QIcon:
        """The row's picture as the delegate paints it: the thumbnail (asked for when not
        made yet), a placeholder meanwhile, a crossed tile when it cannot be made. One
        QIcon per thumbnail pixmap, kept while that pixmap is the thumbnail."""
        pm = self.thumbs.pixmap(info.id)
        if pm is None:
            if info.id in self.thumbs.errors:
                return self._broken_icon
            self.thumbs.request(info.id, info.abs_path, info.checksum)
            return self._placeholder_icon
        kept = self._icons.get(info.id)
        if kept is not None and kept[0] == pm.cacheKey():
            self._icons.move_to_end(info.id)
            return kept[1]
        icon = QIcon(pm)
        self._icons[info.id] = (pm.cacheKey(), icon)
        self.icons_made += 1
        while len(self._icons) > MAX_ICONS:
            self._icons.popitem(last=False)
        return icon

    def _decoration(self, info: BrowseRow) -> QPixmap:
        pm = self.thumbs.pixmap(info.id)
        if pm is not None:
            return pm
        if info.id in self.thumbs.errors:
            return self._broken
        self.thumbs.request(info.id, info.abs_path, info.checksum)
        return self._placeholder

    def _thumb_ready(self, image_id: int) -> None:
        row = self.row_of(image_id)
        if row is None:
            return
        idx = self.index(row)
        if self.repaint_row is not None:
            self.repaint_row(idx)
        else:
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

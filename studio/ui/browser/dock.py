"""The browser dock: every image of the project as a thumbnail grid or a compact list.

A QListView over `ImageListModel` (model.py), a list model holding only image ids
(one query, see `studio.core.browse`). Row details come a page at a time, thumbnails only
for painted rows, so 100,000 images scroll like 100. Filters show facet counts computed
in a worker; bulk status / split / delete act on the selection. The model's errors
(`set_error_counts`) and a pinned set of images (`show_only`) narrow and order that id
list in Python (error_filter.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import browse
from studio.core.kinds import ImageStatus, Split
from studio.core.project import Project
from studio.ml.analysis.per_image import ErrorFilter
from studio.ui.browser.bulk import BulkActions
from studio.ui.browser.delegate import ThumbDelegate
from studio.ui.browser.error_filter import ErrorFilterBar, error_sort
from studio.ui.browser.model import GRID_ICON, LIST_ICON, STATUS_LABELS, ImageListModel
from studio.ui.common.concurrency import run_task

SOURCE_LABELS = {
    "manual": "Has manual labels",
    "predicted": "Has predictions",
    "unlabelled": "Unlabelled",
}
SORT_LABELS = {"name": "Name", "date": "Date added", "objects": "Objects"}


class BrowserDock(BulkActions, QDockWidget):
    """Filters + the image list. Emits `image_activated` when the user picks an image."""

    image_activated = Signal(int)
    counts_updated = Signal(dict)
    compact_changed = Signal(bool)  # the list view was turned on or off (its button)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Images", parent)
        self.setObjectName("browser_dock")
        self.project: Project | None = None
        self.model = ImageListModel(self)
        self.thumbs = self.model.thumbs
        self._syncing = False  # True while the code, not the user, moves the selection
        self._activating: int | None = None  # the image the user's click is opening
        self._counts_generation = 0
        self.last_counts: dict[str, Any] = {}
        self._base_ids: list[int] = []  # the last SQL result, before the error filter
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(self._build_filters())
        layout.addWidget(self.errors.chip)
        layout.addWidget(self._build_view(), 1)
        layout.addLayout(self._build_actions())
        self.setWidget(body)
        self._build_timers()

    # --- building ---

    def _build_filters(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setSpacing(4)
        self.text_edit = QLineEdit(placeholderText="Filter by path or file name…")
        self.text_edit.setClearButtonEnabled(True)
        self.class_combo = QComboBox()
        self.status_combo = QComboBox()
        self.split_combo = QComboBox()
        self.source_combo = QComboBox()
        self.sort_combo = QComboBox()
        for combo, tip in (
            (self.class_combo, "Images with at least one shape of this class"),
            (self.status_combo, "Labelling status"),
            (self.split_combo, "Dataset split"),
            (self.source_combo, "Where the shapes come from"),
            (self.sort_combo, "Sort order"),
        ):
            combo.setToolTip(tip)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        for key, label in SORT_LABELS.items():
            self.sort_combo.addItem(label, key)
        self.desc_button = QToolButton(text="↑", checkable=True, toolTip="Reverse the order")
        self._fill_static_combos()
        grid.addWidget(self.text_edit, 0, 0, 1, 2)
        grid.addWidget(self.class_combo, 1, 0)
        grid.addWidget(self.status_combo, 1, 1)
        grid.addWidget(self.split_combo, 2, 0)
        grid.addWidget(self.source_combo, 2, 1)
        sort_row = QHBoxLayout()
        sort_row.addWidget(QLabel("Sort"))
        sort_row.addWidget(self.sort_combo, 1)
        sort_row.addWidget(self.desc_button)
        self.view_button = QToolButton(text="List", checkable=True)
        self.view_button.setToolTip("Compact list instead of thumbnails")
        sort_row.addWidget(self.view_button)
        grid.addLayout(sort_row, 3, 0, 1, 2)
        self.errors = ErrorFilterBar(self.sort_combo, self)
        self.errors.changed.connect(self._reapply)
        grid.addWidget(self.errors.combo, 4, 0, 1, 2)
        self.text_edit.textChanged.connect(lambda _t: self._text_timer.start())
        for combo in (self.class_combo, self.status_combo, self.split_combo, self.source_combo):
            combo.activated.connect(lambda _i: self.refresh_now())
        self.sort_combo.activated.connect(lambda _i: self.refresh_now())
        self.desc_button.toggled.connect(self._on_desc_toggled)
        self.view_button.toggled.connect(self.set_compact)
        return grid

    def _fill_static_combos(self) -> None:
        self.class_combo.addItem("All classes", None)
        self.status_combo.addItem("Any status", None)
        # Item data are the plain stored strings (what `browse` filters on).
        for s in ImageStatus:
            self.status_combo.addItem(STATUS_LABELS[s], s.value)
        self.split_combo.addItem("Any split", None)
        for s in Split:
            self.split_combo.addItem(s.value, s.value)
        self.source_combo.addItem("Any source", None)
        for s, label in SOURCE_LABELS.items():
            self.source_combo.addItem(label, s)

    def _build_view(self) -> QListView:
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(ThumbDelegate(self.view))
        self.view.setUniformItemSizes(True)  # one size hint for all rows
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.view.verticalScrollBar().valueChanged.connect(lambda _v: self._retain_timer.start())
        self._apply_view_mode(False)
        return self.view

    def _build_timers(self) -> None:
        # Typing and bursts of project events (an import, a drag) refresh once.
        self._text_timer = QTimer(self, singleShot=True, interval=250)
        self._text_timer.timeout.connect(self.refresh_now)
        self._refresh_timer = QTimer(self, singleShot=True, interval=200)
        self._refresh_timer.timeout.connect(self.refresh_now)
        self._retain_timer = QTimer(self, singleShot=True, interval=60)
        self._retain_timer.timeout.connect(self._retain_visible)

    def _apply_view_mode(self, compact: bool) -> None:
        # Always Qt's list layout (IconMode keeps geometry per item): a wrapping
        # left-to-right flow with a fixed grid is the thumbnail grid.
        v = self.view
        v.setViewMode(QListView.ViewMode.ListMode)
        v.setMovement(QListView.Movement.Static)
        v.setResizeMode(QListView.ResizeMode.Adjust)
        v.setWordWrap(False)
        if compact:
            v.setFlow(QListView.Flow.TopToBottom)
            v.setWrapping(False)
            v.setIconSize(LIST_ICON)
            v.setGridSize(QSize())
            v.setSpacing(1)
        else:
            v.setFlow(QListView.Flow.LeftToRight)
            v.setWrapping(True)
            v.setIconSize(GRID_ICON)
            v.setSpacing(0)
            v.setGridSize(QSize(GRID_ICON.width() + 16, GRID_ICON.height() + 28))

    # --- project ---

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self._counts_generation += 1
        self.model.set_project(project)
        self.errors.blockSignals(True)  # refresh_now below applies both
        self.errors.clear_pin()
        self.set_error_counts({})
        self.errors.blockSignals(False)
        self._reload_class_combo()
        self.refresh_now()

    def filters(self) -> dict[str, Any]:
        cls = self.class_combo.currentData()
        return {
            "classes": None if cls is None else [cls],
            "status": self.status_combo.currentData(),
            "split": self.split_combo.currentData(),
            "source": self.source_combo.currentData(),
            "text": self.text_edit.text().strip() or None,
        }

    def set_filter(self, name: str, value: Any) -> None:
        """Choose a filter option by value (what a click in the combo does)."""
        combo = {
            "classes": self.class_combo,
            "status": self.status_combo,
            "split": self.split_combo,
            "source": self.source_combo,
        }[name]
        combo.setCurrentIndex(max(0, combo.findData(value)))
        self.refresh_now()

    def refresh(self, *_: object) -> None:
        """Refresh soon (coalesces bursts of project events)."""
        self._refresh_timer.start()

    def classes_changed(self) -> None:
        self._reload_class_combo()
        self.refresh()

    def refresh_now(self) -> None:
        self._refresh_timer.stop()
        if self.project is None:
            self.model.set_ids([])
            self.count_label.setText("")
            self._on_selection_changed()
            return
        f = self.filters()
        sort, descending = self.errors.sql_order(
            self.sort_combo.currentData(), self.desc_button.isChecked()
        )
        self._base_ids = browse.query_images(self.project, **f, sort=sort, descending=descending)
        self._show_ids(invalidate=True)
        self._start_counts(f)

    def _reapply(self) -> None:
        """The error filter, error counts or pinned images changed: re-narrow the last
        SQL result without querying again."""
        if self.project is not None:
            self._show_ids(invalidate=False)

    def _show_ids(self, invalidate: bool) -> None:
        ids = self.errors.apply(
            self._base_ids, self.sort_combo.currentData(), self.desc_button.isChecked()
        )
        if ids != self.model.ids():
            self._replace_ids(ids)
        elif invalidate:
            self.model.invalidate()
        self._update_count_label()

    def _replace_ids(self, ids: list[int]) -> None:
        selected = self.selected_ids()
        current = self.current_id()
        self._syncing = True
        try:
            self.model.set_ids(ids)
            self._select(selected, current)
        finally:
            self._syncing = False
        self._on_selection_changed()  # a reset says nothing of the selection it changed

    def _start_counts(self, f: dict[str, Any]) -> None:
        self._counts_generation += 1
        generation, project = self._counts_generation, self.project

        def done(counts: dict[str, Any]) -> None:
            if generation == self._counts_generation and project is self.project:
                self._apply_counts(counts)

        run_task(lambda _p: browse.filter_counts(project, **f), done, lambda _e: None)

    def _apply_counts(self, counts: dict[str, Any]) -> None:
        self.last_counts = counts
        for i in range(1, self.class_combo.count()):
            cid = self.class_combo.itemData(i)
            name = self.class_combo.itemData(i, Qt.ItemDataRole.UserRole + 1)
            self.class_combo.setItemText(i, f"{name} ({counts['classes'].get(cid, 0)})")
        for combo, facet, labels in (
            (self.status_combo, "status", STATUS_LABELS),
            (self.split_combo, "split", {s: s.value for s in Split}),
            (self.source_combo, "source", SOURCE_LABELS),
        ):
            for i in range(1, combo.count()):
                key = combo.itemData(i)
                combo.setItemText(i, f"{labels[key]} ({counts[facet].get(key, 0)})")
        self.counts_updated.emit(counts)

    def _reload_class_combo(self) -> None:
        current = self.class_combo.currentData()
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        if self.project is not None:
            for c in self.project.classes():
                pm = QPixmap(12, 12)
                pm.fill(QColor(c.color))
                self.class_combo.addItem(pm, c.name, c.id)
                self.class_combo.setItemData(
                    self.class_combo.count() - 1, c.name, Qt.ItemDataRole.UserRole + 1
                )
        self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(current)))
        if self.last_counts:
            self._apply_counts(self.last_counts)

    def _update_count_label(self) -> None:
        n = self.model.rowCount()
        total = self.project.image_count() if self.project else 0
        text = f"{n:,} images" if n == total else f"{n:,} of {total:,} images"
        sel = len(self._selected_rows()) if n else 0
        self.count_label.setText(f"{text}, {sel:,} selected" if sel > 1 else text)

    # --- selection ---

    def ids(self) -> list[int]:
        return self.model.ids()

    def current_id(self) -> int | None:
        idx = self.view.currentIndex()
        return self.model.id_at(idx.row()) if idx.isValid() else None

    def selected_ids(self) -> list[int]:
        return [self.model.id_at(r) for r in self._selected_rows()]

    def _selected_rows(self) -> list[int]:
        """The selected rows, read from the selection's ranges: `selectedRows()` asks the
        model's flags() of every row (1.1 s for a select-all of 100,000 images)."""
        rows: set[int] = set()
        for r in self.view.selectionModel().selection():
            rows.update(range(r.top(), r.bottom() + 1))
        return sorted(rows)

    def select_image(self, image_id: int | None) -> None:
        """Make `image_id` current and selected without emitting `image_activated`.
        While the user's own click made it current, their selection stands (Ctrl-click
        toggles one image, a right-click on a selection keeps it for its menu)."""
        if self._activating == image_id:
            return
        self._syncing = True
        try:
            self._select([] if image_id is None else [image_id], image_id)
        finally:
            self._syncing = False

    def set_error_counts(self, counts: dict[int, Any]) -> None:
        """Per-image errors of the model (image id -> `per_image.ImageErrors`; {}: none):
        shown on the rows, and the Errors filter and error sorts while there are any."""
        was_error_sort = error_sort(self.sort_combo.currentData()) is not None
        self.model.set_error_counts(counts)
        self.errors.set_counts(counts)  # re-applies over the last SQL result
        if was_error_sort and error_sort(self.sort_combo.currentData()) is None:
            self.refresh_now()  # the error sort went away: back to an SQL order

    def show_only(self, image_ids: Sequence[int], source: str = "Inspect") -> None:
        """Filter the list to exactly `image_ids` (other filters reset, the sort kept)
        until the "Showing N images from `source` ✕" button is clicked; the first of
        `image_ids` becomes current, without emitting `image_activated`."""
        for combo in (self.class_combo, self.status_combo, self.split_combo, self.source_combo):
            combo.setCurrentIndex(0)
        self.text_edit.blockSignals(True)
        self.text_edit.clear()
        self.text_edit.blockSignals(False)
        self.errors.blockSignals(True)
        self.errors.set_filter(ErrorFilter.ANY)
        self.errors.pin(image_ids, source)
        self.errors.blockSignals(False)
        self.refresh_now()
        self.select_ids(list(image_ids[:1]))

    def select_ids(self, image_ids: Sequence[int]) -> None:
        self._syncing = True
        try:
            self._select(image_ids, image_ids[0] if image_ids else None)
        finally:
            self._syncing = False

    def _select(self, image_ids: Sequence[int], current: int | None) -> None:
        sm = self.view.selectionModel()
        rows = sorted(r for r in map(self.model.row_of, image_ids) if r is not None)
        selection = QItemSelection()
        start = prev = None
        for r in [*rows, None]:  # contiguous runs become one range each
            if r is not None and prev is not None and r == prev + 1:
                prev = r
                continue
            if start is not None:
                selection.select(self.model.index(start), self.model.index(prev))
            start = prev = r
        sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        row = self.model.row_of(current) if current is not None else None
        if row is not None:
            idx = self.model.index(row)
            sm.setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.view.scrollTo(idx)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not self._syncing and current.isValid():
            self._activating = self.model.id_at(current.row())
            try:
                self.image_activated.emit(self._activating)
            finally:
                self._activating = None

    def _on_selection_changed(self, *_: object) -> None:
        has = bool(self.model.rowCount()) and self.view.selectionModel().hasSelection()
        for b in (self.status_button, self.split_button, self.delete_button):
            b.setEnabled(has)
        self._update_count_label()

    def _retain_visible(self) -> None:
        """After scrolling, forget thumbnail requests for rows now off screen."""
        vp = self.view.viewport().rect()
        first = self.view.indexAt(vp.topLeft())
        last = self.view.indexAt(vp.bottomRight())
        if not first.isValid():
            return
        end = last.row() if last.isValid() else self.model.rowCount() - 1
        ids = self.model.ids()
        self.thumbs.retain(ids[first.row() : end + 1])

    # --- view options ---

    def _on_desc_toggled(self, on: bool) -> None:
        self.desc_button.setText("↓" if on else "↑")
        self.refresh_now()

    def set_compact(self, compact: bool) -> None:
        if self.view_button.isChecked() != compact:
            self.view_button.setChecked(compact)  # re-enters through toggled
            return
        self.compact_changed.emit(compact)  # the View menu's check follows
        self.model.set_compact(compact)
        self._apply_view_mode(compact)
        current = self.view.currentIndex()
        if current.isValid():
            self.view.scrollTo(current)

"""The objects dock: every shape of the shown image as a sortable list.

Click a row to select its shape on the canvas (the window passes the selection on, and
back: selecting on the canvas selects the row). The eye hides a shape (not drawn, not
hit-tested) and the lock refuses its edits; both are per session state kept here, per
annotation id, not stored in the project: they last until the project closes. The list
follows edits live: the window hands it the project's `annotations_changed` and
`classes_changed` events (through its `ProjectBridge`), re-read after a short pause so
that a drag writing at every mouse move re-reads once. Under the list, an
`AttributesEditor` edits the selected shapes' attributes (undoable, stored at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.kinds import Source
from studio.core.project import Project
from studio.core.records import AnnotationRecord, Attributes, ClassRecord
from studio.ui.objects.attributes import AttributesEditor
from studio.ui.objects.filling import RowFiller
from studio.ui.objects.model import (
    HEADERS,
    KIND_LABELS,
    Column,
    ObjectsModel,
    object_rows,
)
from studio.ui.objects.table import ObjectsTable

RELOAD_MS = 120  # a burst of edits (a drag) re-reads the list once, this long after
ICON_COLUMN_WIDTH = 26  # the eye and lock columns, pixels: a 16-px icon and its margins
CLASS_MIN_WIDTH = 90  # pixels: "bicycle" and a colour swatch
TEXT_PADDING = 18  # pixels around a cell's text (margins, the sort arrow in a header)
# Every text of the kind, source and score columns (scores: two decimals, 0.00-1.00).
COLUMN_TEXTS = {
    Column.KIND: tuple(KIND_LABELS.values()),
    Column.SOURCE: tuple(str(s.value) for s in Source),
    Column.SCORE: ("0.00", "1.00"),
}


class ObjectsDock(QDockWidget):
    """Emits `selection_requested` (annotation ids the user picked in the list),
    `hidden_changed` and `locked_changed` (every hidden / locked annotation id), and
    `class_change_requested` when a row is double-clicked (as in labelme)."""

    selection_requested = Signal(list)
    hidden_changed = Signal(list)
    locked_changed = Signal(list)
    class_change_requested = Signal()  # a row double-clicked: choose the shapes' class

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Objects", parent)
        self.setObjectName("objects_dock")
        self.project: Project | None = None
        self.image_id: int | None = None
        self.model = ObjectsModel(self)
        self._selection: list[int] = []  # the canvas's, re-applied after a reload
        self._syncing = False
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_tree(), 1)
        self.count_label = QLabel("")
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.count_label)
        self._attributes: dict[int, Attributes] = {}  # of the listed shapes, by id
        self.attributes = AttributesEditor(self._set_attributes)
        layout.addWidget(self.attributes)
        self.setWidget(body)
        self._reload_timer = QTimer(self, singleShot=True, interval=RELOAD_MS)
        self._reload_timer.timeout.connect(self.reload)
        self.filler = RowFiller(self._page)
        self.tree.painted.connect(self.filler.resume)  # rows in sight painted: read on
        self._listing = False  # reading a new image's rows (the list is empty)
        self._reread = False  # an edit came while listing: read again once listed
        self._read: list[AnnotationRecord] = []  # a re-read's rows, until the last
        self._classes: list[ClassRecord] = []

    @property
    def proxy(self) -> ObjectsModel:
        """The model: it sorts its own rows, so a row of the list is a row of the model
        (`mapFromSource` and `mapToSource` are the identity, for callers written
        against the sort proxy that stood between them)."""
        return self.model

    def _build_tree(self) -> ObjectsTable:
        self.tree = ObjectsTable()
        self.tree.setModel(self.model)
        self.model.icon_size = self.tree.icon_side()
        self.model.refresh_icons(self.tree.devicePixelRatioF())
        # Drawing order (annotation id) until the user clicks a header.
        self.tree.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tree.setSortingEnabled(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._fit_columns()
        self.tree.toggled.connect(self._on_toggled)
        self.tree.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.tree.doubleClicked.connect(
            lambda index: (
                index.column() not in (Column.EYE, Column.LOCK)
                and self.class_change_requested.emit()
            )
        )
        return self.tree

    def _fit_columns(self) -> None:
        """Kind, source and score as wide as their contents, the icons as wide as an
        icon, and the class column takes the rest: every column shows at the dock's
        default width, and a long class name is elided ("traffic li…") rather than
        pushing the score out of sight. Below the class column's minimum the list
        scrolls sideways."""
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(ICON_COLUMN_WIDTH)
        fixed = QHeaderView.ResizeMode.Fixed
        for col in (Column.EYE, Column.LOCK):
            header.setSectionResizeMode(col, fixed)
            header.resizeSection(col, ICON_COLUMN_WIDTH)
        # Fixed widths from every text these columns can show: sizing them to their
        # contents measured up to 1,000 rows at each change of the list (~600 ms for
        # an image of 3,000 shapes).
        fm = self.tree.fontMetrics()
        for col, texts in COLUMN_TEXTS.items():
            header.setSectionResizeMode(col, fixed)
            widest = max(fm.horizontalAdvance(t) for t in (*texts, HEADERS[col]))
            header.resizeSection(col, widest + TEXT_PADDING)
        header.setSectionResizeMode(Column.CLASS, QHeaderView.ResizeMode.Stretch)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        # At least room for every column at its widest text: the dock cannot be made
        # so narrow that the score is cut off (the list's frame and scroll bar added).
        widest = ("polygon", "predicted", "Score")
        texts = sum(fm.horizontalAdvance(t) + TEXT_PADDING for t in widest)
        scroll = self.tree.verticalScrollBar().sizeHint().width()
        self.tree.setMinimumWidth(CLASS_MIN_WIDTH + 2 * ICON_COLUMN_WIDTH + texts + scroll + 4)

    def changeEvent(self, event: QEvent) -> None:
        """A new palette (the theme) or screen: the list's icons are drawn again."""
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.DevicePixelRatioChange):
            self.model.refresh_icons(self.tree.devicePixelRatioF())
        super().changeEvent(event)

    # --- what is shown ---

    def set_project(self, project: Project | None) -> None:
        """A new project (or none): hidden and locked shapes are forgotten."""
        self.project = project
        self.image_id = None
        self._selection = []
        self.filler.stop()
        self.model.set_states((), ())
        self.model.set_rows([])
        self._update_count()
        self.hidden_changed.emit([])
        self.locked_changed.emit([])

    def show_image(self, image_id: int | None) -> None:
        """List the shapes of `image_id` (None: nothing), a page per event-loop turn."""
        self.image_id = image_id
        self._selection = []
        self._reload_timer.stop()
        self._start(listing=True)

    def annotations_changed(self, image_ids: object) -> None:
        """The project's event (image ids, None for any): re-read soon if it is ours."""
        if self.image_id is None:
            return
        if image_ids is None or self.image_id in image_ids:  # type: ignore[operator]
            self._reload_timer.start()

    def reload(self) -> None:
        """Re-read the shown image's shapes (a page per event-loop turn); the list
        changes once every row is read, keeping its selection."""
        self._reload_timer.stop()
        if self._listing and self.filler.pending:
            # A new image's rows are still being listed: list them to the end, then
            # re-read once (restarting threw away the rows listed so far, and an image of
            # thousands of shapes never finished listing while edits kept coming).
            self._reread = True
            return
        self._start(listing=False)

    def _start(self, listing: bool) -> None:
        """Read the shown image's rows from the next turn on and list them once all
        are read; `listing`: a new image, the list is emptied meanwhile."""
        self.filler.stop()
        self._listing, self._read, self._classes = listing, [], []
        self._reread = False
        if listing:
            self.model.set_rows([])
            self._attributes = {}
        try:
            if self.project is not None and self.image_id is not None:
                self._classes = self.project.classes()
                self.filler.start(self.project, self.image_id)
                return
        except StudioError:  # the project closed: show nothing
            pass
        self._page([], True)

    def _page(self, records: list[AnnotationRecord], last: bool) -> None:
        """A page of the shown image's rows (from `filler`). A new image's rows are
        listed page by page (each page is one insertion the table lays out on its
        own); a re-read of the image shown changes the list once, at the last page, so
        that the rows, their selection and the scroll position stay meanwhile."""
        if self._listing:
            self._list(records)
        else:
            self._read += records
        if last and self._listing and self._reread:
            self._reread = False
            self._update_count(reading=True)
            self._start(listing=False)
            return
        if last and not self._listing:
            self._attributes = {a.id: a.attributes for a in self._read}
            self.model.set_rows(object_rows(self._read, self._classes))
            self._read = []
            self.select_ids(self._selection)  # rows selected before they were listed
        self._update_count(reading=not last)

    def _list(self, records: list[AnnotationRecord]) -> None:
        """Append a page of a new image's rows; select those the canvas selected."""
        self._attributes.update((a.id, a.attributes) for a in records)
        self.model.append_rows(object_rows(records, self._classes))
        if self.tree.repaint_pending:  # rows in sight: their paint first, then a read
            self.filler.pause()
        if self._selection and not set(self._selection).isdisjoint(a.id for a in records):
            self.select_ids(self._selection)

    def _update_count(self, reading: bool = False) -> None:
        model = self.model
        n = len(model.rows)
        hidden = sum(1 for i in model.hidden if model.row_of(i) is not None)
        locked = sum(1 for i in model.locked if model.row_of(i) is not None)
        parts = [f"{n} object{'s' if n != 1 else ''}"]
        parts += [f"{hidden} hidden"] if hidden else []
        parts += [f"{locked} locked"] if locked else []
        self.count_label.setText(", ".join(parts) + ("…" if reading else ""))

    # --- hidden and locked ---

    def hidden_ids(self) -> list[int]:
        return sorted(self.model.hidden)

    def locked_ids(self) -> list[int]:
        return sorted(self.model.locked)

    def set_hidden(self, ann_ids: Iterable[int], hidden: bool) -> None:
        """Hide (or show) these shapes; emits `hidden_changed` with every hidden id."""
        ids = set(ann_ids)
        new = self.model.hidden | ids if hidden else self.model.hidden - ids
        self.model.set_states(new, self.model.locked)
        self._update_count()
        self.hidden_changed.emit(self.hidden_ids())

    def set_locked(self, ann_ids: Iterable[int], locked: bool) -> None:
        """Lock (or unlock) these shapes; emits `locked_changed` with every locked id."""
        ids = set(ann_ids)
        new = self.model.locked | ids if locked else self.model.locked - ids
        self.model.set_states(self.model.hidden, new)
        self._update_count()
        self.locked_changed.emit(self.locked_ids())

    def _on_toggled(self, ann_id: int, column: int) -> None:
        if column == Column.EYE:
            self.set_hidden([ann_id], ann_id not in self.model.hidden)
        else:
            self.set_locked([ann_id], ann_id not in self.model.locked)

    # --- selection ---

    def selected_ids(self) -> list[int]:
        """The selected rows' annotation ids, sorted; read from the selection's ranges
        (asking each selected row for its id took ~30 ms for 3,000 rows)."""
        rows = self.model.rows
        return sorted(
            {
                rows[r].ann_id
                for span in self.tree.selectionModel().selection()
                for r in range(span.top(), span.bottom() + 1)
            }
        )

    def select_ids(self, ann_ids: Iterable[int]) -> None:
        """Select the rows of these shapes (the canvas's selection) without emitting
        `selection_requested`; rows that are not listed yet are selected once they are."""
        self._selection = sorted(ann_ids)
        listed = [row for i in self._selection if (row := self.model.row_of(i)) is not None]
        # One range per run of adjacent rows: a select-all of 3,000 rows is one range,
        # not 3,000 for the selection model to merge.
        selection, last_col = QItemSelection(), len(Column) - 1
        for start, end in _runs(sorted(listed)):
            selection.select(self.model.index(start, 0), self.model.index(end, last_col))
        self._syncing = True
        try:
            self.tree.selectionModel().select(
                selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
        finally:
            self._syncing = False
        if listed:  # the first selected shape in drawing order
            self.tree.scrollTo(self.model.index(listed[0], 0))
        self._show_attributes()

    def _on_selection_changed(self, *_: object) -> None:
        if not self._syncing:
            self.selection_requested.emit(self.selected_ids())
            self._show_attributes()

    # --- attributes ---

    def _show_attributes(self) -> None:
        ids = [i for i in self.selected_ids() if i in self._attributes]
        self.attributes.show_for(ids, [self._attributes[i] for i in ids])

    def _set_attributes(self, ann_ids: list[int], **fields: Any) -> None:
        """Apply an attribute edit to shapes (one undo step); the list re-reads on the
        project's event."""
        if self.project is None:
            return
        try:
            self.project.set_attributes(ann_ids, **fields)
        except StudioError as e:  # a shape deleted meanwhile: say so, change nothing
            self.count_label.setText(str(e))
            self.reload()


def _runs(rows: list[int]) -> Iterator[tuple[int, int]]:
    """(first, last) of each run of consecutive numbers in sorted `rows`."""
    start = prev = None
    for row in rows:
        if start is None:
            start = prev = row
        elif row == prev + 1:
            prev = row
        else:
            yield start, prev
            start = prev = row
    if start is not None:
        yield start, prev

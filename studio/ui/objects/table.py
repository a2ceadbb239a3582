"""The objects list's view: a table of uniform rows that looks like a plain list.

A tree view laid out every row of a dense image (3,000 rows through the Python model,
~35 ms) at each change of the list. A table has one fixed row height (no per-row size
hint is asked for), so listing a page of rows costs the view no layout; and a page
appended below the visible rows repaints nothing (`doItemsLayout`), so a new image's
rows can be listed page by page. Its cells are drawn by `RowPainter` (painter.py), from
the cells the model made when each row was listed.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QHeaderView, QStyle, QTableView, QWidget

from studio.ui.objects.model import AnnIdRole, Column, ObjectsModel
from studio.ui.objects.painter import RowPainter

ROW_PADDING = 2  # pixels above and below a row's icon or text, as a tree view's rows


class ObjectsTable(QTableView):
    """A click on the eye or lock column toggles it (`toggled`) instead of selecting
    the row. Counters for tests: `layouts` (item layouts done) and `quiet_layouts`
    (those that only resized the scroll bar: every change since the last was rows
    appended out of sight)."""

    toggled = Signal(int, int)  # annotation id, Column.EYE or Column.LOCK
    painted = Signal()  # after each paint of the rows

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # Since the last layout: rows appended out of sight; any change needing a repaint.
        self._appended = self._repaint = False
        self.layouts = 0
        self.quiet_layouts = 0
        self.row_painter: RowPainter | None = None
        self._look_like_a_list()

    def _look_like_a_list(self) -> None:
        """Rows as a tree view draws them (no grid, no row numbers, left-aligned
        headers), each as high as an icon or a line of text plus `ROW_PADDING`."""
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.setTabKeyNavigation(False)  # Tab leaves the list, as from a tree view
        rows = self.verticalHeader()
        rows.hide()
        height = max(self.fontMetrics().height(), self.icon_side()) + ROW_PADDING
        rows.setMinimumSectionSize(height)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(height)
        header = self.header()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setHighlightSections(False)

    def icon_side(self) -> int:
        """The side of the icons in the cells, logical pixels (the style's small icon)."""
        return self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)

    def header(self) -> QHeaderView:
        """The column headers (a tree view's name for them)."""
        return self.horizontalHeader()

    def setModel(self, model: QAbstractItemModel | None) -> None:  # noqa: N802 - Qt's name
        super().setModel(model)
        if model is None:
            return
        if isinstance(model, ObjectsModel):  # its rows' cells are drawn from its caches
            self.row_painter = RowPainter(model, self)
            self.setItemDelegate(self.row_painter)
        model.rowsInserted.connect(self._rows_inserted)
        for signal in (model.modelReset, model.layoutChanged, model.rowsRemoved,
                       model.rowsMoved, model.columnsInserted, model.columnsRemoved):  # fmt: skip
            signal.connect(self._changed)
        model.rowsRemoved.connect(self._fit_scroll_bar)
        model.modelReset.connect(self._fit_scroll_bar)

    def _fit_scroll_bar(self, *_: object) -> None:
        """Show the scroll bar as soon as the rows overflow, before they are painted:
        shown later, by the layout, it narrowed the viewport and the class column after
        the first paint, and the rows were painted twice more (~15 ms each). An empty
        list (a new image's, until its first page) keeps the bar as it is."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        if rows == 0:
            return
        fits = self.viewport().height() // max(1, self.verticalHeader().defaultSectionSize())
        policy = Qt.ScrollBarPolicy
        wanted = policy.ScrollBarAlwaysOn if rows > fits else policy.ScrollBarAsNeeded
        if self.verticalScrollBarPolicy() != wanted:
            self.setVerticalScrollBarPolicy(wanted)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        if self.row_painter is not None:  # the palette's colours, once per paint
            self.row_painter.prepare(self)
        super().paintEvent(event)
        self.painted.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_scroll_bar()

    def _rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        """Rows inserted below the last visible row change only the scroll bar; rows in
        sight, or a list not filling the viewport, need a repaint."""
        self._fit_scroll_bar()
        below = self.rowAt(self.viewport().height() - 1)
        if below < 0 or first <= below:
            self._changed()
        else:
            self._appended = True

    def _changed(self, *_: object) -> None:
        self._repaint = True

    @property
    def repaint_pending(self) -> bool:
        """Whether a change since the last layout shows: the next layout repaints."""
        return self._repaint

    def doItemsLayout(self) -> None:  # noqa: N802 - Qt's name
        """Qt's layout, which repaints the whole viewport, unless every change since
        the last was rows appended out of sight: then only the scroll bar's range."""
        self.layouts += 1
        quiet = self._appended and not self._repaint
        self._appended = self._repaint = False
        if quiet:
            self.quiet_layouts += 1
            self.updateGeometries()
            return
        super().doItemsLayout()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.indexAt(event.position().toPoint())
        if (
            index.isValid()
            and index.column() in (Column.EYE, Column.LOCK)
            and event.button() == Qt.MouseButton.LeftButton
        ):
            self.toggled.emit(index.data(AnnIdRole), index.column())
            event.accept()
            return
        super().mousePressEvent(event)

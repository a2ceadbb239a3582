"""How the browser paints a row: the thumbnail above the name in the grid, a status dot,
the shape count and, while the Inspect dock has a report, the model's errors on the image
("TP 3 · FP 1 · miss 2" in the canvas's error colours on a dark pill, so that it reads
the same on light and dark themes)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QAbstractItemView, QStyledItemDelegate, QStyleOptionViewItem

from studio.core.browse import BrowseRow
from studio.ml.analysis.per_image import ImageErrors
from studio.ui.browser.model import GRID_ICON, STATUS_COLORS, ImageListModel

# The canvas's error colours (its predictions layer): TP green, FP red, missed orange.
ERROR_COLORS = (QColor("#2ecc40"), QColor("#ff4136"), QColor("#ff851b"))
SEPARATOR = " · "
Feature = QStyleOptionViewItem.ViewItemFeature
LINE_SEPARATOR = "\u2028"


class ThumbDelegate(QStyledItemDelegate):
    """Thumbnail above the name in the grid (the view runs in list mode with wrapping,
    the cheap layout, so the delegate puts the picture on top), plus a status dot and
    the shape count."""

    def __init__(self, view: QAbstractItemView):
        super().__init__(view)
        self._view = view
        self._model: ImageListModel | None = None

    def _watch(self, model: ImageListModel) -> None:
        """Repaint a row when its thumbnail arrives by updating its rectangle, not by a
        `dataChanged` (see `ImageListModel.repaint_row`)."""
        if model is not self._model:
            self._model = model
            model.repaint_row = self._view.update

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        """What Qt's own would set from `data()` (text and picture; the model answers no
        font, colour, alignment or check roles), read from the model directly: Qt's asks
        `data()` for nine roles per row per paint, each a call into Python."""
        model: ImageListModel = index.model()  # type: ignore[assignment]
        self._watch(model)
        info = model.row_info(index.row())
        if info is None:
            super().initStyleOption(option, index)
        else:
            option.index = index
            option.features |= Feature.HasDisplay | Feature.HasDecoration
            # As Qt's `displayText` does: a line break the text layout keeps.
            option.text = model.display_text(info).replace("\n", LINE_SEPARATOR)
            option.icon = model.icon(info)
            option.decorationSize = model.thumbs.size
        if not model.compact:
            option.decorationPosition = QStyleOptionViewItem.Position.Top
            option.decorationAlignment = Qt.AlignmentFlag.AlignCenter
            option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
            option.textElideMode = Qt.TextElideMode.ElideMiddle

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        view = option.widget
        grid = view.gridSize() if view is not None else QSize()  # type: ignore[attr-defined]
        if grid.isValid():
            return grid - QSize(4, 4)
        return super().sizeHint(option, index)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        model: ImageListModel = index.model()  # type: ignore[assignment]
        info: BrowseRow | None = model.row_info(index.row())
        if info is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r: QRect = option.rect
        painter.setPen(QColor(30, 30, 30))
        painter.setBrush(STATUS_COLORS.get(info.status, QColor("gray")))
        painter.drawEllipse(r.left() + 5, r.top() + 5, 10, 10)
        if info.n_objects and not model.compact:
            text = str(info.n_objects)
            fm = painter.fontMetrics()
            w = fm.horizontalAdvance(text) + 8
            badge = QRect(r.right() - w - 4, r.top() + 4, w, fm.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        errors: ImageErrors | None = model.error_counts.get(info.id)
        if errors is not None:
            self._paint_errors(painter, r, errors, model.compact)
        painter.restore()

    def _paint_errors(self, painter: QPainter, r: QRect, e: ImageErrors, compact: bool) -> None:
        """The counts on a dark pill: across the thumbnail's lower edge in the grid, at
        the right end of the row in the list. Words are dropped when they do not fit."""
        fm = painter.fontMetrics()
        parts = [f"TP {e.tp}", f"FP {e.fp}", f"miss {e.fn}"]
        width = fm.horizontalAdvance(SEPARATOR.join(parts)) + 8
        if width > r.width() - 8:
            parts = [str(e.tp), str(e.fp), str(e.fn)]
            width = fm.horizontalAdvance(SEPARATOR.join(parts)) + 8
        h = fm.height() + 2
        if compact:
            pill = QRect(r.right() - width - 4, r.center().y() - h // 2, width, h)
        else:
            # The picture sits at the top of the cell (`initStyleOption`).
            bottom = r.top() + GRID_ICON.height() + 2
            pill = QRect(r.center().x() - width // 2, bottom - h, width, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 190))
        painter.drawRoundedRect(pill, 4, 4)
        x = pill.left() + 4
        for k, (part, color) in enumerate(zip(parts, ERROR_COLORS, strict=True)):
            if k:
                painter.setPen(QColor(220, 220, 220))
                painter.drawText(x, pill.top(), width, h, Qt.AlignmentFlag.AlignVCenter, SEPARATOR)
                x += fm.horizontalAdvance(SEPARATOR)
            painter.setPen(color)
            painter.drawText(x, pill.top(), width, h, Qt.AlignmentFlag.AlignVCenter, part)
            x += fm.horizontalAdvance(part)

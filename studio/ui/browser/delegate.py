"""How the browser paints a row: the thumbnail above the name in the grid, a status dot
and the shape count."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from studio.core.browse import BrowseRow
from studio.ui.browser.model import STATUS_COLORS, RowRole


class ThumbDelegate(QStyledItemDelegate):
    """Thumbnail above the name in the grid (the view runs in list mode with wrapping,
    the cheap layout, so the delegate puts the picture on top), plus a status dot and
    the shape count."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        if not index.model().compact:  # type: ignore[attr-defined]
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
        info: BrowseRow | None = index.data(RowRole)
        if info is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r: QRect = option.rect
        painter.setPen(QColor(30, 30, 30))
        painter.setBrush(STATUS_COLORS.get(info.status, QColor("gray")))
        painter.drawEllipse(r.left() + 5, r.top() + 5, 10, 10)
        if info.n_objects and not index.model().compact:  # type: ignore[attr-defined]
            text = str(info.n_objects)
            fm = painter.fontMetrics()
            w = fm.horizontalAdvance(text) + 8
            badge = QRect(r.right() - w - 4, r.top() + 4, w, fm.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

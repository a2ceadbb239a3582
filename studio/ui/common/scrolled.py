"""A panel's body in a frameless scroll area, so that a short screen scrolls the panel.

Without it a dock's minimum height is the sum of its contents': on a 1366x768 laptop the
training panel and Inspect opened together grew the window to 827 px, and the training
panel's wrapped lines were squeezed over one another.

A scroll area sizes a body whose layout has height-for-width (any wrapped line) to that
layout's *preferred* height for its width. For a column of text that is right (the
training panel's wrapped lines are never squeezed; the column scrolls). For a panel of
tables and plots (Inspect) it scrolled a panel that fitted its dock at 1080 px: with
`fit`, the body is held by a widget without a layout (`_Fitted`) and gets the area's
size, never below its minimum.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


class _Fitted(QWidget):
    """Holds `body` at its own size; asks for the body's minimum, no more."""

    def __init__(self, body: QWidget):
        super().__init__()
        self._body = body
        body.setParent(self)
        body.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:
        # At this width: wrapped lines need more rows when narrow, and a layout given
        # less than that draws its rows over one another.
        hint = self._body.minimumSizeHint()
        layout = self._body.layout()
        if layout is not None and layout.hasHeightForWidth() and self.width() > 0:
            return QSize(
                hint.width(), max(hint.height(), layout.totalMinimumHeightForWidth(self.width()))
            )
        return hint

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._body.setGeometry(0, 0, event.size().width(), event.size().height())
        if event.size().width() != event.oldSize().width():
            self.updateGeometry()  # its minimum height follows its width

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._body and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the body's minimum may have changed
        return False


def scrolled(body: QWidget, fit: bool = False) -> QScrollArea:
    """`body` in a scroll area, at its preferred height for the area's width (`fit`: at
    the area's height, never below its minimum). It scrolls vertically only, and is
    never narrower than `body`."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(_Fitted(body) if fit else body)
    # Vertically only: a panel narrower than its rows would hide half of each.
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll_bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(body.minimumSizeHint().width() + scroll_bar)
    return area

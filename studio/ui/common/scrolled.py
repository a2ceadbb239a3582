"""A panel's body in a frameless scroll area, so that a short screen scrolls the panel.

Without it a dock's minimum height is the sum of its contents': on a 1366x768 laptop the
training panel and Inspect opened together grew the window past the screen, and the
training panel's wrapped lines were squeezed over one another.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


def scrolled(body: QWidget) -> QScrollArea:
    """`body` in a scroll area that resizes it to the area's size (never below its own
    minimum: then the area scrolls, vertically; it is never narrower than `body`)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(body)
    # Vertically only: a panel narrower than its rows would hide half of each.
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll_bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(body.minimumSizeHint().width() + scroll_bar)
    return area

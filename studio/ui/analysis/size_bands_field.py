"""The Evaluation view's size-band field: "Size bands (px): 8, 16, 32, 96".

The user types edges on the object's side (sqrt(area), pixels of the image as
displayed); each edit is checked as it is typed: invalid text turns the field red, its
tooltip and a line beside it say what is wrong, and it is never applied. Valid text is
applied when the user presses Enter or leaves the field (`edges_changed`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QWidget

from studio.ml.analysis.size_bands import SizeBandsError, format_edges, parse_size_edges

INVALID_STYLE = "QLineEdit { background: #ffd6d6; border: 1px solid #d0021b; }"
HINT = "Object side in pixels (sqrt of area); e.g. 8, 16, 32, 96 gives <8, 8-16, 16-32, 32-96, >96"


class SizeBandsField(QWidget):
    """A line edit of size-band edges with live validation."""

    edges_changed = Signal(object)  # list[float]: the new valid edges (may be empty)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.edges: list[float] = []  # the edges last applied
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("e.g. 8, 16, 32, 96")
        self.edit.setToolTip(HINT)
        self.edit.textEdited.connect(self._check)
        self.edit.editingFinished.connect(self._apply)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d0021b;")
        self.error.hide()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Size bands (px):"))
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.error, 2)

    def set_edges(self, edges: list[float]) -> None:
        """Show `edges` (e.g. those saved in the project) without emitting."""
        self.edges = list(edges)
        self.edit.setText(format_edges(self.edges))
        self._check(self.edit.text())

    @property
    def problem(self) -> str | None:
        """What is wrong with the text now (None when it is valid)."""
        return self.error.text() or None

    def _parse(self, text: str) -> list[float] | None:
        try:
            return parse_size_edges(text)
        except SizeBandsError as e:
            self.error.setText(f"Size bands: {e}")
            return None

    def _check(self, text: str) -> bool:
        ok = self._parse(text) is not None
        if ok:
            self.error.setText("")
        self.error.setVisible(not ok)
        self.edit.setStyleSheet("" if ok else INVALID_STYLE)
        self.edit.setToolTip(HINT if ok else f"{self.error.text()}\n{HINT}")
        return ok

    def _apply(self) -> None:
        if not self._check(self.edit.text()):
            return  # refused: the red field and the message stay until it is fixed
        edges = self._parse(self.edit.text()) or []
        if edges != self.edges:
            self.edges = edges
            self.edges_changed.emit(list(edges))

"""The training dock's notices: what the checks and the run say the user should know,
errors first, in colour, the last eight shown."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from studio.ml.run.session import NoticeLevel

SHOWN = 8  # the newest notices shown
NOTICE_STYLE = {  # colour, sign
    NoticeLevel.ERROR: ("#c62828", "✖"),
    NoticeLevel.WARNING: ("#a15c00", "⚠"),
    NoticeLevel.INFO: ("#2e7d32", "✔"),
}


class NoticeList(QLabel):
    """A rich-text label of notices, hidden while there are none. A notice already
    shown is not repeated."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.hide()
        self._lines: list[tuple[str, NoticeLevel]] = []

    def replace(self, warnings: Sequence[str], errors: Sequence[str] = ()) -> None:
        """Show these notices instead of the ones shown (empty lists: none)."""
        self._lines = [(t, NoticeLevel.ERROR) for t in errors]
        self._lines += [(t, NoticeLevel.WARNING) for t in warnings]
        self._render()

    def add(self, text: str, level: str = NoticeLevel.WARNING) -> None:
        line = (text, NoticeLevel(level))
        if line not in self._lines:
            self._lines.append(line)
            self._render()

    def texts(self) -> list[str]:
        return [t for t, _ in self._lines]

    def _render(self) -> None:
        lines = [
            f'<span style="color:{NOTICE_STYLE[level][0]}">{NOTICE_STYLE[level][1]} '
            f"{_html(text)}</span>"
            for text, level in self._lines[-SHOWN:]
        ]
        self.setText("<br>".join(lines))
        self.setVisible(bool(lines))


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

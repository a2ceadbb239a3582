"""Names users and files choose are shown as text, never as HTML.

Qt renders a string as rich text when it merely looks like HTML (`Qt.AutoText`), so a
class called "<h1 style='color:red'>cat" would draw large red letters in a message box
or a tooltip. Message boxes and labels built here use `Qt.PlainText`; tooltips, which
have no format setting, are escaped inside a forced rich-text wrapper.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

_YES, _NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


def plain_tooltip(text: str) -> str:
    """`text` as a tooltip that shows exactly these characters (line breaks kept)."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"


def plain_label(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def message_box(
    parent: QWidget | None,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok,
) -> QMessageBox:
    box = QMessageBox(icon, title, text, buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    return box


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    """A Yes/No question (No by default), its text shown as plain text."""
    box = message_box(parent, QMessageBox.Icon.Question, title, text, _YES | _NO)
    box.setDefaultButton(_NO)
    return box.exec() == _YES

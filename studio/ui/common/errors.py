"""How the window shows an error: a user error's own message, a bug's traceback tail."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from studio.core.errors import StudioError
from studio.ui.common.plain_text import message_box


def error_text(exc: BaseException) -> str:
    """A user error's own message; a traceback's last lines for a bug."""
    if isinstance(exc, StudioError):
        return str(exc)
    tb = getattr(exc, "__traceback_text__", "")
    return f"{type(exc).__name__}: {exc}\n\n{tb[-2000:]}"


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> None:
    message_box(parent, QMessageBox.Icon.Critical, title, error_text(exc)).exec()

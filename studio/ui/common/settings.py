"""The user's settings for Studio (QSettings), shared by every part of the window.

Shortcuts, recent projects and the window geometry live here, in one INI file per user.
Tests point QSettings at a temporary folder with `QSettings.setPath` before use.
"""

from __future__ import annotations

from PySide6.QtCore import QSettings


def settings() -> QSettings:
    """The user's settings for Studio (tests point QSettings at a temporary folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "studio", "studio")

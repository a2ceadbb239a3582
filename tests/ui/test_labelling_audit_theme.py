"""Dark mode follows the desktop while the View ▸ Theme choice is System, and only then."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from studio.ui import theme
from studio.ui.theme import SystemThemeFollower, Theme, apply_theme, save_theme


def _base_lightness() -> int:
    return QApplication.instance().palette().color(QPalette.ColorRole.Base).lightness()


def _desktop_switches_to(monkeypatch, scheme: Qt.ColorScheme) -> None:
    """The desktop changes its colour scheme: Qt reports it and says so."""
    monkeypatch.setattr(theme, "system_is_dark", lambda: scheme == Qt.ColorScheme.Dark)
    QGuiApplication.styleHints().colorSchemeChanged.emit(scheme)
    QApplication.processEvents()


def test_system_theme_follows_the_desktop_live(window, monkeypatch):
    follower = SystemThemeFollower(window)
    try:
        assert window.actions["view.theme.system"].isChecked()  # the default choice
        apply_theme(Theme.SYSTEM)
        _desktop_switches_to(monkeypatch, Qt.ColorScheme.Dark)
        assert _base_lightness() < 60
        _desktop_switches_to(monkeypatch, Qt.ColorScheme.Light)
        assert _base_lightness() > 200
        # A theme the user chose stays, whatever the desktop does.
        window.actions["view.theme.light"].trigger()
        _desktop_switches_to(monkeypatch, Qt.ColorScheme.Dark)
        assert _base_lightness() > 200
        window.actions["view.theme.system"].trigger()  # back to following: dark now
        assert _base_lightness() < 60
    finally:
        follower.deleteLater()
        save_theme(Theme.LIGHT)
        monkeypatch.setattr(theme, "system_is_dark", lambda: False)
        apply_theme(Theme.LIGHT)

"""How the window looks: the light or dark theme, the canvas's fill and tags, and the
window's geometry and dock layout, kept in the user's settings.

The theme is System (follow the desktop's colour scheme, as Qt 6 reports it through
`QGuiApplication.styleHints().colorScheme()`, live), Light or Dark. Studio always uses
the Fusion style with an explicit palette, so both themes look the same on every
platform and the offscreen screenshots match what users see. Icons are drawn from the
palette (`studio.ui.icons`), so they follow a switch without being rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from PySide6.QtCore import QByteArray, QObject, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from studio.ui.common.check_box import restyle_check_boxes
from studio.ui.common.settings import settings

THEME_KEY, FILL_KEY, TAGS_KEY = "view/theme", "canvas/fill_opacity", "canvas/tags"
GEOMETRY_KEY, STATE_KEY = "window/geometry", "window/state"
FILL_STEPS = (0, 15, 30, 50)  # percent opacity of a shape's fill; 0 = outlines only
DEFAULT_FILL = 15


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


THEME_LABELS = {Theme.SYSTEM: "&System", Theme.LIGHT: "&Light", Theme.DARK: "&Dark"}

Role, Group = QPalette.ColorRole, QPalette.ColorGroup

# Window, base (text fields, lists), alternate base, text, button, highlight, link.
_COLOURS = {
    Theme.LIGHT: ("#efefef", "#ffffff", "#f5f5f5", "#1e1e1e", "#e6e6e6", "#2f7fd8", "#1a5fb4"),
    Theme.DARK: ("#2b2b2b", "#1f1f1f", "#262626", "#e6e6e6", "#353535", "#3d8fe0", "#7db7ff"),
}


def system_is_dark() -> bool:
    """True when the desktop asks for a dark colour scheme (Qt 6.5+ reports it)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def resolved(theme: Theme) -> Theme:
    """LIGHT or DARK: what `theme` means now (SYSTEM follows the desktop)."""
    if theme == Theme.SYSTEM:
        return Theme.DARK if system_is_dark() else Theme.LIGHT
    return theme


def palette_for(theme: Theme) -> QPalette:
    """The full palette of LIGHT or DARK (SYSTEM is resolved first)."""
    window, base, alt, text, button, highlight, link = map(QColor, _COLOURS[resolved(theme)])
    dark = resolved(theme) == Theme.DARK
    p = QPalette(button, window)
    for role, colour in (
        (Role.Window, window), (Role.Base, base), (Role.AlternateBase, alt),
        (Role.WindowText, text), (Role.Text, text), (Role.ButtonText, text),
        (Role.Button, button), (Role.Highlight, highlight), (Role.Link, link),
        (Role.HighlightedText, QColor("#ffffff")), (Role.ToolTipBase, base),
        (Role.ToolTipText, text), (Role.BrightText, QColor("#ff5050")),
        (Role.PlaceholderText, QColor("#8c8c8c")),
    ):  # fmt: skip
        p.setColor(Group.All, role, colour)
    dim = QColor("#7a7a7a") if dark else QColor("#9a9a9a")
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        p.setColor(Group.Disabled, role, dim)
    p.setColor(Group.Disabled, Role.Highlight, QColor("#555555" if dark else "#b0b0b0"))
    return p


def apply_theme(theme: Theme) -> Theme:
    """Restyle the whole application at once (Fusion, the theme's palette); returns
    the theme applied (LIGHT or DARK). A no-op without a QApplication."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return resolved(theme)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(palette_for(theme))
    restyle_check_boxes()
    return resolved(theme)


def saved_theme() -> Theme:
    value = settings().value(THEME_KEY, Theme.SYSTEM.value)
    return Theme(value) if value in set(Theme) else Theme.SYSTEM


def save_theme(theme: Theme) -> None:
    settings().setValue(THEME_KEY, Theme(theme).value)


def saved_fill() -> int:
    """The fill opacity (percent, one of FILL_STEPS) the user chose last."""
    try:
        value = int(settings().value(FILL_KEY, DEFAULT_FILL))
    except (TypeError, ValueError):
        return DEFAULT_FILL
    return value if value in FILL_STEPS else DEFAULT_FILL


def save_fill(percent: int) -> None:
    settings().setValue(FILL_KEY, int(percent))


def saved_tags() -> bool:
    """Whether the canvas names the hovered or selected shape's class (default on)."""
    return str(settings().value(TAGS_KEY, "true")).lower() not in ("false", "0")


def save_tags(on: bool) -> None:
    settings().setValue(TAGS_KEY, bool(on))


def saved_window() -> tuple[QByteArray | None, QByteArray | None]:
    """The window's geometry and dock layout as last saved (None: never saved)."""
    s = settings()
    values = (s.value(GEOMETRY_KEY), s.value(STATE_KEY))
    return tuple(v if isinstance(v, QByteArray) and not v.isEmpty() else None for v in values)  # type: ignore[return-value]


def save_window(geometry: QByteArray, state: QByteArray | None) -> None:
    """Remember the window's geometry and (when given) its dock layout."""
    s = settings()
    s.setValue(GEOMETRY_KEY, geometry)
    if state is not None:
        s.setValue(STATE_KEY, state)


def fill_alpha(percent: int) -> int:
    """A fill opacity in percent as a colour alpha, 0-255."""
    return round(max(0, min(100, percent)) * 255 / 100)


class ShapeLook(Protocol):
    """What the canvas's annotation layer offers for its look."""

    def set_fill_opacity(self, alpha: int | None) -> None: ...

    def set_tags_visible(self, on: bool) -> None: ...


class Look:
    """The View menu's look options, applied and remembered: the canvas's fill opacity
    and class tags, and the theme. Keeps the menu's check marks in step."""

    def __init__(self, actions: Mapping[str, QAction], shapes: ShapeLook):
        self.actions, self.shapes = actions, shapes

    def apply_saved(self) -> None:
        """The canvas as the user left it (the theme is applied at start-up, by the app)."""
        self.shapes.set_fill_opacity(fill_alpha(saved_fill()))
        self.shapes.set_tags_visible(saved_tags())
        self._check(f"view.fill.{saved_fill()}", f"view.theme.{saved_theme()}")
        self.actions["view.tags"].setChecked(saved_tags())

    def set_fill_opacity(self, percent: int) -> None:
        """Fill shapes at `percent` opacity (one of FILL_STEPS; 0: outlines only)."""
        save_fill(percent)
        self.shapes.set_fill_opacity(fill_alpha(percent))
        self._check(f"view.fill.{percent}")

    def set_tags_visible(self, on: bool) -> None:
        """Name the hovered or selected shape's class on the canvas, or not."""
        save_tags(on)
        self.shapes.set_tags_visible(on)
        self.actions["view.tags"].setChecked(on)

    def set_theme(self, which: Theme | str) -> None:
        """System, light or dark, applied to the whole application at once."""
        save_theme(Theme(which))
        apply_theme(Theme(which))
        self._check(f"view.theme.{Theme(which)}")

    def _check(self, *action_ids: str) -> None:
        for action_id in action_ids:
            if action_id in self.actions:
                self.actions[action_id].setChecked(True)


class SystemThemeFollower(QObject):
    """Re-applies the theme when the desktop switches between light and dark, while the
    user's choice is System."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    def _on_scheme_changed(self, _scheme: object) -> None:
        if saved_theme() == Theme.SYSTEM:
            apply_theme(Theme.SYSTEM)


__all__ = [
    "DEFAULT_FILL",
    "FILL_STEPS",
    "Look",
    "THEME_LABELS",
    "SystemThemeFollower",
    "Theme",
    "apply_theme",
    "fill_alpha",
    "palette_for",
    "resolved",
    "save_fill",
    "save_tags",
    "save_theme",
    "save_window",
    "saved_window",
    "saved_fill",
    "saved_tags",
    "saved_theme",
]

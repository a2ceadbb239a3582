"""Studio's check box: visible in the dark theme too.

Fusion draws a dark palette's check box as a near-black square with no edge (1.1:1
against the panel), so a box could not be told ticked from unticked or even found. In
the dark theme each of these boxes gets an edge and a filled tick through a style sheet
on the box alone (one on a container freezes the palette of all it holds), redone by
`restyle_check_boxes` when the theme changes; the light theme keeps Fusion's own boxes.
"""

from __future__ import annotations

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QCheckBox


def dark_sheet() -> str:
    """The style sheet a check box needs under the application's palette ("" if light)."""
    pal = QApplication.palette()
    if pal.color(QPalette.ColorRole.Window).lightness() >= 128:
        return ""
    base = pal.color(QPalette.ColorRole.Base).name()
    tick = pal.color(QPalette.ColorRole.Highlight).name()
    return (
        "QCheckBox::indicator { width: 12px; height: 12px; border-radius: 2px;"
        f" border: 1px solid #8c8c8c; background: {base}; }}"
        f" QCheckBox::indicator:checked {{ background: {tick}; border-color: {tick}; }}"
        " QCheckBox::indicator:indeterminate { background: qlineargradient(x1:0, y1:0,"
        f" x2:1, y2:1, stop:0 {tick}, stop:0.5 {tick}, stop:0.51 {base}, stop:1 {base}); }}"
        " QCheckBox::indicator:disabled { border-color: #555555; }"
    )


class CheckBox(QCheckBox):
    """A QCheckBox that follows the theme as described above."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.restyle()

    def restyle(self) -> None:
        """Follow the application's palette (`restyle_check_boxes` calls it on a theme
        change: a box with a style sheet keeps its palette, so no change event reaches it)."""
        sheet = dark_sheet()
        if self.styleSheet() != sheet:  # setting it sends a palette change of its own
            self.setStyleSheet(sheet)


def restyle_check_boxes() -> None:
    """After a theme change: every CheckBox of the application follows it."""
    for w in QApplication.allWidgets():
        if isinstance(w, CheckBox):
            w.restyle()

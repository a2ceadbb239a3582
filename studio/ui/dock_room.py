"""The model panels (Inspect, Analysis) in the right-hand column: tabbed together, hidden
until asked for, raised when opened, and given most of the column's height, once.

Inspect and Analysis open under Classes and Objects, which Qt sizes as the column was:
on a 1080-px screen the Evaluation tab's table, PR curves and confusion matrix then get
a third of the column while a short class list keeps its empty rows. The first time a
panel shows docked there in this window, it takes `SHARE` of the column and the others
keep their proportions in the rest; later the user's own sizes stand.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow

SHARE = 0.6  # of the column's height, for the panel just opened


def add_model_panels(
    window: QMainWindow, panels: Sequence[QDockWidget], column: Sequence[QDockWidget]
) -> None:
    """Dock `panels` under `column` in `window`'s right area, hidden, as tabs of one
    group (both open under Classes and Objects left neither room on a 1080-px screen:
    the window grew past it), each raised when it opens and given the room once."""
    for panel in panels:
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
        panel.hide()
        panel.toggleViewAction().toggled.connect(lambda on, p=panel: on and _raise_soon(p))
        give_room_when_first_shown(window, panel, column)
    for panel in panels[1:]:
        window.tabifyDockWidget(panels[0], panel)


def give_room_when_first_shown(
    window: QMainWindow, panel: QDockWidget, column: Sequence[QDockWidget]
) -> None:
    """Resize `column` + `panel` (docks of `window`'s right area) the first time `panel`
    shows docked there."""
    state = {"done": False}

    def resize() -> None:
        docks = [d for d in (*column, panel) if _docked_right(window, d) and d.isVisible()]
        if panel not in docks or len(docks) < 2 or state["done"]:
            return
        state["done"] = True
        total = sum(d.height() for d in docks)
        rest = [d for d in docks if d is not panel]
        # A dock that says what it needs (the class list: its rows) gets no more.
        wanted = {
            d: min(d.height(), d.wanted_height()) for d in rest if hasattr(d, "wanted_height")
        }
        room = total * (1 - SHARE) - sum(wanted.values())
        free = [d for d in rest if d not in wanted]
        free_total = sum(d.height() for d in free) or 1
        sizes = [wanted[d] if d in wanted else round(room * d.height() / free_total) for d in rest]
        window.resizeDocks([*rest, panel], [*sizes, total - sum(sizes)], Qt.Orientation.Vertical)

    def on_visible(visible: bool) -> None:
        if visible and not state["done"]:
            QTimer.singleShot(0, window, resize)  # after the layout placed the panel

    panel.visibilityChanged.connect(on_visible)


def _docked_right(window: QMainWindow, dock: QDockWidget) -> bool:
    return (
        not dock.isFloating()
        and window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
        and not any(d.isVisible() for d in window.tabifiedDockWidgets(dock))
    )


def _raise_soon(panel: QDockWidget) -> None:
    """Bring `panel` to the front of its tab group once the layout has shown it."""
    QTimer.singleShot(0, panel, panel.raise_)

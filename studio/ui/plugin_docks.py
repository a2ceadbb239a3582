"""What plugins add to the window: dock panels and canvas layers (studio.core.plugins).

The window calls `install_plugins` once it is built. A plugin whose factory raises is
reported in the status bar and skipped: a broken plugin must not stop the window.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from studio.core.plugins import contributions, load_plugins

AREAS = {
    "left": Qt.DockWidgetArea.LeftDockWidgetArea,
    "right": Qt.DockWidgetArea.RightDockWidgetArea,
    "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
}


def install_plugins(window: QMainWindow, canvas: Any) -> tuple[list[QDockWidget], list[str]]:
    """Build every plugin panel (as a dock) and canvas layer. Returns the docks and one
    line per plugin part that failed."""
    errors = [f"plugin {i.name} not loaded: {i.error}" for i in load_plugins() if i.error]
    docks: list[QDockWidget] = []
    for panel in contributions().panels:
        try:
            widget = panel.factory(window)
            if not isinstance(widget, QWidget):
                raise TypeError(f"the factory returned {type(widget).__name__}, not a widget")
        except Exception as e:  # a plugin's bug must not stop the window
            errors.append(f"panel {panel.title!r}: {type(e).__name__}: {e}")
            continue
        dock = QDockWidget(panel.title, window)
        dock.setObjectName(f"plugin_{panel.title}")
        dock.setWidget(widget)
        window.addDockWidget(AREAS[panel.area], dock)
        docks.append(dock)
    for layer in contributions().canvas_layers:
        try:
            canvas.add_layer(layer.factory())
        except Exception as e:
            errors.append(f"canvas layer {layer.name!r}: {type(e).__name__}: {e}")
    return docks, errors

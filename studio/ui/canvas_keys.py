"""Keys the canvas shares with window shortcuts, while it has the focus.

* Left / Right are previous / next image, except with shapes selected, where the canvas
  nudges them;
* Space held while dragging pans the canvas; Space tapped (no mouse press before its
  release) is "mark done, next unlabelled", if that action is bound to Space.

A window shortcut would win over the canvas's own key handling, so this event filter
decides, per key press, which of the two gets the key.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractScrollArea


class CanvasKeys(QObject):
    """Installed on the canvas and its viewport by `install`."""

    def __init__(
        self,
        canvas: QAbstractScrollArea,
        has_selection: Callable[[], bool],
        done_action: QAction,
        on_space_tap: Callable[[], None],
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        # Compared by identity only: while the window is torn down the canvas is half
        # destroyed, and calling into it from here would raise.
        self._canvas = canvas
        self._viewport = canvas.viewport()
        self._has_selection = has_selection
        self._done_action = done_action
        self._on_space_tap = on_space_tap
        self._space_dragged = False

    def install(self) -> None:
        self._canvas.installEventFilter(self)
        self._viewport.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        etype = event.type()
        if watched is self._viewport:
            if etype == QEvent.Type.MouseButtonPress:
                self._space_dragged = True
            return False
        if watched is not self._canvas or not isinstance(event, QKeyEvent):
            return False
        key, plain = event.key(), event.modifiers() == Qt.KeyboardModifier.NoModifier
        if etype == QEvent.Type.ShortcutOverride:
            arrows = key in (Qt.Key.Key_Left, Qt.Key.Key_Right)
            if (arrows and self._has_selection()) or (
                key == Qt.Key.Key_Space and plain and self._space_is_done_key()
            ):
                event.accept()  # the key goes to the canvas, not to the shortcut
                return True
        elif key == Qt.Key.Key_Space and not event.isAutoRepeat():
            if etype == QEvent.Type.KeyPress:
                self._space_dragged = False
            elif etype == QEvent.Type.KeyRelease and not self._space_dragged:
                # After the release is handled: the action may show another image.
                QTimer.singleShot(0, self._on_space_tap)
        return False

    def _space_is_done_key(self) -> bool:
        space = QKeySequence(Qt.Key.Key_Space)
        return any(k == space for k in self._done_action.shortcuts())

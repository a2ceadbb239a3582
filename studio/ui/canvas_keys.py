"""Keys the canvas shares with window shortcuts, while it has the focus.

* Left / Right are previous / next image, except with shapes selected, where the canvas
  nudges them;
* Space held while dragging pans the canvas; Space tapped (no mouse press before its
  release) is "mark done, next not done", if that action is bound to Space.

A window shortcut would win over the canvas's own key handling, so this event filter
decides, per key press, which of the two gets the key. While the mouse is over the
canvas, Space belongs to the canvas even when another panel has the keyboard focus (the
thumbnail just clicked, say): a shortcut fires on the press, before anyone can tell a
tap from the start of a pan, so the press moves the focus to the canvas instead.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

# Widgets that type a space: Space stays theirs wherever the mouse is.
_TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox, QComboBox)


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
        # On the application while the mouse is over the canvas. Its own object: an
        # application filter also sees the canvas's events, which `eventFilter` handles.
        self._redirect = _SpaceRedirect(self)
        self._app_filter = False

    def install(self) -> None:
        self._canvas.installEventFilter(self)
        self._viewport.installEventFilter(self)

    def _watch_app(self, on: bool) -> None:
        """The application-wide filter costs a Python call per event: only while the
        mouse is over the canvas."""
        app = QApplication.instance()
        if app is None or on == self._app_filter:
            return
        self._app_filter = on
        if on:
            app.installEventFilter(self._redirect)
        else:
            app.removeEventFilter(self._redirect)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        etype = event.type()
        if watched is self._viewport:
            if etype == QEvent.Type.MouseButtonPress:
                self._space_dragged = True
            elif etype in (QEvent.Type.Enter, QEvent.Type.MouseMove):
                self._watch_app(True)
            elif etype in (QEvent.Type.Leave, QEvent.Type.Hide):
                self._watch_app(False)
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

    def space_elsewhere(self, watched: QObject, event: QEvent) -> bool:
        """Space pressed in another widget of this window with the mouse over the
        canvas: hand the canvas the focus and the key (see the module's docstring)."""
        etype = event.type()
        if etype == QEvent.Type.MouseMove:
            self._mouse_moved_in(watched)
            return False
        if etype not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        if not isinstance(event, QKeyEvent) or event.key() != Qt.Key.Key_Space:
            return False
        if watched is self._canvas or watched is self._viewport:
            return False
        if not isinstance(watched, QWidget) or isinstance(watched, _TEXT_INPUTS):
            return False
        if watched.window() is not self._canvas.window():
            return False
        if event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False
        if etype == QEvent.Type.ShortcutOverride:
            event.accept()  # no shortcut: the press comes next, and goes to the canvas
            return True
        self._canvas.setFocus(Qt.FocusReason.OtherFocusReason)
        press = QKeyEvent(
            QEvent.Type.KeyPress, event.key(), event.modifiers(), event.text(),
            event.isAutoRepeat(),
        )  # fmt: skip
        QApplication.sendEvent(self._canvas, press)
        return True

    def _mouse_moved_in(self, widget: QObject) -> None:
        """A mouse move that another widget gets: the mouse has left the canvas, whether
        or not a Leave event said so (some platforms drop it)."""
        if not isinstance(widget, QWidget) or widget is self._viewport:
            return
        if widget is self._canvas or widget.isAncestorOf(self._viewport):
            return  # the viewport's own move, propagated to its parents
        self._watch_app(False)

    def _space_is_done_key(self) -> bool:
        space = QKeySequence(Qt.Key.Key_Space)
        return any(k == space for k in self._done_action.shortcuts())


class _SpaceRedirect(QObject):
    """The application-wide half of `CanvasKeys` (see `CanvasKeys.space_elsewhere`)."""

    def __init__(self, keys: CanvasKeys):
        super().__init__(keys)
        self._keys = keys

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        return self._keys.space_elsewhere(watched, event)

"""A mouse gesture in progress, from press to release (positions in image pixels)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.ui.canvas.tools.context import CanvasContext


class Drag:
    """One gesture. The interaction calls `move` on each mouse move and `release` when
    the button goes up; `dispose` and `cancel` when the gesture is cut short."""

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def release(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        pass

    def dispose(self) -> None:
        """Remove what the drag drew, writing and undoing nothing."""

    def cancel(self) -> None:
        """Esc: give up the gesture and whatever it changed."""
        self.dispose()


class EditDrag(Drag):
    """A drag that rewrites shapes as the mouse moves, under one gesture token: every
    write of the drag merges into one undo step, and Esc undoes that step at once."""

    def __init__(self, ctx: CanvasContext, token: object | None = None):
        self.ctx = ctx
        self.token = token if token is not None else object()
        self.wrote = token is not None

    def write(self, changes: dict[int, dict]) -> None:
        if self.ctx.editor.write_update(changes, self.token):
            self.wrote = True

    def cancel(self) -> None:
        if self.wrote:  # the whole drag is the top undo step: undo it as one
            self.ctx.editor.undo_own_gesture()

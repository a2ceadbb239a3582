"""The canvas's keys, and its mouse and keys as users know them.

Mouse and keys (the window binds its own shortcuts to the public methods too):

* wheel: zoom at the cursor; middle drag, or Space + left drag: pan; F: fit.
* select tool (V): click / Ctrl-click (toggle) / Shift-click (add) to select; drag a
  shape to move the selection; drag box corners or edges to resize; drag a vertex;
  drag on empty canvas for a rubber band (shapes wholly inside; Ctrl/Shift add).
* box tool (W): drag to draw, with a crosshair across the image; a click selects.
* polygon tool (P): click vertices; close with Enter, a click on the first vertex, or a
  double-click; Backspace, Ctrl+Z or right-click removes the last vertex; Esc cancels.
  Drawing tools always draw, even over other shapes' corners; edit with the select tool.
* vertices: double-click a polygon edge (any tool) or Shift-click it (select tool,
  then drag) to insert one; right-click a vertex, or click a vertex of the selected
  polygon and press Delete, to remove it (a polygon keeps at least 3).
* Delete / Backspace: delete the active vertex, else the selected shapes. Arrows nudge
  the selection by 1 px (Shift: 10 px). Esc: cancel the drag or polygon, else clear the
  active vertex, else the selection. Ctrl+C / Ctrl+V / Ctrl+A: copy, paste, select all.

`key_action` maps a key press to one of the canvas's public commands; the view keeps
Space (held: pan) itself, and passes on what is not handled here.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence

Key = Qt.Key
NUDGE_PX, NUDGE_SHIFT_PX = 1.0, 10.0  # image pixels an arrow press moves the selection
_ARROWS = {
    Key.Key_Left: (-1.0, 0.0), Key.Key_Right: (1.0, 0.0),
    Key.Key_Up: (0.0, -1.0), Key.Key_Down: (0.0, 1.0),
}  # fmt: skip


class KeyCommands(Protocol):
    """The commands keys reach: `CanvasView`'s public methods."""

    def cancel(self) -> bool: ...
    def finish_polygon(self) -> bool: ...
    def remove_last_vertex(self) -> bool: ...
    def delete_selected(self) -> None: ...
    def nudge(self, dx: float, dy: float) -> None: ...
    def fit(self) -> None: ...
    def copy_selection(self) -> int: ...
    def paste(self) -> list[int]: ...
    def select_all(self) -> None: ...


def key_action(canvas: KeyCommands, event: QKeyEvent) -> bool:
    """Run the command for this key press; False when the key is not the canvas's."""
    key, mods = event.key(), event.modifiers()
    if key == Key.Key_Escape:
        canvas.cancel()
    elif key in (Key.Key_Return, Key.Key_Enter):
        canvas.finish_polygon()
    elif key == Key.Key_Backspace:
        if not canvas.remove_last_vertex():
            canvas.delete_selected()
    elif key == Key.Key_Delete:
        canvas.delete_selected()
    elif key in _ARROWS:
        step = NUDGE_SHIFT_PX if mods & Qt.KeyboardModifier.ShiftModifier else NUDGE_PX
        dx, dy = _ARROWS[key]  # type: ignore[index]
        canvas.nudge(dx * step, dy * step)
    elif key == Key.Key_F and not mods:
        canvas.fit()
    elif event.matches(QKeySequence.StandardKey.Copy):
        canvas.copy_selection()
    elif event.matches(QKeySequence.StandardKey.Paste):
        canvas.paste()
    elif event.matches(QKeySequence.StandardKey.SelectAll):
        canvas.select_all()
    elif event.matches(QKeySequence.StandardKey.Undo):
        # Here only while the window has nothing to undo (its Undo takes the key
        # otherwise, and takes back a drawn point itself): a point still goes.
        return canvas.remove_last_vertex()
    else:
        return False
    return True

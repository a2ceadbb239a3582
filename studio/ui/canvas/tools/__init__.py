"""The canvas's tools: what the mouse does on the canvas.

One module per gesture (`edit_drags`: the select tool's move, resize and vertex drags;
`draw_box`, `draw_polygon`, `rubber_band`), `hits` for hit tests, and `interaction`,
the state machine that picks the gesture for each press. Tools reach the canvas only
through `CanvasContext` (context.py), never through the view's own members.

Gestures (documented for users in `CanvasView`'s docstring):

* select tool: click a shape to select it, Ctrl-click toggles, Shift-click adds; drag a
  shape's body to move the selection; drag a box's corner or edge to resize it; drag a
  polygon vertex to move it; drag on empty canvas for a rubber band (shapes wholly
  inside are selected; with Ctrl or Shift they are added).
  Clicking a vertex of the selected polygon makes it the active vertex, which Delete
  removes; Shift-click on a polygon's edge inserts a vertex there and drags it.
* box tool: drag to draw a box; a click without dragging selects what is under it.
* polygon tool: click to add vertices; close by clicking the first vertex, pressing
  Enter or double-clicking; Backspace or right-click removes the last vertex; Esc
  cancels the polygon.
* drawing tools always draw, even over other shapes and their corners (touching
  objects share corners); editing is the select tool's job.
* every tool: right-click a vertex deletes it (a polygon keeps at least 3);
  double-click on a polygon's edge inserts a vertex there.

Every drag that edits writes through the project at each mouse move with one gesture
token, so the whole drag is one undo step; Esc during the drag undoes it at once.
"""

from studio.ui.canvas.tools.context import CanvasContext
from studio.ui.canvas.tools.hits import Hit, HitKind, cursor_for
from studio.ui.canvas.tools.interaction import TOOLS, Interaction, Tool

__all__ = ["TOOLS", "CanvasContext", "Hit", "HitKind", "Interaction", "Tool", "cursor_for"]

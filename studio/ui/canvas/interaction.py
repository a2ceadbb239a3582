"""The tool state machine: turns presses, moves, releases and keys into drags and edits.

Positions arrive in image pixels (the view maps them); panning and zooming stay in the
view. See `tools` for the gestures each tool understands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from studio.ui.canvas import geometry as G
from studio.ui.canvas.tools import (
    HIT_PX,
    Drag,
    DrawBoxDrag,
    Hit,
    MoveDrag,
    PolygonDraft,
    ResizeDrag,
    RubberBandDrag,
    VertexDrag,
    grab_hit,
)

if TYPE_CHECKING:
    from studio.ui.canvas.view import CanvasView

TOOLS = ("select", "box", "polygon")
Mods = Qt.KeyboardModifier
Button = Qt.MouseButton


class Interaction:
    def __init__(self, view: CanvasView):
        self.view = view
        self.tool = "select"
        self.drag: Drag | None = None
        self.draft: PolygonDraft | None = None

    @property
    def busy(self) -> bool:
        return self.drag is not None or self.draft is not None

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; use one of {', '.join(TOOLS)}")
        self.cancel_draft()
        self.tool = tool

    def reset(self) -> None:
        """Forget gestures in progress without writing (a new image is shown)."""
        if self.drag is not None:
            self.drag.dispose()
        self.drag = None
        self.cancel_draft()

    # --- hit tests ------------------------------------------------------------------------

    def hit(self, x: float, y: float) -> Hit | None:
        """What a press of the select tool at (x, y) would grab: a handle of a selected
        shape, else a handle of any shape near, else the body of the shape under it."""
        shapes = self.view.shapes
        tol = self.view.tol(HIT_PX)
        for ann_id in sorted(shapes.selected):
            rec = shapes.record(ann_id)
            h = grab_hit(rec, x, y, tol) if rec else None
            if h:
                return h
        for item in shapes.shapes_near(x, y, tol):
            h = grab_hit(item.record, x, y, tol)
            if h:
                return h
        ann_id = shapes.shape_at(x, y)
        return Hit("body", ann_id) if ann_id is not None else None

    def edge_at(self, x: float, y: float) -> tuple[int, int, int, float, float] | None:
        """(ann id, part, insert index, x, y) on the nearest polygon edge in reach;
        selected polygons first, then any polygon under or near the cursor."""
        shapes = self.view.shapes
        tol = self.view.tol(HIT_PX)
        candidates = sorted(shapes.selected) + [it.ann_id for it in shapes.shapes_near(x, y, tol)]
        for ann_id in candidates:
            rec = shapes.record(ann_id)
            if rec is not None and rec.kind == "polygon" and rec.polygons:
                e = G.nearest_edge(rec.polygons, x, y, tol)
                if e:
                    return (ann_id, *e)
        return None

    # --- mouse --------------------------------------------------------------------------

    def press(self, x: float, y: float, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> None:
        if self.drag is not None:
            return
        if button == Button.RightButton:
            self._right_press(x, y)
            return
        if button != Button.LeftButton or self.view.image_size() == (0, 0):
            return
        if self.draft is not None:
            if self.draft.can_close_at(x, y):
                self.finish_polygon()
            else:
                self.draft.add(x, y)
            return
        if self.tool == "box":
            self.drag = DrawBoxDrag(self.view, x, y)
            return
        if self.tool == "polygon":
            self.draft = PolygonDraft(self.view, x, y)
            self.view.select([])
            return
        if mods & Mods.ShiftModifier and self._insert_vertex(x, y, drag=True):
            return
        hit = self.hit(x, y)
        if hit is not None and hit.kind != "body":
            self._start_edit(hit, x, y)
        elif hit is not None:
            self._press_body(hit.ann_id, x, y, mods)
        else:
            additive = bool(mods & (Mods.ControlModifier | Mods.ShiftModifier))
            self.drag = RubberBandDrag(self.view, x, y, additive)

    def _start_edit(self, hit: Hit, x: float, y: float) -> None:
        shapes = self.view.shapes
        was_selected = hit.ann_id in shapes.selected
        if not was_selected:
            self.view.select([hit.ann_id])
        if hit.kind == "vertex":
            # Only a vertex of a shape already selected becomes the one Delete removes:
            # a click that merely selects a polygon must leave Delete for the polygon.
            shapes.set_active_vertex((hit.ann_id, hit.part, hit.index) if was_selected else None)
            self.drag = VertexDrag(self.view, hit, x, y)
        else:
            shapes.set_active_vertex(None)
            rec = shapes.record(hit.ann_id)
            assert rec is not None
            self.drag = ResizeDrag(self.view, rec, hit.handle, x, y)

    def _press_body(self, ann_id: int, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        selected = set(self.view.shapes.selected)
        if mods & Mods.ControlModifier:
            self.view.select(sorted(selected ^ {ann_id}))
            return
        if mods & Mods.ShiftModifier:
            selected.add(ann_id)
        elif ann_id not in selected:
            selected = {ann_id}
        self.view.select(sorted(selected))
        self.view.shapes.set_active_vertex(None)
        self.drag = MoveDrag(self.view, sorted(selected), x, y, ann_id)

    def _right_press(self, x: float, y: float) -> None:
        if self.draft is not None:
            self.remove_last_vertex()
            return
        hit = self.hit(x, y)
        if hit is not None and hit.kind == "vertex":
            self.view.delete_vertex(hit.ann_id, hit.part, hit.index)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.drag is not None:
            self.drag.move(x, y, mods)
            return
        if self.draft is not None:
            self.draft.hover(x, y)
            self.view.shapes.set_hover(None)
            return
        if self.tool == "select":
            hit = self.hit(x, y)
            self.view.shapes.set_hover(hit.ann_id if hit else None)
            self.view.set_cursor_for(hit)
        else:  # drawing tools always draw; the highlight shows what lies under
            self.view.shapes.set_hover(self.view.shapes.shape_at(x, y))

    def release(
        self, x: float, y: float, button: Qt.MouseButton, mods: Qt.KeyboardModifier
    ) -> None:
        drag, self.drag = self.drag, None
        if drag is not None and button == Button.LeftButton:
            drag.release(x, y, mods)
        elif drag is not None:
            self.drag = drag  # another button let go mid-drag: keep dragging

    def double_click(self, x: float, y: float, button: Qt.MouseButton) -> None:
        if button != Button.LeftButton:
            return
        if self.draft is not None:
            self.finish_polygon()
            return
        if self.drag is not None:
            self.drag.dispose()
            self.drag = None
        self._insert_vertex(x, y, drag=False)

    def _insert_vertex(self, x: float, y: float, drag: bool) -> bool:
        e = self.edge_at(x, y)
        if e is None:
            return False
        ann_id, part, index, vx, vy = e
        rec = self.view.shapes.record(ann_id)
        assert rec is not None and rec.polygons
        token = object()
        polys = G.inserted_vertex(rec.polygons, part, index, vx, vy)
        if not self.view.write_update({ann_id: {"polygons": polys}}, token):
            return False
        self.view.select([ann_id])
        self.view.shapes.set_active_vertex((ann_id, part, index))
        if drag:
            hit = Hit("vertex", ann_id, part=part, index=index)
            self.drag = VertexDrag(self.view, hit, vx, vy, token)
        return True

    # --- keys and commands ----------------------------------------------------------------

    def finish_polygon(self) -> bool:
        if self.draft is None:
            return False
        if len(self.draft.points) < 3:
            self.view.message.emit("A polygon needs at least 3 points")
            return True
        draft, self.draft = self.draft, None
        new_id = draft.finish()
        if new_id is not None:
            self.view.select([new_id])
        return True

    def remove_last_vertex(self) -> bool:
        if self.draft is None:
            return False
        if not self.draft.pop():
            self.cancel_draft()
        return True

    def cancel_draft(self) -> bool:
        if self.draft is None:
            return False
        self.draft.discard()
        self.draft = None
        return True

    def cancel(self) -> bool:
        """Esc: stop the drag (undoing what it wrote), else drop the unfinished polygon,
        else forget the active vertex, else clear the selection. False if nothing to do."""
        if self.drag is not None:
            drag, self.drag = self.drag, None
            drag.cancel()
            return True
        if self.cancel_draft():
            return True
        shapes = self.view.shapes
        if shapes.active_vertex is not None:
            shapes.set_active_vertex(None)
            return True
        if shapes.selected:
            self.view.select([])
            return True
        return False

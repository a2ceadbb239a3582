"""The tool state machine: turns presses, moves, releases and keys into drags and edits.

Positions arrive in image pixels (the view maps them); panning and zooming stay in the
view. See the package docstring for the gestures each tool understands.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt

from studio.ui.canvas import geometry as G
from studio.ui.canvas.tools.context import CanvasContext
from studio.ui.canvas.tools.drag import Drag
from studio.ui.canvas.tools.draw_box import DrawBoxDrag
from studio.ui.canvas.tools.draw_polygon import PolygonDraft
from studio.ui.canvas.tools.edit_drags import MoveDrag, ResizeDrag, VertexDrag
from studio.ui.canvas.tools.hits import Hit, HitKind, edge_at, hit_at
from studio.ui.canvas.tools.rubber_band import RubberBandDrag

Mods = Qt.KeyboardModifier
Button = Qt.MouseButton


class Tool(StrEnum):
    SELECT = "select"
    BOX = "box"
    POLYGON = "polygon"


TOOLS = tuple(Tool)


class Interaction:
    """The current tool, and the drag or unfinished polygon in progress, if any."""

    def __init__(self, ctx: CanvasContext):
        self.ctx = ctx
        self.tool = Tool.SELECT
        self.drag: Drag | None = None
        self.draft: PolygonDraft | None = None

    @property
    def busy(self) -> bool:
        return self.drag is not None or self.draft is not None

    def set_tool(self, tool: str) -> None:
        """Switch tools ("select", "box", "polygon"), dropping an unfinished polygon."""
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; use one of {', '.join(TOOLS)}")
        self.cancel_draft()
        self.tool = Tool(tool)

    def reset(self) -> None:
        """Forget gestures in progress without writing (a new image is shown)."""
        if self.drag is not None:
            self.drag.dispose()
        self.drag = None
        self.cancel_draft()

    def hit(self, x: float, y: float, complete: bool = True) -> Hit | None:
        """What a press of the select tool at (x, y) would grab (see `hits.hit_at`)."""
        return hit_at(self.ctx, x, y, complete)

    # --- mouse --------------------------------------------------------------------------

    def press(self, x: float, y: float, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> None:
        if self.drag is not None:
            return
        if button == Button.RightButton:
            self._right_press(x, y)
            return
        if button != Button.LeftButton or self.ctx.image_size() == (0, 0):
            return
        if self.draft is not None:
            if self.draft.can_close_at(x, y):
                self.finish_polygon()
            else:
                self.draft.add(x, y)
            return
        if self.tool == Tool.BOX:
            self.drag = DrawBoxDrag(self.ctx, x, y)
            return
        if self.tool == Tool.POLYGON:
            self.draft = PolygonDraft(self.ctx, x, y)
            self.ctx.editor.select([])
            return
        if mods & Mods.ShiftModifier and self._insert_vertex(x, y, drag=True):
            return
        hit = self.hit(x, y)
        if hit is not None and hit.kind != HitKind.BODY:
            self._start_edit(hit, x, y)
        elif hit is not None:
            self._press_body(hit.ann_id, x, y, mods)
        else:
            additive = bool(mods & (Mods.ControlModifier | Mods.ShiftModifier))
            self.drag = RubberBandDrag(self.ctx, x, y, additive)

    def _start_edit(self, hit: Hit, x: float, y: float) -> None:
        shapes = self.ctx.shapes
        was_selected = hit.ann_id in shapes.selected
        if not was_selected:
            self.ctx.editor.select([hit.ann_id])
        if hit.kind == HitKind.VERTEX:
            # Only a vertex of a shape already selected becomes the one Delete removes:
            # a click that merely selects a polygon must leave Delete for the polygon.
            shapes.set_active_vertex((hit.ann_id, hit.part, hit.index) if was_selected else None)
            self.drag = VertexDrag(self.ctx, hit, x, y)
        else:
            shapes.set_active_vertex(None)
            rec = shapes.record(hit.ann_id)
            assert rec is not None
            self.drag = ResizeDrag(self.ctx, rec, hit.handle, x, y)

    def _press_body(self, ann_id: int, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        selected = set(self.ctx.shapes.selected)
        if mods & Mods.ControlModifier:
            self.ctx.editor.select(sorted(selected ^ {ann_id}))
            return
        if mods & Mods.ShiftModifier:
            selected.add(ann_id)
        elif ann_id not in selected:
            selected = {ann_id}
        self.ctx.editor.select(sorted(selected))
        self.ctx.shapes.set_active_vertex(None)
        self.drag = MoveDrag(self.ctx, sorted(selected), x, y, ann_id)

    def _right_press(self, x: float, y: float) -> None:
        if self.draft is not None:
            self.remove_last_vertex()
            return
        hit = self.hit(x, y)
        if hit is not None and hit.kind == HitKind.VERTEX:
            self.ctx.editor.delete_vertex(hit.ann_id, hit.part, hit.index)

    def move(self, x: float, y: float, mods: Qt.KeyboardModifier) -> None:
        if self.drag is not None:
            self.drag.move(x, y, mods)
            return
        if self.draft is not None:
            self.draft.hover(x, y)
            self.ctx.shapes.set_hover(None)
            return
        # A hover reads no rows while the image's shapes arrive (it may miss one not
        # built yet; the next move corrects it): a move every few ms must stay cheap.
        if self.tool == Tool.SELECT:
            hit = self.hit(x, y, complete=False)
            self.ctx.shapes.set_hover(hit.ann_id if hit else None)
            self.ctx.set_cursor_for(hit)
        else:  # drawing tools always draw; the highlight shows what lies under
            self.ctx.shapes.set_hover(self.ctx.shapes.shape_at(x, y, complete=False))

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
        e = edge_at(self.ctx, x, y)
        if e is None:
            return False
        ann_id, part, index, vx, vy = e
        rec = self.ctx.shapes.record(ann_id)
        assert rec is not None and rec.polygons
        token = object()
        polys = G.inserted_vertex(rec.polygons, part, index, vx, vy)
        if not self.ctx.editor.write_update({ann_id: {"polygons": polys}}, token):
            return False
        self.ctx.editor.select([ann_id])
        self.ctx.shapes.set_active_vertex((ann_id, part, index))
        if drag:
            hit = Hit(HitKind.VERTEX, ann_id, part=part, index=index)
            self.drag = VertexDrag(self.ctx, hit, vx, vy, token)
        return True

    # --- keys and commands ----------------------------------------------------------------

    def finish_polygon(self) -> bool:
        if self.draft is None:
            return False
        if len(self.draft.points) < 3:
            self.ctx.editor.notify("A polygon needs at least 3 points")
            return True
        draft, self.draft = self.draft, None
        new_id = draft.finish()
        if new_id is not None:
            self.ctx.editor.select([new_id])
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
        shapes = self.ctx.shapes
        if shapes.active_vertex is not None:
            shapes.set_active_vertex(None)
            return True
        if shapes.selected:
            self.ctx.editor.select([])
            return True
        return False

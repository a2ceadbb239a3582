"""The canvas's writes: every edit goes through the Project API at once, then the canvas
re-reads exactly the rows it wrote (its own change events are not re-read in full), so
the scene stays a mirror of the database at the cost of one small query per edit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from studio.core.errors import StudioError
from studio.core.project import Project, make_annotation_row
from studio.core.records import AnnotationRecord, ImageRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.tools import movable, shifted

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from studio.ui.canvas.shapes import ShapeLayer

PASTE_OFFSET = 10.0  # image pixels a paste onto its own image is shifted by
NUDGE_PAUSE = 1.0  # seconds between arrow presses that still count as one nudge


class EditingMixin:
    """Edits, clipboard and refreshes of `CanvasView`, which provides the rest."""

    if TYPE_CHECKING:
        _project: Project | None
        _image: ImageRecord | None
        _own_edits: int
        _clipboard: list[AnnotationRecord]
        _nudge: tuple[object, float, frozenset[int]]
        shapes: ShapeLayer
        message: SignalInstance
        selection_changed: SignalInstance

        def image_size(self) -> tuple[float, float]: ...
        def select(self, ids: Iterable[int]) -> None: ...
        def selected_annotation_ids(self) -> list[int]: ...
        def _class_for_new(self) -> int | None: ...

    def _require_project(self) -> Project:
        if self._project is None:
            raise StudioError("no project is open")
        return self._project

    @contextmanager
    def _own_edit(self) -> Iterator[None]:
        """Around the canvas's own writes: their change events are not re-read in full;
        the canvas refreshes just the rows it wrote, right after."""
        self._own_edits += 1
        try:
            yield
        finally:
            self._own_edits -= 1

    def write_update(self, changes: dict[int, dict], gesture: object | None = None) -> bool:
        project = self._require_project()
        try:
            with self._own_edit():
                project.update_annotations(changes, gesture=gesture)
        except StudioError as e:
            self.message.emit(str(e))
            self._reload_shapes()
            return False
        self._refresh(list(changes))
        return True

    def write_add(self, kind: str, bbox=None, polygons=None) -> int | None:
        project = self._require_project()
        class_id = self._class_for_new()
        if class_id is None or self._image is None:
            self.message.emit("Add a class before drawing shapes")
            return None
        try:
            with self._own_edit():
                new_id = project.add_annotation(
                    self._image.id, class_id, kind, bbox=bbox, polygons=polygons
                )
        except StudioError as e:
            self.message.emit(str(e))
            self._reload_shapes()
            return None
        self._refresh([new_id])
        return new_id

    def _add_rows(self, rows: list[dict]) -> list[int]:
        if not rows:
            return []
        try:
            with self._own_edit():
                ids = self._require_project().add_annotations(rows)
        except StudioError as e:
            self.message.emit(str(e))
            self._reload_shapes()
            return []
        self._refresh(ids)
        self.select(ids)
        return ids

    def undo_own_gesture(self) -> None:
        """Esc during a drag: the drag is the newest undo step; take it back."""
        with self._own_edit():
            self._require_project().undo()
        self._reload_shapes()

    def delete_selected(self) -> None:
        """Delete the active vertex if there is one, else the selected shapes."""
        vertex = self.shapes.active_vertex
        if vertex is not None:
            self.delete_vertex(*vertex)
            return
        ids = self.selected_annotation_ids()
        if not ids:
            return
        try:
            with self._own_edit():
                self._require_project().delete_annotations(ids)
        except StudioError as e:
            self.message.emit(str(e))
        self._refresh(ids)

    def delete_vertex(self, ann_id: int, part: int, index: int) -> None:
        rec = self.shapes.record(ann_id)
        if rec is None or not rec.polygons:
            return
        polys = G.removed_vertex(rec.polygons, part, index)
        if polys is None:
            self.message.emit("A polygon needs at least 3 points; delete the shape instead")
            return
        if self.write_update({ann_id: {"polygons": polys}}):
            self.shapes.set_active_vertex(None)

    def nudge(self, dx: float, dy: float) -> None:
        """Move the selection by (dx, dy) image pixels; presses in quick succession on the
        same selection are one undo step."""
        ids = frozenset(self.shapes.selected)
        if not ids:
            return
        token, last, last_ids = self._nudge
        now = time.monotonic()
        if ids != last_ids or now - last > NUDGE_PAUSE:
            token = object()
        self._nudge = (token, now, ids)
        recs = movable(self, sorted(ids))  # type: ignore[arg-type]
        if not recs:
            return
        # One shift for all, limited by their union, so they keep their arrangement.
        x0, y0 = min(r.bbox[0] for r in recs), min(r.bbox[1] for r in recs)
        x1 = max(r.bbox[0] + r.bbox[2] for r in recs)
        y1 = max(r.bbox[1] + r.bbox[3] for r in recs)
        d = G.limit_shift((x0, y0, x1 - x0, y1 - y0), dx, dy, *self.image_size())
        if d != (0.0, 0.0):
            self.write_update({r.id: shifted(r, *d) for r in recs}, token)

    def assign_class(self, class_id: int) -> None:
        """Give the selected shapes another class (the window's 1-9 keys may call it)."""
        ids = self.selected_annotation_ids()
        if ids:
            self.write_update({i: {"class_id": class_id} for i in ids})

    # --- clipboard ------------------------------------------------------------------------

    def copy_selection(self) -> int:
        recs = [self.shapes.record(i) for i in self.selected_annotation_ids()]
        self._clipboard = [r for r in recs if r is not None]
        if self._clipboard:
            self.message.emit(f"Copied {len(self._clipboard)} shape(s)")
        return len(self._clipboard)

    def paste(self) -> list[int]:
        """Paste the copied shapes onto the shown image (the same image or another),
        clipped to it; on their own image they are shifted a little to be seen."""
        if not self._clipboard or self._image is None:
            return []
        same = all(r.image_id == self._image.id for r in self._clipboard)
        offset = PASTE_OFFSET if same else 0.0
        return self._add_copies(self._clipboard, offset, "Pasted")

    def copy_from_previous(self, previous_image_id: int) -> list[int]:
        """Copy every shape of another image (the previous one, say) onto this one, as
        one undo step; shapes are clipped to this image."""
        if self._image is None or previous_image_id == self._image.id:
            return []
        recs = self._require_project().annotations(image_ids=[previous_image_id])
        if not recs:
            self.message.emit("The previous image has no shapes")
            return []
        return self._add_copies(recs, 0.0, "Copied from the previous image:")

    def _add_copies(self, recs: list[AnnotationRecord], offset: float, verb: str) -> list[int]:
        assert self._image is not None
        w, h = self.image_size()
        rows, skipped = [], 0
        for r in recs:
            polys = G.shift_polygons(r.polygons, offset, offset) if r.polygons else None
            fitted = G.clipped_shape(r.kind, G.shift_box(r.bbox, offset, offset), polys, w, h)
            if fitted is None or r.class_id not in self.shapes.styles:
                skipped += 1
                continue
            box, polys = fitted
            rows.append(make_annotation_row(self._image.id, r.class_id, r.kind, box, polys))
        ids = self._add_rows(rows)
        note = f" ({skipped} left out: outside the image or not a box/polygon)" if skipped else ""
        self.message.emit(f"{verb} {len(ids)} shape(s){note}")
        return ids

    # --- re-reading what changed -------------------------------------------------------------

    def _refresh(self, ids: list[int]) -> None:
        """Re-read the rows the canvas just wrote and update their items."""
        if self._project is None or self._image is None:
            return
        before = set(self.shapes.selected)
        recs = [r for r in self._project.annotations(ids=ids) if r.image_id == self._image.id]
        self.shapes.refresh(ids, recs)
        if self.shapes.selected != before:
            self.selection_changed.emit(sorted(self.shapes.selected))

    def _reload_shapes(self) -> None:
        """Re-read every shape of the image and apply the differences (undo, redo,
        edits made elsewhere)."""
        if self._project is None or self._image is None:
            return
        before = set(self.shapes.selected)
        self.shapes.replace_all(self._project.annotations(image_ids=[self._image.id]))
        if self.shapes.selected != before:
            self.selection_changed.emit(sorted(self.shapes.selected))

"""The canvas's writes: edits of the shown image's annotations, through the Project API.

Every edit goes through the project at once (so it lands on the undo stack), then the
editor re-reads exactly the rows it wrote (its own change events are not re-read in
full), so the annotation layer stays a mirror of the database at the cost of one small
query per edit. Coordinates are image pixels as displayed, the project's coordinates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from PySide6.QtGui import QColor

from studio.core.errors import StudioError
from studio.core.kinds import ShapeKind
from studio.core.project import Project, make_annotation_row
from studio.core.records import AnnotationRecord, BBox, ImageRecord, Polygons
from studio.ui.canvas import geometry as G

if TYPE_CHECKING:
    from studio.ui.canvas.layers.annotations import AnnotationLayer

PASTE_OFFSET = 10.0  # image pixels a paste onto its own image is shifted by
NUDGE_PAUSE = 1.0  # seconds between arrow presses that still count as one nudge
LOCKED_TEXT = "Locked shape: unlock it in the Objects list to edit it"
# Past this many changed rows (a bulk edit) one read of the whole image is cheaper than
# reading the rows by id, and keeps the IN list within SQLite's limits.
MAX_ROWS_REFRESHED = 200


def movable(shapes: AnnotationLayer, ids: Iterable[int]) -> list[AnnotationRecord]:
    """Records of the shapes among `ids` that moves may rewrite (boxes and polygons;
    a mask's pixels would stay behind)."""
    recs = (shapes.record(i) for i in ids)
    return [r for r in recs if r is not None and r.kind != ShapeKind.MASK]


def shifted(rec: AnnotationRecord, dx: float, dy: float) -> dict:
    """The update that moves a box or polygon by (dx, dy) image pixels."""
    if rec.kind == ShapeKind.POLYGON and rec.polygons:
        return {"polygons": G.shift_polygons(rec.polygons, dx, dy)}
    return {"bbox": G.shift_box(rec.bbox, dx, dy)}


def union_box(recs: list[AnnotationRecord]) -> BBox:
    """The box (x, y, w, h) around all of `recs`' boxes."""
    x0, y0 = min(r.bbox[0] for r in recs), min(r.bbox[1] for r in recs)
    x1 = max(r.bbox[0] + r.bbox[2] for r in recs)
    y1 = max(r.bbox[1] + r.bbox[3] for r in recs)
    return (x0, y0, x1 - x0, y1 - y0)


class Editor:
    """Edits, selection, clipboard and refreshes for the image the canvas shows.

    Holds what the canvas is editing (the project, the image, the class new shapes
    get); tells the canvas what happened through two callbacks: `tell(text)` for the
    status bar and `selection_changed(ids)` when the selected annotation ids change.
    """

    def __init__(
        self,
        shapes: AnnotationLayer,
        tell: Callable[[str], None],
        selection_changed: Callable[[list[int]], None],
    ):
        self.shapes = shapes
        self.project: Project | None = None
        self.image: ImageRecord | None = None
        self.current_class: int | None = None
        self.clipboard: list[AnnotationRecord] = []
        self._tell = tell
        self._selection_changed = selection_changed
        self._own_edits = 0
        self._changed_rows: list[int] | None = None  # from `rows_changed`, until used
        self._nudge: tuple[object, float, frozenset[int]] = (None, 0.0, frozenset())
        self._pastes: dict[int, int] = {}  # image id -> pastes of the clipboard there
        # Called with a hidden class's id when a shape of it is drawn or pasted (the
        # window shows the class again, else the new shape would be invisible).
        self.on_hidden_class_drawn: Callable[[int], None] | None = None

    # --- state ------------------------------------------------------------------------

    def require_project(self) -> Project:
        if self.project is None:
            raise StudioError("no project is open")
        return self.project

    @property
    def writing(self) -> bool:
        """True while the editor's own write runs (its change events are not re-read)."""
        return self._own_edits > 0

    def notify(self, text: str) -> None:
        """One line for the status bar."""
        self._tell(text)

    def image_size(self) -> tuple[float, float]:
        """The shown image's (width, height) in image pixels; (0, 0) when none."""
        im = self.image
        return (float(im.width), float(im.height)) if im else (0.0, 0.0)

    def class_for_new(self) -> int | None:
        """The class new shapes get: the current one, else the first class."""
        ids = list(self.shapes.styles)
        if self.current_class in self.shapes.styles:
            return self.current_class
        return ids[0] if ids else None

    def draft_color(self) -> QColor:
        """The colour of a shape being drawn: its class's."""
        cid = self.class_for_new()
        return self.shapes.style(cid).color if cid is not None else QColor("white")

    def reload_classes(self) -> None:
        """Classes were added, renamed or recoloured: restyle, and forget a current
        class that is gone."""
        if self.project is None:
            return
        self.shapes.set_classes(self.project.classes())
        if self.current_class is not None and self.current_class not in self.shapes.styles:
            self.current_class = None

    # --- selection --------------------------------------------------------------------

    @contextmanager
    def selection_follows(self) -> Iterator[None]:
        """Around anything that may change the selection: reports the change, once."""
        before = set(self.shapes.selected)
        yield
        if self.shapes.selected != before:
            self._selection_changed(sorted(self.shapes.selected))

    def select(self, ids: Iterable[int]) -> None:
        with self.selection_follows():
            self.shapes.set_selection(ids)

    def selected_ids(self) -> list[int]:
        return sorted(self.shapes.selected)

    # --- writes -----------------------------------------------------------------------

    @contextmanager
    def _own_edit(self) -> Iterator[None]:
        self._own_edits += 1
        try:
            yield
        finally:
            self._own_edits -= 1

    def editable(self, ids: Iterable[int]) -> list[int]:
        """The ids among `ids` that are not locked; says so in the status bar when some
        are (a locked shape refuses moves, reshapes, re-classing and deletion)."""
        ids = list(ids)
        free = [i for i in ids if i not in self.shapes.locked]
        if len(free) < len(ids):
            self.notify(LOCKED_TEXT)
        return free

    def write_update(self, changes: dict[int, dict], gesture: object | None = None) -> bool:
        """Rewrite shapes (`changes`: ann id -> {"bbox"|"polygons"|"class_id": ...});
        calls with the same `gesture` token are one undo step. False if refused (all of
        them locked, or the project said no)."""
        project = self.require_project()
        changes = {i: changes[i] for i in self.editable(changes)}
        if not changes:
            return False
        try:
            with self._own_edit():
                project.update_annotations(changes, gesture=gesture)
        except StudioError as e:
            self.notify(str(e))
            self.reload()
            return False
        self.refresh(list(changes))
        return True

    def write_add(
        self, kind: ShapeKind, bbox: BBox | None = None, polygons: Polygons | None = None
    ) -> int | None:
        """Add a shape of the class for new shapes to the shown image; its id or None."""
        project = self.require_project()
        class_id = self.class_for_new()
        if class_id is None or self.image is None:
            self.notify("Add a class before drawing shapes")
            return None
        try:
            with self._own_edit():
                new_id = project.add_annotation(
                    self.image.id, class_id, kind, bbox=bbox, polygons=polygons
                )
        except StudioError as e:
            self.notify(str(e))
            self.reload()
            return None
        self._reveal([class_id])
        self.refresh([new_id])
        return new_id

    def _reveal(self, class_ids: Iterable[int]) -> None:
        for cid in sorted(set(class_ids) & self.shapes.hidden):
            if self.on_hidden_class_drawn is not None:
                self.on_hidden_class_drawn(cid)

    def _add_rows(self, rows: list[dict]) -> list[int]:
        if not rows:
            return []
        try:
            with self._own_edit():
                ids = self.require_project().add_annotations(rows)
        except StudioError as e:
            self.notify(str(e))
            self.reload()
            return []
        self._reveal(r["class_id"] for r in rows)
        self.refresh(ids)
        self.select(ids)
        return ids

    def undo_own_gesture(self) -> None:
        """Esc during a drag: the drag is the newest undo step; take it back, leaving
        nothing to redo but what could be redone before the drag."""
        with self._own_edit():
            self.require_project().undo_stack.withdraw()
        self.reload()

    def delete_selected(self) -> None:
        """Delete the active vertex if there is one, else the selected shapes."""
        vertex = self.shapes.active_vertex
        if vertex is not None:
            self.delete_vertex(*vertex)
            return
        ids = self.editable(self.selected_ids())
        if not ids:
            return
        try:
            with self._own_edit():
                self.require_project().delete_annotations(ids)
        except StudioError as e:
            self.notify(str(e))
        self.refresh(ids)

    def delete_vertex(self, ann_id: int, part: int, index: int) -> None:
        """Remove vertex `index` of polygon part `part` (a polygon keeps at least 3)."""
        rec = self.shapes.record(ann_id)
        if rec is None or not rec.polygons:
            return
        polys = G.removed_vertex(rec.polygons, part, index)
        if polys is None:
            self.notify("A polygon needs at least 3 points; delete the shape instead")
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
        recs = movable(self.shapes, sorted(ids))
        if not recs:
            return
        # One shift for all, limited by their union, so they keep their arrangement.
        d = G.limit_shift(union_box(recs), dx, dy, *self.image_size())
        if d != (0.0, 0.0):
            self.write_update({r.id: shifted(r, *d) for r in recs}, token)

    def assign_class(self, class_id: int) -> None:
        """Give the selected shapes another class."""
        ids = self.selected_ids()
        if ids:
            self.write_update({i: {"class_id": class_id} for i in ids})

    # --- clipboard --------------------------------------------------------------------

    def copy_selection(self) -> int:
        """Copy the selected shapes; returns how many."""
        recs = [self.shapes.record(i) for i in self.selected_ids()]
        self.clipboard = [r for r in recs if r is not None]
        self._pastes = {}
        if self.clipboard:
            self.notify(f"Copied {len(self.clipboard)} shape(s)")
        return len(self.clipboard)

    def paste(self) -> list[int]:
        """Paste the copied shapes onto the shown image (the same image or another),
        clipped to it; on their own image they are shifted a little to be seen."""
        if not self.clipboard or self.image is None:
            return []
        same = all(r.image_id == self.image.id for r in self.clipboard)
        # Each paste onto one image lands a step further: none hides under another.
        n = self._pastes.get(self.image.id, 0) + 1
        self._pastes[self.image.id] = n
        offset = PASTE_OFFSET * (n if same else n - 1)
        return self._add_copies(self.clipboard, offset, "Pasted")

    def copy_from_previous(self, previous_image_id: int) -> list[int]:
        """Copy every shape of another image (the previous one, say) onto this one, as
        one undo step; shapes are clipped to this image."""
        if self.image is None or previous_image_id == self.image.id:
            return []
        project = self.require_project()
        recs = project.annotations(image_ids=[previous_image_id])
        if not recs:
            self.notify("The previous image has no shapes")
            return []
        here = {_same_shape_key(r) for r in project.annotations(image_ids=[self.image.id])}
        fresh = [r for r in recs if _same_shape_key(r) not in here]
        if not fresh:
            self.notify("Every shape of the previous image is already on this one")
            return []
        return self._add_copies(fresh, 0.0, "Copied from the previous image:")

    def _add_copies(self, recs: list[AnnotationRecord], offset: float, verb: str) -> list[int]:
        assert self.image is not None
        w, h = self.image_size()
        rows, skipped = [], 0
        for r in recs:
            polys = G.shift_polygons(r.polygons, offset, offset) if r.polygons else None
            fitted = G.clipped_shape(r.kind, G.shift_box(r.bbox, offset, offset), polys, w, h)
            if fitted is None or r.class_id not in self.shapes.styles:
                skipped += 1
                continue
            box, polys = fitted
            rows.append(make_annotation_row(self.image.id, r.class_id, r.kind, box, polys))
        ids = self._add_rows(rows)
        note = f" ({skipped} left out: outside the image or not a box/polygon)" if skipped else ""
        self.notify(f"{verb} {len(ids)} shape(s){note}")
        return ids

    # --- re-reading what changed ------------------------------------------------------

    def refresh(self, ids: list[int]) -> None:
        """Re-read the rows the editor just wrote and update their items."""
        if self.project is None or self.image is None:
            return
        image_id = self.image.id
        recs = [r for r in self.project.annotations(ids=ids) if r.image_id == image_id]
        with self.selection_follows():
            self.shapes.refresh(ids, recs)

    def rows_changed(self, ann_ids: list[int] | None) -> None:
        """The project's `annotation_rows_changed`: the ids of the rows that the
        `annotations_changed` following it is about; kept until then."""
        self._changed_rows = list(ann_ids) if ann_ids is not None else None

    def annotations_changed(self, image_ids: list[int] | None) -> None:
        """The project's event: follow a change of the shown image's shapes (unless it
        is the editor's own write, which refreshes just its rows). An undo or redo
        names its rows, so only those are re-read (~1 ms instead of ~45 ms for every
        row of an image with 3,000 polygons); a change that names none (a class merge,
        an import) or very many re-reads the whole image."""
        rows, self._changed_rows = self._changed_rows, None
        if self.writing or self.image is None:
            return
        if image_ids is not None and self.image.id not in image_ids:
            return
        if rows is None or len(rows) > MAX_ROWS_REFRESHED:
            self.reload()
        else:
            self.refresh(rows)

    def reload(self) -> None:
        """Re-read every shape of the image and apply the differences (undo, redo,
        edits made elsewhere)."""
        if self.project is None or self.image is None:
            return
        with self.selection_follows():
            self.shapes.replace_all(self.project.annotations(image_ids=[self.image.id]))


def _same_shape_key(r: AnnotationRecord) -> tuple:
    """What makes two shapes the same copy: class, kind and geometry (to 0.01 px)."""
    polys = tuple(tuple(round(v, 2) for v in p) for p in r.polygons or ())
    return r.class_id, r.kind, tuple(round(v, 2) for v in r.bbox), polys

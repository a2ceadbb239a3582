"""Hit tests over the shape items of the annotation layer (scene = image pixels).

What lies under the cursor must be judged against every shape of the image, also while
the shapes still arrive over event-loop turns (`PageReader`). Reading all that is left
of 3,000 shapes costs ~150-250 ms, so a hit test builds only the shapes that can matter
(`complete_in`): the records already read whose box meets the place it tests, and the
rows not read yet among them, found by one query over the unread rows' boxes (~1-3 ms).
A hover may miss a shape not built yet (`complete=False`: the next mouse move corrects
it) and reads nothing. A selection by id reads just those rows (`complete_ids`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QGraphicsScene

from studio.core.records import AnnotationRecord
from studio.ui.canvas.geometry import bbox_area
from studio.ui.canvas.layers.shape_pages import PageReader
from studio.ui.canvas.scene_items import PEN_BOUNDS_MARGIN, BoxItem, PolygonItem

if TYPE_CHECKING:
    from studio.core.store.annotations import AnnotationRepo

# Scene units an item's bounds reach past its record's box (its pen): a shape whose box
# is this close to the tested place counts as meeting it.
BOX_MARGIN = PEN_BOUNDS_MARGIN + 1.0


class ShapeHits:
    """Hit tests of `AnnotationLayer` (a mixin: it provides `_scene`, `items`, `pages`,
    `_rows` and `_add_page`)."""

    _scene: QGraphicsScene
    items: dict[int, BoxItem | PolygonItem]
    pages: PageReader
    _rows: tuple[AnnotationRepo, int] | None  # (repository, image id) of the shown image

    def _add_page(self, records: list[AnnotationRecord]) -> None: ...

    # --- shapes still arriving --------------------------------------------------------

    def complete_in(self, rect: QRectF) -> None:
        """Build now every shape still arriving whose box meets `rect` (scene), and no
        other: those read and waiting, then those not read yet (one query for the
        rows above the reader's `after` id). The reader delivers the rest as before;
        what it reads again of these is already built and stays as it is."""
        if not self.pages.pending:
            return
        r = rect.adjusted(-BOX_MARGIN, -BOX_MARGIN, BOX_MARGIN, BOX_MARGIN)
        x0, y0, x1, y1 = r.left(), r.top(), r.right(), r.bottom()

        def meets(rec: AnnotationRecord) -> bool:
            x, y, w, h = rec.bbox
            return x <= x1 and x + w >= x0 and y <= y1 and y + h >= y0

        records = self.pages.take(meets)
        if self.pages.unread and self._rows is not None:
            repo, image_id = self._rows
            unread = repo.page_in_box(image_id, self.pages.after, (x0, y0, x1 - x0, y1 - y0))
            records += [rec for rec in unread if rec.id not in self.items]
        if records:
            self._add_page(sorted(records, key=lambda rec: rec.id))

    def complete_ids(self, ids: Iterable[int]) -> None:
        """Build now the shapes of `ids` still arriving (taken from those read, or their
        rows read by id); ids of other images or of no shape are left out."""
        missing = {i for i in ids if i not in self.items}
        if not missing or not self.pages.pending:
            return
        records = self.pages.take(lambda rec: rec.id in missing)
        unread = sorted(i for i in missing if i > self.pages.after)
        if self.pages.unread and unread and self._rows is not None:
            repo, image_id = self._rows
            records += [rec for rec in repo.list(ids=unread) if rec.image_id == image_id]
        if records:
            self._add_page(sorted(records, key=lambda rec: rec.id))

    # --- hit tests ----------------------------------------------------------------------

    def shapes_near(
        self, x: float, y: float, tol: float, complete: bool = True
    ) -> list[BoxItem | PolygonItem]:
        """Visible shapes whose bounds come within `tol` of (x, y), smallest first.
        `complete=False`: of the shapes built so far only."""
        rect = QRectF(x - tol, y - tol, 2 * tol, 2 * tol)
        if complete:
            self.complete_in(rect)
        found = [
            it
            for it in self._scene.items(rect, Qt.ItemSelectionMode.IntersectsItemBoundingRect)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]
        found.sort(key=lambda it: bbox_area(it.record.bbox))
        return found

    def shape_at(self, x: float, y: float, complete: bool = True) -> int | None:
        """The shape under (x, y); of nested shapes the smallest, so a small box inside
        a big one can always be picked. `complete=False`: of the shapes built so far."""
        if complete:
            self.complete_in(QRectF(x, y, 0.0, 0.0))
        hits = [
            it
            for it in self._scene.items(QPointF(x, y), Qt.ItemSelectionMode.IntersectsItemShape)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]
        if not hits:
            return None
        return min(hits, key=lambda it: bbox_area(it.record.bbox)).ann_id

    def ids_in_rect(self, rect: QRectF) -> list[int]:
        """Visible shapes lying wholly inside `rect` (the rubber band)."""
        self.complete_in(rect)
        return [
            it.ann_id
            for it in self._scene.items(rect, Qt.ItemSelectionMode.ContainsItemBoundingRect)
            if isinstance(it, BoxItem | PolygonItem) and it.isVisible()
        ]

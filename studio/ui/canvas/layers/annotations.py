"""The annotations layer: the shapes of the shown image as scene items, kept equal to the
database by diffing.

`AnnotationLayer` owns one item per annotation, keyed by annotation id, and updates only the
items whose records changed, so an edit on a canvas of 3,000 polygons touches one item.
It also draws the canvas-only state: hover, selection, handles, the active vertex.
Plain shapes (neither hovered nor selected) are painted from one cached picture by a
`ShapeRaster`; hovered and selected ones paint themselves above it. The shapes of an
image arrive over event-loop turns (`PageReader`), and a change of every shape's style is
applied over turns (`Restyler`), so that no turn blocks the GUI thread for long.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from studio.core.kinds import ShapeKind, Source
from studio.core.project import Project
from studio.core.records import AnnotationRecord, ClassRecord, ImageRecord
from studio.ui.canvas.geometry import box_handle_points
from studio.ui.canvas.layers.base import SceneLayer
from studio.ui.canvas.layers.shape_hits import ShapeHits
from studio.ui.canvas.layers.shape_pages import PAGE_SIZE, ItemSweeper, PageReader
from studio.ui.canvas.layers.shape_raster import ShapeRaster
from studio.ui.canvas.layers.shape_restyle import Restyler
from studio.ui.canvas.scene_items import (
    Z_SHAPES,
    BoxItem,
    ClassStyle,
    HandleItem,
    PolygonItem,
    TagItem,
    make_shape_item,
    shape_item_type,
)

NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents  # a plain shape: see raster
MAX_HANDLES = 2000  # past this (a huge multi-selection), handles are left out
# From this many shapes on, plain shapes are outlines only and lines are not
# antialiased: a full repaint of 3,000 filled antialiased polygons takes ~0.6 s on a
# slow laptop, ~70 ms this way.
DENSE_SHAPES = 600
BSP_DEPTH = 10  # the scene index's depth: 1,024 cells, for thousands of shapes
# Shapes shown or hidden at once up to which the picture is redrawn only where they are.
FEW_CHANGED = 16


class AnnotationLayer(ShapeHits, SceneLayer):
    """One item per annotation of the shown image, plus hover, selection and handles.
    Hidden classes' shapes, shapes hidden one by one (`hidden_shapes`) and all shapes
    while the layer is hidden are invisible: they cannot be hovered, picked or selected.
    Locked shapes (`locked`) show and select but get no handles; the editor refuses
    their edits. Both sets are per session (canvas state, not database rows)."""

    name = "annotations"
    z = Z_SHAPES

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[int, BoxItem | PolygonItem] = {}
        self.styles: dict[int, ClassStyle] = {}
        self.class_names: dict[int, str] = {}
        self.hidden: set[int] = set()  # class ids
        self.hidden_shapes: set[int] = set()  # annotation ids
        self.locked: set[int] = set()  # annotation ids
        self.fill_alpha: int | None = None  # None: each style's own fill
        self.tags = True
        self.selected: set[int] = set()
        self.hover: int | None = None
        self.active_vertex: tuple[int, int, int] | None = None  # ann id, part, index
        self.dense = False
        self.on_density_changed: Callable[[bool], None] | None = None
        self.items_built = 0  # shape items made or updated from records (tests read it)
        self._handles: list[HandleItem] = []
        self.tag = TagItem()
        self.raster = ShapeRaster(self._plain_in)
        self.restyler = Restyler(self._restyle_item, self._restyled)
        self._styles_now: dict[int, ClassStyle] = {}  # with this fill, while restyling
        self.pages = PageReader(self._add_page)
        self.sweeper = ItemSweeper()  # the items of the image shown before
        self._rows = None  # (repository, image id) of the shown image: see ShapeHits

    def attach(self, scene: QGraphicsScene) -> None:
        super().attach(scene)
        # Qt sizes an automatic BSP tree once, at the first index build, for the items
        # there then, and never again: an image of few shapes shown first left images of
        # thousands with a tree too shallow (a hit test examined ~770 items, not ~60).
        scene.setBspTreeDepth(BSP_DEPTH)
        scene.addItem(self.tag)
        scene.addItem(self.raster)

    def show_image(self, image: ImageRecord, project: Project) -> None:
        """Show the shapes of `image`: fewer than a page (`PAGE_SIZE`) at once; more over
        the next event-loop turns, a time slice each (`pages`; `finish_reading` reads
        them now), built once `DENSE_SHAPES` are read, so that their style is settled
        before the first is drawn."""
        self.clear()
        # Shapes lie on the image; the margin keeps a stray one (outside it) drawn.
        m = max(image.width, image.height, 1)
        self.raster.set_bounds(QRectF(-m, -m, image.width + 2 * m, image.height + 2 * m))
        repo, image_id = project.store.annotations, image.id
        self._rows = (repo, image_id)
        first = repo.page(image_id, 0, PAGE_SIZE)
        if len(first) < PAGE_SIZE:
            self.replace_all(first)
        else:
            read = lambda after, n: repo.page(image_id, after, n)  # noqa: E731
            self.pages.start(read, first, hold=DENSE_SHAPES)

    def finish_reading(self) -> None:
        """Read the shapes still to come now (what needs every shape calls this)."""
        if self.pages.pending:
            self.pages.finish()

    def detach(self) -> None:
        self.pages.stop()
        self.restyler.stop()
        self.sweeper.finish()

    def view_changed(self, visible: QRectF, zoom: float) -> None:
        self.raster.view_settled()

    @property
    def _scene(self) -> QGraphicsScene:
        assert self.scene is not None, "attach the layer to a scene first"
        return self.scene

    # --- records ----------------------------------------------------------------------

    def record(self, ann_id: int) -> AnnotationRecord | None:
        item = self.items.get(ann_id)
        if item is None and self.pages.pending:
            self.complete_ids([ann_id])
            item = self.items.get(ann_id)
        return item.record if item is not None else None

    def records(self) -> list[AnnotationRecord]:
        self.finish_reading()
        return [it.record for it in self.items.values()]

    def set_classes(self, classes: Iterable[ClassRecord]) -> None:
        classes = list(classes)
        old = {cid: s.color.name() for cid, s in self.styles.items()}
        styles = {}
        for c in classes:
            # A class whose colour stays keeps its style: its items keep their pens.
            style, new = self.styles.get(c.id), ClassStyle(c.color)
            styles[c.id] = style if style is not None and style.color == new.color else new
        self.styles = styles
        self.class_names = {c.id: c.name for c in classes}
        if old != {cid: s.color.name() for cid, s in self.styles.items()}:
            self._restyle_all()
            self._update_handles()

    def style(self, class_id: int) -> ClassStyle:
        style = self.styles.get(class_id)
        if style is None:
            style = self.styles[class_id] = ClassStyle("")
        return style

    def clear(self) -> None:
        self.pages.stop()
        self.restyler.stop()
        # Taking 3,000 items off the scene and freeing them costs ~25 ms: hidden now,
        # removed over the next turns, not in the call that opens the next image.
        self.sweeper.drop(self.items.values())
        self.items = {}
        self.raster.invalidate()
        self.selected.clear()
        self.hover = None
        self.active_vertex = None
        self._check_density(0)
        self._update_handles()

    def replace_all(self, records: list[AnnotationRecord]) -> bool:
        """Make the items equal `records` (everything on the image). True if any changed."""
        self.pages.stop()  # `records` is everything: no page is left to read
        new = {r.id: r for r in records}
        gone = [i for i in self.items if i not in new]
        return self._apply(new, gone)

    def refresh(self, ids: Iterable[int], records: list[AnnotationRecord]) -> bool:
        """Update the items of `ids` from `records` (their rows as now in the database);
        ids without a record were deleted."""
        ids = list(ids)
        self.pages.forget(ids)  # copies read before these rows changed
        new = {r.id: r for r in records}
        gone = [i for i in ids if i not in new and i in self.items]
        return self._apply(new, gone)

    def _apply(self, new: dict[int, AnnotationRecord], gone: list[int]) -> bool:
        for ann_id in gone:
            self._remove(ann_id)
        todo = [(i, r) for i, r in new.items() if i not in self.items or self.items[i].record != r]
        if todo:
            # Decide the density first, so that each new item is styled once.
            fresh = sum(1 for i, _ in todo if i not in self.items)
            self._check_density(len(self.items) + fresh + self.pages.buffered)
        for ann_id, rec in todo:
            self._put(ann_id, rec)
        if self.active_vertex and not self._vertex_exists(*self.active_vertex):
            self.active_vertex = None
        if gone or todo:
            self._check_density(len(self.items) + self.pages.buffered)
            self._update_handles()
        return bool(gone or todo)

    def _remove(self, ann_id: int) -> None:
        item = self.items.pop(ann_id)
        self._unpaint(item)
        self._scene.removeItem(item)
        self.selected.discard(ann_id)
        if self.hover == ann_id:
            self.hover = None

    def _put(self, ann_id: int, rec: AnnotationRecord) -> None:
        """Make or update the item of `rec` (`items_built` counts these)."""
        item = self.items.get(ann_id)
        if item is not None:
            self._unpaint(item)  # where it was
        new = item is None or type(item) is not shape_item_type(rec)
        if new:
            if item is not None:
                self._scene.removeItem(item)
            item = self.items[ann_id] = make_shape_item(rec)
        else:
            item.set_record(rec)
        self.items_built += 1
        if not self._shows(rec):
            item.setVisible(False)
        self._restyle(ann_id)
        if new:
            # Styled first: a pen or z change of an item in a scene re-indexes it, which
            # made a fifth of the cost of building 3,000 items.
            self._scene.addItem(item)

    def _add_page(self, records: list[AnnotationRecord]) -> None:
        """A later page of the shown image's shapes (from `pages`). Its new items are
        stacked above all others, so the raster paints them onto its picture as it is
        instead of redrawing the places they cover."""
        known = {r.id: r for r in records if r.id in self.items}  # a refresh came first
        if known:
            self._apply(known, [])
        fresh = [r for r in records if r.id not in self.items]
        self._check_density(len(self.items) + len(fresh) + self.pages.buffered)
        plain = []
        for rec in fresh:
            item = self.items[rec.id] = make_shape_item(rec)
            self.items_built += 1
            item.setVisible(self._shows(rec))
            self._style(item)  # no selection or hover can name it yet: plain
            item.setFlag(NO_CONTENTS, True)
            self._scene.addItem(item)  # after styling: see _put
            if item.isVisible():
                plain.append(item)
        self.raster.draw_on_top(plain)

    def _check_density(self, count: int) -> None:
        """Switch to the dense style at `count` shapes (built and read) or more; not
        back while rows are left unread (`count` says too little then)."""
        dense = count >= DENSE_SHAPES or (self.dense and self.pages.unread)
        if dense != self.dense:
            self.dense = dense
            self._restyle_all(redraw=True)  # the view's render hints change with it
            if self.on_density_changed is not None:
                self.on_density_changed(dense)

    def _vertex_exists(self, ann_id: int, part: int, index: int) -> bool:
        rec = self.record(ann_id)
        polys = rec.polygons if rec else None
        return bool(polys) and part < len(polys) and index < len(polys[part]) // 2

    # --- visibility, hover and selection -------------------------------------------------

    def is_visible(self, ann_id: int) -> bool:
        item = self.items.get(ann_id)
        return item is not None and item.isVisible()

    def _shows(self, rec: AnnotationRecord) -> bool:
        return self.visible and rec.class_id not in self.hidden and rec.id not in self.hidden_shapes

    def set_hidden(self, class_ids: Iterable[int]) -> None:
        """Hide the shapes of these classes (the rest show)."""
        self.hidden = set(class_ids)
        self._apply_visible()

    def set_hidden_shapes(self, ann_ids: Iterable[int]) -> None:
        """Hide these shapes one by one (on any image; ids of other images wait)."""
        self.hidden_shapes = set(ann_ids)
        self._apply_visible()

    def set_locked(self, ann_ids: Iterable[int]) -> None:
        """Lock these shapes against edits (see `Editor.editable`)."""
        self.locked = set(ann_ids)
        self._update_handles()

    def set_fill_opacity(self, alpha: int | None) -> None:
        """Fill plain shapes at `alpha` (0-255; 0 = outlines only); None: the default."""
        self.fill_alpha = alpha
        if not self.dense:
            self._restyle_all()
            return
        # Dense plain shapes have no fill: only the hovered and selected ones change.
        for ann_id in {self.hover, *self.selected}:
            if ann_id in self.items:
                self._restyle(ann_id)

    def set_tags_visible(self, on: bool) -> None:
        """Show the class-name tag on the hovered or selected shape, or never."""
        self.tags = on
        self._update_tag()

    def _apply_visible(self) -> None:
        shown, changed = 0, []
        for item in self.items.values():
            shows = self._shows(item.record)
            if shows != item.isVisible():
                item.setVisible(shows)
                changed.append(item)
            shown += shows
        if len(changed) > FEW_CHANGED:
            self.raster.redraw(shown)
        else:  # a shape hidden or shown one by one: redraw where it is
            for item in changed:
                self.raster.mark_item(item)
        self.selected = {i for i in self.selected if self.is_visible(i)}
        if self.hover is not None and not self.is_visible(self.hover):
            self.hover = None
        self._update_handles()

    def set_selection(self, ids: Iterable[int]) -> bool:
        ids = list(ids)
        self.complete_ids(ids)
        new = {i for i in ids if self.is_visible(i)}
        if new == self.selected:
            return False
        old, self.selected = self.selected, new
        if self.active_vertex and self.active_vertex[0] not in new:
            self.active_vertex = None
        for ann_id in old ^ new:
            self._restyle(ann_id)
        self._update_handles()
        return True

    def set_hover(self, ann_id: int | None) -> None:
        if ann_id == self.hover:
            return
        old, self.hover = self.hover, ann_id
        for i in (old, ann_id):
            if i is not None and i in self.items:
                self._restyle(i)
        self._update_tag()

    def set_active_vertex(self, vertex: tuple[int, int, int] | None) -> None:
        if vertex != self.active_vertex:
            self.active_vertex = vertex
            self._update_handles()

    def _style(self, item: BoxItem | PolygonItem) -> bool:
        """Give `item` the pen and brush of its state; True if it is plain (neither
        hovered nor selected: the raster paints it)."""
        hover, selected = item.ann_id == self.hover, item.ann_id in self.selected
        style = self.style(item.record.class_id).with_fill(self.fill_alpha)
        item.apply_style(style, hover, selected, self.dense)
        return not (hover or selected)

    @property
    def redrawing(self) -> bool:
        """Every shape's look is being changed or redrawn over event-loop turns."""
        return self.restyler.pending or self.raster.sharpening

    def _restyle_all(self, redraw: bool = False) -> None:
        """Every shape's style may have changed (colours, fill, density; hover and
        selection did not): restyle them all (of many, over event-loop turns, hovered
        and selected first: they paint themselves), then if a plain shape looks
        different (or `redraw`), have the raster draw a new picture (of many shapes
        also over turns, the old one showing meanwhile)."""
        self._styles_now = {}
        first = [self.items[i] for i in {self.hover, *self.selected} if i in self.items]
        self.restyler.start(first + list(self.items.values()), redraw)

    def _restyle_item(self, item: BoxItem | PolygonItem) -> bool:
        """Give `item` the look of its state; True if it is plain and looks different."""
        cid = item.record.class_id
        style = self._styles_now.get(cid)
        if style is None:
            style = self._styles_now[cid] = self.style(cid).with_fill(self.fill_alpha)
        hover, selected = item.ann_id == self.hover, item.ann_id in self.selected
        return item.apply_style(style, hover, selected, self.dense) and not (hover or selected)

    def _restyled(self, changed: bool) -> None:
        if changed:
            self.raster.redraw(len(self.items))

    def _restyle(self, ann_id: int) -> None:
        item = self.items[ann_id]
        # Plain shapes are painted by the raster; hovered and selected ones by themselves.
        plain = self._style(item)
        if plain:
            self.raster.mark_item(item)
        else:
            self._unpaint(item)
        item.setFlag(NO_CONTENTS, plain)

    def _unpaint(self, item: BoxItem | PolygonItem) -> None:
        """Take `item` out of the raster's picture if it is there (a plain shape)."""
        if item.flags() & NO_CONTENTS:
            self.raster.mark_item(item)

    def _plain_in(self, rect: QRectF) -> list[BoxItem | PolygonItem]:
        """Visible plain shapes whose bounds meet `rect` (scene), bottom first: what the
        raster draws, in the order the items would paint themselves."""
        return [
            it
            for it in self._scene.items(
                rect,
                Qt.ItemSelectionMode.IntersectsItemBoundingRect,
                Qt.SortOrder.AscendingOrder,
            )
            if isinstance(it, BoxItem | PolygonItem)
            and it.isVisible()
            and it.ann_id != self.hover
            and it.ann_id not in self.selected
        ]

    def _update_handles(self) -> None:
        """Place handles on the selected shapes, reusing the items already there: during
        a vertex drag this moves a few squares instead of rebuilding them."""
        wanted: list[tuple[float, float, object, bool]] = []
        for ann_id in sorted(self.selected - self.locked):
            rec = self.record(ann_id)
            if rec is None:
                continue
            color = self.style(rec.class_id).color
            if rec.kind == ShapeKind.POLYGON and rec.polygons:
                for pi, part in enumerate(rec.polygons):
                    for vi in range(len(part) // 2):
                        active = self.active_vertex == (ann_id, pi, vi)
                        wanted.append((part[2 * vi], part[2 * vi + 1], color, active))
            else:
                for x, y in box_handle_points(rec.bbox).values():
                    wanted.append((x, y, color, False))
            if len(wanted) > MAX_HANDLES:
                break
        while len(self._handles) > len(wanted):
            self._scene.removeItem(self._handles.pop())
        for i, (x, y, color, active) in enumerate(wanted):
            if i < len(self._handles):
                self._handles[i].setPos(x, y)
                self._handles[i].set_active(color, active)  # type: ignore[arg-type]
            else:
                h = HandleItem(x, y, color, active)  # type: ignore[arg-type]
                self._scene.addItem(h)
                self._handles.append(h)
        self._update_tag()

    def _update_tag(self) -> None:
        """Name the hovered shape, else the one selected shape, at its top-left corner."""
        ann_id = self.hover
        if ann_id is None and len(self.selected) == 1:
            ann_id = next(iter(self.selected))
        rec = self.record(ann_id) if ann_id is not None and self.tags else None
        if rec is None:
            self.tag.setVisible(False)
            return
        name = self.class_names.get(rec.class_id, f"class {rec.class_id}")
        if rec.source == Source.PREDICTED and rec.score is not None:
            name += f" {rec.score:.2f}"
        self.tag.show_tag(name, self.style(rec.class_id).color, QPointF(rec.bbox[0], rec.bbox[1]))

"""CanvasView: shows one image of a project with its shapes, and edits them.

Scene coordinates are image pixels as displayed (the project's coordinates), so a box
drawn at any zoom is written in image pixels. The database is the truth: every finished
edit goes through the `Project` API at once, and the scene follows the project's
events, diffing by annotation id so only changed items are touched. What only the
canvas knows: the shape being drawn, the selection, hover, the active vertex, the zoom.

Mouse and keys (the window binds its own shortcuts to the public methods too):

* wheel: zoom at the cursor; middle drag, or Space + left drag: pan; F: fit.
* select tool (V): click / Ctrl-click (toggle) / Shift-click (add) to select; drag a
  shape to move the selection; drag box corners or edges to resize; drag a vertex;
  drag on empty canvas for a rubber band (shapes wholly inside; Ctrl/Shift add).
* box tool (W): drag to draw, with a crosshair across the image; a click selects.
* polygon tool (P): click vertices; close with Enter, a click on the first vertex, or a
  double-click; Backspace or right-click removes the last vertex; Esc cancels.
  Drawing tools always draw, even over other shapes' corners; edit with the select tool.
* vertices: double-click a polygon edge (any tool) or Shift-click it (select tool,
  then drag) to insert one; right-click a vertex, or click a vertex of the selected
  polygon and press Delete, to remove it (a polygon keeps at least 3).
* Delete / Backspace: delete the active vertex, else the selected shapes. Arrows nudge
  the selection by 1 px (Shift: 10 px). Esc: cancel the drag or polygon, else clear the
  active vertex, else the selection. Ctrl+C / Ctrl+V / Ctrl+A: copy, paste, select all.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import AnnotationRecord, ImageRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.editing import EditingMixin
from studio.ui.canvas.image_layer import ImageLayer
from studio.ui.canvas.image_source import ImageSource
from studio.ui.canvas.interaction import Interaction
from studio.ui.canvas.scene_items import Crosshair
from studio.ui.canvas.shapes import ShapeLayer
from studio.ui.canvas.tools import Hit

MIN_ZOOM, MAX_ZOOM = 0.002, 64.0
FIT_MARGIN = 8  # screen pixels around a fitted image
Key = Qt.Key


class CanvasView(EditingMixin, QGraphicsView):
    cursor_moved = Signal(float, float)  # image pixels
    zoom_changed = Signal(float)  # screen pixels per image pixel
    tool_changed = Signal(str)
    selection_changed = Signal(list)  # annotation ids
    image_shown = Signal(int)  # a new image is up (its pixels may follow: pixels_shown)
    pixels_shown = Signal(int)  # the image's preview is painted from now on
    message = Signal(str)  # one line for the status bar
    _ann_event = Signal(object)  # project events, hopped to the GUI thread
    _img_event = Signal(object)
    _cls_event = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._project: Project | None = None
        self._image: ImageRecord | None = None
        self._current_class: int | None = None
        self._clipboard: list[AnnotationRecord] = []
        self._own_edits = 0
        self._disconnect: list = []
        self._fitted = True
        self._pan_from: QPointF | None = None
        self._space = False
        self._nudge: tuple[object, float, frozenset[int]] = (None, 0.0, frozenset())
        self._build_scene()
        self._build_view()
        self._build_timers()

    # --- construction ---------------------------------------------------------------------

    def _build_scene(self) -> None:
        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setScene(scene)
        self.source = ImageSource(parent=self)
        self.image_layer = ImageLayer(scene, self.source)
        self.image_layer.pixels_shown.connect(self.pixels_shown)
        self.image_layer.failed.connect(lambda _id, text: self.message.emit(text))
        self.shapes = ShapeLayer(scene)
        self.shapes.on_density_changed = lambda dense: self.setRenderHint(
            QPainter.RenderHint.Antialiasing, not dense
        )
        self.crosshair = Crosshair(scene)
        self.interaction = Interaction(self)

    def _build_view(self) -> None:
        self.setBackgroundBrush(QBrush(QColor(30, 30, 30)))
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)
        self._ann_event.connect(self._on_annotations_changed)
        self._img_event.connect(self._on_images_changed)
        self._cls_event.connect(self._on_classes_changed)

    def _build_timers(self) -> None:
        # Tiles follow zoom and pan after a short pause, not on every wheel step.
        self._view_timer = QTimer(self, singleShot=True, interval=60)
        self._view_timer.timeout.connect(self._update_image_view)

    # --- project --------------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self._project

    def set_project(self, project: Project | None) -> None:
        for disconnect in self._disconnect:
            disconnect()
        self._disconnect.clear()
        self._clear_image()
        self._clipboard = []
        self._project = project
        if project is None:
            return
        ev = project.events
        for sig, qt_sig in ((ev.annotations_changed, self._ann_event),
                            (ev.images_changed, self._img_event)):  # fmt: skip
            self._disconnect.append(self._relay(sig, qt_sig.emit))
        self._disconnect.append(self._relay(ev.classes_changed, lambda: self._cls_event.emit()))
        self._on_classes_changed()

    def _relay(self, psy_signal, emit) -> object:
        """Forward a psygnal signal to a Qt signal of this view: queued to the GUI thread
        when a worker thread emits, direct otherwise. Returns the disconnector."""

        def forward(*args: object) -> None:
            try:
                emit(*args)
            except RuntimeError:  # this view is gone; stop listening
                psy_signal.disconnect(forward)

        psy_signal.connect(forward)
        return lambda: psy_signal.disconnect(forward)

    def shutdown(self) -> None:
        """Stop the decoder threads and let go of the project (the window calls this
        when it closes)."""
        self.set_project(None)
        self.source.shutdown()

    # --- showing images -------------------------------------------------------------------

    @property
    def image_id(self) -> int | None:
        return self._image.id if self._image else None

    @property
    def image(self) -> ImageRecord | None:
        return self._image

    def show_image(self, image_id: int) -> None:
        project = self._require_project()
        self.interaction.reset()
        try:
            image = project.image(image_id)
        except StudioError as e:
            self._clear_image()
            self.message.emit(str(e))
            return
        had_selection = bool(self.shapes.selected)
        self._image = image
        self.shapes.clear()
        self.shapes.replace_all(project.annotations(image_ids=[image_id]))
        if had_selection:
            self.selection_changed.emit([])
        self.fit()
        self.image_shown.emit(image_id)
        # Last: a prefetched preview goes up at once and emits pixels_shown.
        self.image_layer.show(image)

    def _clear_image(self) -> None:
        self.interaction.reset()
        had_selection = bool(self.shapes.selected)
        self._image = None
        self.shapes.clear()
        self.image_layer.clear()
        self.crosshair.hide()
        if had_selection:
            self.selection_changed.emit([])

    def prefetch(self, image_ids: Iterable[int]) -> None:
        """Decode these images' previews in the background (e.g. the next and previous
        image), so that showing them is instant."""
        if self._project is None:
            return
        ids = [i for i in image_ids if i is not None and i != self.image_id]
        if ids:
            by_id = {im.id: im for im in self._project.images(ids=ids)}
            self.source.prefetch([by_id[i] for i in ids if i in by_id])

    def image_size(self) -> tuple[float, float]:
        return (float(self._image.width), float(self._image.height)) if self._image else (0, 0)

    # --- tools, classes, visibility ---------------------------------------------------------

    @property
    def tool(self) -> str:
        return self.interaction.tool

    def set_tool(self, tool: str) -> None:
        changed = tool != self.interaction.tool
        self.interaction.set_tool(tool)
        if tool == "select":
            self.crosshair.hide()
        self.set_cursor_for(None)
        if changed:
            self.tool_changed.emit(tool)

    @property
    def current_class(self) -> int | None:
        return self._current_class

    def set_current_class(self, class_id: int | None) -> None:
        self._current_class = class_id

    def set_hidden_classes(self, class_ids: Iterable[int]) -> None:
        before = set(self.shapes.selected)
        self.shapes.set_hidden(class_ids)
        if self.shapes.selected != before:
            self.selection_changed.emit(sorted(self.shapes.selected))

    def _class_for_new(self) -> int | None:
        """The class new shapes get: the current one, else the first class."""
        ids = list(self.shapes.styles)
        if self._current_class in self.shapes.styles:
            return self._current_class
        return ids[0] if ids else None

    def draft_color(self) -> QColor:
        cid = self._class_for_new()
        return self.shapes.style(cid).color if cid is not None else QColor("white")

    # --- selection ------------------------------------------------------------------------

    def selected_annotation_ids(self) -> list[int]:
        return sorted(self.shapes.selected)

    def select(self, ids: Iterable[int]) -> None:
        if self.shapes.set_selection(ids):
            self.selection_changed.emit(sorted(self.shapes.selected))

    def select_all(self) -> None:
        self.select([i for i in self.shapes.items if self.shapes.is_visible(i)])

    # --- zoom and pan ---------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole image, centred (and keep it fitted as the view resizes)."""
        w, h = self.image_size()
        vp = self.viewport().size()
        if not w or not h:
            return
        z = min((vp.width() - 2 * FIT_MARGIN) / w, (vp.height() - 2 * FIT_MARGIN) / h)
        self._set_zoom(max(z, MIN_ZOOM), None)
        self.centerOn(w / 2, h / 2)
        self._fitted = True

    def zoom_100(self) -> None:
        """One image pixel per screen pixel, keeping the view's centre."""
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (viewport pixels; default: the
        centre of the view) where it is."""
        if anchor is None:
            anchor = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        self._set_zoom(zoom, anchor)
        self._fitted = False

    def _set_zoom(self, zoom: float, anchor: QPointF | None) -> None:
        zoom = G.clamp(zoom, MIN_ZOOM, MAX_ZOOM)
        before = self.to_image(anchor) if anchor is not None else None
        old = self.zoom
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self._update_scene_rect()
        if before is not None and anchor is not None:
            after = self.to_image(anchor)
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() + round((before.x() - after.x()) * zoom))
            v.setValue(v.value() + round((before.y() - after.y()) * zoom))
        if zoom != old:
            self.zoom_changed.emit(zoom)
        self._view_timer.start()

    def _update_scene_rect(self) -> None:
        """The image plus a viewport's worth of margin on every side, so the image can be
        panned until its edge reaches the far side of the view, at any zoom."""
        w, h = self.image_size()
        mx = self.viewport().width() / self.zoom
        my = self.viewport().height() / self.zoom
        self.setSceneRect(QRectF(-mx, -my, w + 2 * mx, h + 2 * my))

    def to_image(self, viewport_pos: QPointF) -> QPointF:
        """A viewport position in image pixels, without rounding to whole pixels."""
        return self.viewportTransform().inverted()[0].map(QPointF(viewport_pos))

    def tol(self, screen_px: float) -> float:
        """A distance on screen, in image pixels."""
        return screen_px / self.zoom

    def _update_image_view(self) -> None:
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        self.image_layer.update_view(visible, self.zoom)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._view_timer.start()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()
        else:
            self._update_scene_rect()
            self._view_timer.start()

    # --- mouse ----------------------------------------------------------------------------

    def _xy(self, event: QMouseEvent | QWheelEvent) -> tuple[float, float]:
        p = self.to_image(event.position())
        return p.x(), p.y()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._pan_from is None and self._image is not None:
            self.interaction.press(*self._xy(event), button, event.modifiers())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(d.x()))
            v.setValue(v.value() - round(d.y()))
            event.accept()
            return
        if self._image is None:
            return
        x, y = self._xy(event)
        self.cursor_moved.emit(x, y)
        if self.interaction.tool != "select" and not self._space:
            w, h = self.image_size()
            self.crosshair.show_at(G.clamp(x, 0, w), G.clamp(y, 0, h), w, h)
        self.interaction.move(x, y, event.modifiers())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.set_cursor_for(None)
        elif self._image is not None:
            self.interaction.release(*self._xy(event), event.button(), event.modifiers())
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._image is not None and self._pan_from is None:
            self.interaction.double_click(*self._xy(event), event.button())
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            # 120 units (one notch) zoom by 2^(1/4), about 19 %.
            self.set_zoom(self.zoom * 2.0 ** (delta / 480.0), event.position())
        event.accept()

    def leaveEvent(self, event) -> None:
        self.crosshair.hide()
        if not self.interaction.busy:
            self.shapes.set_hover(None)
        super().leaveEvent(event)

    def set_cursor_for(self, hit: Hit | None) -> None:
        shape = Qt.CursorShape
        if self._space:
            cursor = shape.OpenHandCursor
        elif hit is None:
            cursor = shape.ArrowCursor if self.interaction.tool == "select" else shape.CrossCursor
        elif hit.kind == "vertex":
            cursor = shape.PointingHandCursor
        elif hit.kind == "handle":
            cursor = {"tl": shape.SizeFDiagCursor, "br": shape.SizeFDiagCursor,
                      "tr": shape.SizeBDiagCursor, "bl": shape.SizeBDiagCursor,
                      "l": shape.SizeHorCursor, "r": shape.SizeHorCursor}.get(
                          hit.handle, shape.SizeVerCursor)  # fmt: skip
        else:
            cursor = shape.SizeAllCursor
        if self.viewport().cursor().shape() != cursor:
            self.viewport().setCursor(cursor)

    # --- keys -----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        if key == Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.crosshair.hide()
            self.set_cursor_for(None)
        elif key == Key.Key_Escape:
            self.cancel()
        elif key in (Key.Key_Return, Key.Key_Enter):
            self.finish_polygon()
        elif key == Key.Key_Backspace:
            if not self.remove_last_vertex():
                self.delete_selected()
        elif key == Key.Key_Delete:
            self.delete_selected()
        elif key in (Key.Key_Left, Key.Key_Right, Key.Key_Up, Key.Key_Down):
            step = 10.0 if mods & Qt.KeyboardModifier.ShiftModifier else 1.0
            dx = {Key.Key_Left: -step, Key.Key_Right: step}.get(key, 0.0)  # type: ignore[call-overload]
            dy = {Key.Key_Up: -step, Key.Key_Down: step}.get(key, 0.0)  # type: ignore[call-overload]
            self.nudge(dx, dy)
        elif key == Key.Key_F and not mods:
            self.fit()
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif event.matches(QKeySequence.StandardKey.Paste):
            self.paste()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_all()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_cursor_for(None)
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False  # the key release went elsewhere
        super().focusOutEvent(event)

    def cancel(self) -> bool:
        """Esc: see `Interaction.cancel`. False when there was nothing to cancel."""
        return self.interaction.cancel()

    def finish_polygon(self) -> bool:
        return self.interaction.finish_polygon()

    def remove_last_vertex(self) -> bool:
        return self.interaction.remove_last_vertex()

    # --- following the project --------------------------------------------------------------

    def _on_annotations_changed(self, image_ids: list[int] | None) -> None:
        if self._own_edits or self._image is None:
            return
        if image_ids is None or self._image.id in image_ids:
            self._reload_shapes()

    def _on_images_changed(self, image_ids: list[int] | None) -> None:
        if self._project is None or self._image is None:
            return
        if image_ids is not None and self._image.id not in image_ids:
            return
        try:
            image = self._project.image(self._image.id)
        except StudioError:
            name = self._image.name
            self._clear_image()
            self.image_layer.show_error(None, f"{name} was removed from the project")
            return
        if (image.abs_path, image.width, image.height) != (
            self._image.abs_path, self._image.width, self._image.height
        ):  # fmt: skip
            self.source.invalidate(image.id)
            self.show_image(image.id)
        else:
            self._image = image

    def _on_classes_changed(self) -> None:
        if self._project is None:
            return
        self.shapes.set_classes(self._project.classes())
        if self._current_class is not None and self._current_class not in self.shapes.styles:
            self._current_class = None

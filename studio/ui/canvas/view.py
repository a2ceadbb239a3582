"""CanvasView: shows one image of a project with its layers, and routes the user's
gestures to the tools and the editor.

Scene coordinates are image pixels as displayed (the project's coordinates), so a box
drawn at any zoom is written in image pixels. The database is the truth: every finished
edit goes through the `Project` API at once, and the scene follows the project's
events, diffing by annotation id so only changed items are touched. What only the
canvas knows: the shape being drawn, the selection, hover, the active vertex, the zoom.

Mouse and keys: see `keys` (the window binds its own shortcuts to the public methods).
The view owns the scene, zoom and pan, and an ordered list of layers (`layers/`: image,
annotations, crosshair, and whatever is added); it routes mouse and key events to the
tools (`tools/`) and edits to the `Editor`, and follows the project through a bridge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainter, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import ImageRecord
from studio.ui.canvas import geometry as G
from studio.ui.canvas.editor import Editor
from studio.ui.canvas.keys import key_action
from studio.ui.canvas.layers import (
    BUILT_IN_LAYERS,
    AnnotationLayer,
    CrosshairLayer,
    ImageLayer,
    Layer,
)
from studio.ui.canvas.select_all import select_all_shapes
from studio.ui.canvas.tools import Hit, Interaction, Tool, cursor_for
from studio.ui.common.bridge import ProjectBridge

MIN_ZOOM, MAX_ZOOM = 0.002, 64.0
FIT_MARGIN = 8  # screen pixels around a fitted image
L = TypeVar("L")


class CanvasView(QGraphicsView):
    """The labelling canvas. Also the `CanvasContext` its tools work through (`editor`,
    `shapes`, `scene()`, `image_size()`, `tol()`, `set_cursor_for()`)."""

    cursor_moved = Signal(float, float)  # image pixels
    zoom_changed = Signal(float)  # screen pixels per image pixel
    tool_changed = Signal(str)
    selection_changed = Signal(list)  # annotation ids
    image_shown = Signal(int)  # a new image is up (its pixels may follow: pixels_shown)
    pixels_shown = Signal(int)  # the image's preview is painted from now on
    message = Signal(str)  # one line for the status bar

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge: ProjectBridge | None = None
        self._fitted = True
        self._pan_from: QPointF | None = None
        self._space = False
        self._build_scene()
        self._build_view()
        # Tiles follow zoom and pan after a short pause, not on every wheel step.
        self._view_timer = QTimer(self, singleShot=True, interval=60)
        self._view_timer.timeout.connect(self._update_layer_views)

    # --- construction ---------------------------------------------------------------------

    def _build_scene(self) -> None:
        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setScene(scene)
        self.layers: list[Layer] = []
        for make_layer in BUILT_IN_LAYERS:
            self._insert_layer(make_layer())
        self.image_layer = self._built_in(ImageLayer)
        self.shapes = self._built_in(AnnotationLayer)
        self.crosshair = self._built_in(CrosshairLayer)
        self.source = self.image_layer.source
        self.image_layer.pixels_shown.connect(self.pixels_shown)
        self.image_layer.failed.connect(lambda _id, text: self.message.emit(text))
        # Dense images are drawn without antialiasing (see layers.annotations).
        self.shapes.on_density_changed = lambda dense: self.setRenderHint(
            QPainter.RenderHint.Antialiasing, not dense
        )
        self.editor = Editor(self.shapes, self.message.emit, self.selection_changed.emit)
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

    def _built_in(self, kind: type[L]) -> L:
        return next(layer for layer in self.layers if isinstance(layer, kind))  # type: ignore[misc]

    # --- layers ---------------------------------------------------------------------------

    def add_layer(self, layer: Layer) -> None:
        """Add a layer (a plugin's, say) above those with a lower or equal `z`; it shows
        the current image at once."""
        self._insert_layer(layer)
        project, image = self.editor.project, self.editor.image
        if project is not None and image is not None:
            layer.show_image(image, project)
        self._view_timer.start()

    def _insert_layer(self, layer: Layer) -> None:
        layer.attach(self.scene())
        at = sum(1 for other in self.layers if other.z <= layer.z)
        self.layers.insert(at, layer)

    def layer(self, name: str) -> Layer:
        """The layer called `name`; KeyError if there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no canvas layer {name!r}")

    def set_layer_visible(self, name: str, visible: bool) -> None:
        """Show or hide a layer; hidden shapes cannot stay selected."""
        with self.editor.selection_follows():
            self.layer(name).set_visible(visible)

    # --- project --------------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self.editor.project

    def set_project(self, project: Project | None) -> None:
        if self._bridge is not None:
            self._bridge.disconnect_project()
            self._bridge = None
        self._clear_image()
        self.source.reset()  # ids of the last project name other files in this one
        self.editor.clipboard = []
        self.editor.project = project
        if project is None:
            return
        # Not parented to the view: should the view's C++ side go first, the bridge
        # stays valid and Qt drops its connections to the view.
        self._bridge = ProjectBridge(project.events)
        # Direct from the GUI thread (the canvas follows an undo before it returns),
        # queued from a worker thread.
        self._bridge.annotation_rows_changed.connect(self._on_annotation_rows_changed)
        self._bridge.annotations_changed.connect(self._on_annotations_changed)
        self._bridge.images_changed.connect(self._on_images_changed)
        self._bridge.classes_changed.connect(self._on_classes_changed)
        self._on_classes_changed()

    def shutdown(self) -> None:
        """Stop background decoding and let go of the project (the window calls this
        when it closes)."""
        self.set_project(None)
        for layer in self.layers:
            layer.detach()

    # --- showing images -------------------------------------------------------------------

    @property
    def image_id(self) -> int | None:
        return self.editor.image.id if self.editor.image else None

    @property
    def image(self) -> ImageRecord | None:
        return self.editor.image

    def show_image(self, image_id: int) -> None:
        project = self.editor.require_project()
        self.interaction.reset()
        try:
            image = project.image(image_id)
        except StudioError as e:
            self._clear_image()
            self.message.emit(str(e))
            return
        self.editor.image = image
        with self.editor.selection_follows():
            for layer in self.layers:
                if layer is not self.image_layer:
                    layer.show_image(image, project)
        self.fit()
        self.image_shown.emit(image_id)
        # Last: a prefetched preview goes up at once and emits pixels_shown.
        self.image_layer.show_image(image, project)

    def _clear_image(self) -> None:
        self.interaction.reset()
        self.editor.image = None
        with self.editor.selection_follows():
            for layer in self.layers:
                layer.clear()

    def prefetch(self, image_ids: Iterable[int]) -> None:
        """Decode these images' previews in the background (e.g. the next and previous
        image), so that showing them is instant."""
        project = self.editor.project
        if project is None:
            return
        ids = [i for i in image_ids if i is not None and i != self.image_id]
        if ids:
            by_id = {im.id: im for im in project.images(ids=ids)}
            self.source.prefetch([by_id[i] for i in ids if i in by_id])

    def image_size(self) -> tuple[float, float]:
        """The shown image's (width, height) in image pixels; (0, 0) when none."""
        return self.editor.image_size()

    # --- tools, classes, selection, edits -------------------------------------------------

    @property
    def tool(self) -> str:
        return self.interaction.tool

    def set_tool(self, tool: str) -> None:
        """Switch to "select", "box" or "polygon"; ValueError for anything else."""
        changed = tool != self.interaction.tool
        self.interaction.set_tool(tool)
        if tool == Tool.SELECT:
            self.crosshair.hide()
        self.set_cursor_for(None)
        if changed:
            self.tool_changed.emit(tool)

    @property
    def current_class(self) -> int | None:
        return self.editor.current_class

    def set_current_class(self, class_id: int | None) -> None:
        self.editor.current_class = class_id

    def set_hidden_classes(self, class_ids: Iterable[int]) -> None:
        with self.editor.selection_follows():
            self.shapes.set_hidden(class_ids)

    def set_shape_hidden(self, ids: Iterable[int]) -> None:
        """Hide these shapes (annotation ids; per session, not stored): not drawn, not
        hit-tested, not selectable."""
        with self.editor.selection_follows():
            self.shapes.set_hidden_shapes(ids)

    def set_shape_locked(self, ids: Iterable[int]) -> None:
        """Lock these shapes (annotation ids; per session, not stored) against edits."""
        self.shapes.set_locked(ids)

    def selected_annotation_ids(self) -> list[int]:
        return self.editor.selected_ids()

    def select(self, ids: Iterable[int]) -> None:
        self.editor.select(ids)

    select_all = select_all_shapes  # also the shapes still arriving: see its module

    def delete_selected(self) -> None:
        """Delete the active vertex if there is one, else the selected shapes."""
        self.editor.delete_selected()

    def nudge(self, dx: float, dy: float) -> None:
        """Move the selection by (dx, dy) image pixels (see `Editor.nudge`)."""
        self.editor.nudge(dx, dy)

    def assign_class(self, class_id: int) -> None:
        self.editor.assign_class(class_id)

    def copy_selection(self) -> int:
        return self.editor.copy_selection()

    def paste(self) -> list[int]:
        return self.editor.paste()

    def copy_from_previous(self, previous_image_id: int) -> list[int]:
        return self.editor.copy_from_previous(previous_image_id)

    def cancel(self) -> bool:
        """Esc: see `Interaction.cancel`. False when there was nothing to cancel."""
        return self.interaction.cancel()

    def finish_polygon(self) -> bool:
        return self.interaction.finish_polygon()

    def remove_last_vertex(self) -> bool:
        return self.interaction.remove_last_vertex()

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
            self._scroll_by((before.x() - after.x()) * zoom, (before.y() - after.y()) * zoom)
        if zoom != old:
            self.zoom_changed.emit(zoom)
        self._view_timer.start()

    def _scroll_by(self, dx: float, dy: float) -> None:
        """Move the view's content by (dx, dy) viewport pixels (positive: towards the
        image's right and bottom)."""
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(dx))
        v.setValue(v.value() + round(dy))

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

    def _update_layer_views(self) -> None:
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        for layer in self.layers:
            layer.view_changed(visible, self.zoom)

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
        elif self._pan_from is None and self.editor.image is not None:
            self.interaction.press(*self._xy(event), button, event.modifiers())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self._scroll_by(-d.x(), -d.y())
            event.accept()
            return
        if self.editor.image is None:
            return
        x, y = self._xy(event)
        self.cursor_moved.emit(x, y)
        if self.interaction.tool != Tool.SELECT and not self._space:
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
        elif self.editor.image is not None:
            self.interaction.release(*self._xy(event), event.button(), event.modifiers())
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.editor.image is not None and self._pan_from is None:
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
        """The mouse cursor for what lies under it (an open hand while Space is held)."""
        if self._space:
            cursor = Qt.CursorShape.OpenHandCursor
        else:
            cursor = cursor_for(hit, self.interaction.tool == Tool.SELECT)
        if self.viewport().cursor().shape() != cursor:
            self.viewport().setCursor(cursor)

    # --- keys -----------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.crosshair.hide()
            self.set_cursor_for(None)
        elif not key_action(self, event):
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_cursor_for(None)
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False  # the key release went elsewhere
        super().focusOutEvent(event)

    # --- following the project ------------------------------------------------------------

    def _on_images_changed(self, image_ids: list[int] | None) -> None:
        project, shown = self.editor.project, self.editor.image
        if project is None or shown is None:
            return
        if image_ids is not None and shown.id not in image_ids:
            return
        try:
            image = project.image(shown.id)
        except StudioError:
            self._clear_image()
            self.image_layer.show_error(None, f"{shown.name} was removed from the project")
            return
        file = (image.abs_path, image.width, image.height)
        if file != (shown.abs_path, shown.width, shown.height):
            self.source.invalidate(image.id)
            self.show_image(image.id)
        else:
            self.editor.image = image

    def _on_annotation_rows_changed(self, ann_ids: list[int] | None) -> None:
        self.editor.rows_changed(ann_ids)

    def _on_annotations_changed(self, image_ids: list[int] | None) -> None:
        self.editor.annotations_changed(image_ids)

    def _on_classes_changed(self) -> None:
        self.editor.reload_classes()

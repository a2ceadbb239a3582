"""The image layer: the picture under the shapes (a backdrop, the preview, and
full-resolution tiles).

The scene is in image pixels (the size the database records), so the preview pixmap is
scaled up by image size / preview size, and tiles cut from a `Level` by its reduction.
Tiles exist only for the visible region, a few per event-loop turn, so zooming into a
20000 x 20000 scan never builds a giant pixmap or stalls the window.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene

from studio.core.project import Project
from studio.core.records import ImageRecord
from studio.ui.canvas.decoding import LEVEL_PIXEL_BUDGET, Level, is_jpeg
from studio.ui.canvas.image_source import ImageSource, array_to_pixmap
from studio.ui.canvas.scene_items import Z_IMAGE, Z_TILES, MessageItem

TILE = 1024  # level pixels per tile side
TILES_PER_TURN = 4  # made per event-loop turn; the rest follow on the next turns
MAX_TILES = 48  # kept items; far ones go first
SHARP_ZOOM = 2.0  # screen px per image px from which pixels are drawn as squares


class ImageLayer(QObject):
    """The shown image's pixels, decoded off the GUI thread by its own `ImageSource`.
    A `Layer` (see layers.base); a QObject for its signals."""

    pixels_shown = Signal(int)  # the image's preview is in the scene
    failed = Signal(int, str)  # image id, "Cannot show <name>: <reason>"
    name = "image"
    z = Z_IMAGE

    def __init__(self, source: ImageSource | None = None):
        super().__init__()
        self.scene: QGraphicsScene | None = None
        self.source = source if source is not None else ImageSource(parent=self)
        self._visible = True
        self.image: ImageRecord | None = None
        self.error: str | None = None
        self.level: Level | None = None
        self._requested: int | None = None
        self._no_levels = False  # a level failed to decode: the preview is all there is
        self._jpeg: bool | None = None
        self._zoom = 1.0
        self._in_sight = QRectF()  # scene rect in the viewport
        self._tiles: dict[tuple[int, int], QGraphicsPixmapItem] = {}
        self.backdrop = QGraphicsRectItem()
        self.backdrop.setPen(QPen(Qt.PenStyle.NoPen))
        self.backdrop.setBrush(QBrush(QColor(48, 48, 48)))
        self.backdrop.setZValue(Z_IMAGE - 1)
        self.backdrop.setVisible(False)
        self.preview = QGraphicsPixmapItem()
        self.preview.setZValue(Z_IMAGE)
        self.preview.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.message = MessageItem()
        self._more = QTimer(self, singleShot=True, interval=0)
        self._more.timeout.connect(self._update_tiles)
        self.source.preview_ready.connect(self._on_preview)
        self.source.preview_failed.connect(self._on_preview_failed)
        self.source.level_ready.connect(self._on_level)
        self.source.level_failed.connect(self._on_level_failed)

    # --- the Layer hooks --------------------------------------------------------------

    def attach(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        for item in (self.backdrop, self.preview, self.message):
            scene.addItem(item)

    @property
    def visible(self) -> bool:
        return self._visible

    def set_visible(self, visible: bool) -> None:
        self._visible = visible
        self.backdrop.setVisible(visible and self.image is not None)
        self.preview.setVisible(visible)
        self.message.setVisible(visible and self.error is not None)
        for item in self._tiles.values():
            item.setVisible(visible)

    def show_image(self, image: ImageRecord, project: Project) -> None:
        self.show(image)

    def detach(self) -> None:
        """Stop the decoders (the canvas is closing)."""
        self.source.shutdown()

    @property
    def _scene(self) -> QGraphicsScene:
        assert self.scene is not None, "attach the layer to a scene first"
        return self.scene

    @property
    def has_pixels(self) -> bool:
        return not self.preview.pixmap().isNull()

    @property
    def tile_count(self) -> int:
        return len(self._tiles)

    def show(self, image: ImageRecord) -> None:
        self.clear()
        self.image = image
        self.backdrop.setRect(QRectF(0, 0, image.width, image.height))
        self.backdrop.setVisible(self._visible)
        pix = self.source.cached_preview(image)
        error = self.source.cached_error(image)
        if pix is not None:
            self._set_preview(pix)
        elif error is not None:
            self._show_error(error)
        else:
            self.source.request_preview(image)

    def show_error(self, image: ImageRecord | None, text: str) -> None:
        """A message in place of the picture (also used when the image record is gone)."""
        self.error = text
        centre = QPointF(image.width / 2, image.height / 2) if image else QPointF(0, 0)
        self.message.show_text(text, centre)
        self.message.setVisible(self._visible)

    def clear(self) -> None:
        self.image = None
        self.error = None
        self._jpeg = None
        self.preview.setPixmap(QPixmap())
        self.backdrop.setVisible(False)
        self.message.setVisible(False)
        self._drop_level()

    def _drop_level(self) -> None:
        self.source.cancel_levels()
        self.level = None
        self._requested = None
        self._no_levels = False
        for item in self._tiles.values():
            self._scene.removeItem(item)
        self._tiles.clear()

    # --- zoom and pan --------------------------------------------------------------------

    def view_changed(self, visible: QRectF, zoom: float) -> None:
        """Called (debounced) after zoom, pan and resize: ask for a finer level when the
        preview's pixels would be magnified, and make the tiles now in sight."""
        self._zoom, self._in_sight = zoom, visible
        self._set_modes()
        im = self.image
        if im is None or not self.has_pixels or self._no_levels:
            return
        preview_scale = self.preview.pixmap().width() / im.width
        if zoom <= preview_scale * 1.25:
            return  # the preview is sharp enough; tiles already made can stay
        want = self._reduce_for(zoom)
        if (self.level is None or self.level.reduce > want) and self._requested != want:
            if 1.0 / want > preview_scale * 1.25:
                self._requested = want
                self.source.request_level(im, want)
        self._update_tiles()

    def _reduce_for(self, zoom: float) -> int:
        """The coarsest level that still has a pixel per screen pixel (JPEGs decode
        cheaply at 1/2, 1/4, 1/8; other formats only at full size), within the budget."""
        im = self.image
        assert im is not None
        if self._jpeg is None:
            self._jpeg = is_jpeg(im.abs_path)
        r = 1
        while self._jpeg and r < 8 and 1.0 / (2 * r) >= zoom:
            r *= 2
        while (im.width / r) * (im.height / r) > LEVEL_PIXEL_BUDGET:
            r *= 2
        return r

    def _set_modes(self) -> None:
        im = self.image
        if im is None:
            return
        pw = self.preview.pixmap().width()
        sharp = pw and self._zoom * im.width / pw >= SHARP_ZOOM
        mode = Qt.TransformationMode
        self.preview.setTransformationMode(
            mode.FastTransformation if sharp else mode.SmoothTransformation
        )
        fx = im.width / self.level.width if self.level else 1.0
        tile_mode = (
            mode.FastTransformation if self._zoom * fx >= SHARP_ZOOM else mode.SmoothTransformation
        )
        for item in self._tiles.values():
            item.setTransformationMode(tile_mode)

    def _update_tiles(self) -> None:
        lv, im = self.level, self.image
        if lv is None or im is None or self._in_sight.isEmpty():
            return
        fx, fy = im.width / lv.width, im.height / lv.height
        v = self._in_sight
        tx0 = max(0, int(v.left() / fx) // TILE)
        ty0 = max(0, int(v.top() / fy) // TILE)
        tx1 = min(math.ceil(lv.width / TILE) - 1, int(v.right() / fx) // TILE)
        ty1 = min(math.ceil(lv.height / TILE) - 1, int(v.bottom() / fy) // TILE)
        wanted = [(tx, ty) for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)]
        missing = [k for k in wanted if k not in self._tiles]
        for key in missing[:TILES_PER_TURN]:
            self._add_tile(key, lv, fx, fy)
        if len(missing) > TILES_PER_TURN:
            self._more.start()
        if len(self._tiles) > MAX_TILES:
            keep = set(wanted)
            for key in [k for k in self._tiles if k not in keep][: len(self._tiles) - MAX_TILES]:
                self._scene.removeItem(self._tiles.pop(key))
        self._set_modes()

    def _add_tile(self, key: tuple[int, int], lv: Level, fx: float, fy: float) -> None:
        x0, y0 = key[0] * TILE, key[1] * TILE
        x1, y1 = min(x0 + TILE, lv.width), min(y0 + TILE, lv.height)
        item = QGraphicsPixmapItem(array_to_pixmap(lv.rgb(x0, y0, x1, y1)))
        item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        item.setPos(x0 * fx, y0 * fy)
        item.setTransform(QTransform.fromScale(fx, fy))
        item.setZValue(Z_TILES)
        item.setVisible(self._visible)
        self._scene.addItem(item)
        self._tiles[key] = item

    # --- results from the decoders -------------------------------------------------------

    def _on_preview(self, image_id: int, pix: QPixmap) -> None:
        if self.image is not None and image_id == self.image.id and not self.has_pixels:
            self._set_preview(pix)

    def _set_preview(self, pix: QPixmap) -> None:
        im = self.image
        assert im is not None
        self.preview.setPixmap(pix)
        self.preview.setTransform(
            QTransform.fromScale(im.width / pix.width(), im.height / pix.height())
        )
        self._set_modes()
        self.pixels_shown.emit(im.id)
        if not self._in_sight.isEmpty():
            self.view_changed(self._in_sight, self._zoom)

    def _on_preview_failed(self, image_id: int, reason: str) -> None:
        if self.image is not None and image_id == self.image.id:
            self._show_error(reason)

    def _show_error(self, reason: str) -> None:
        im = self.image
        assert im is not None
        text = f"Cannot show {im.name}: {reason}"
        self.show_error(im, text)
        self.failed.emit(im.id, text)

    def _on_level(self, level: Level) -> None:
        if self.image is None or level.image_id != self.image.id:
            return
        for item in self._tiles.values():
            self._scene.removeItem(item)
        self._tiles.clear()
        self.level = level
        self._requested = None
        self._update_tiles()

    def _on_level_failed(self, image_id: int, reason: str) -> None:
        # The preview stays; full resolution is a bonus, not worth a dialog, nor a retry
        # on every zoom step.
        if self.image is not None and image_id == self.image.id:
            self._no_levels = True

"""The plain shapes of the annotation layer, drawn from one cached picture.

Stroking 3,000 polygon outlines costs ~40 ms per frame in Qt's raster engine, whether
as 3,000 items or as one path; a pan or zoom frame must take under 16 ms. So a shape in
its plain style (neither hovered nor selected) does not paint itself: its item keeps
`ItemHasNoContents` (it still exists for hit tests, visibility and its pen and brush),
and this one item draws all of them into an image in viewport pixels, then paints by
blitting that image:

- a pan moves the picture (it covers the viewport plus half a viewport on each side);
- an edit, a hover or a selection redraws only the scene rectangles that changed;
- a zoom step of a dense picture shows the last picture scaled, and the sharp one is
  drawn when the view settles (`view_settled`, the view's debounced `view_changed`):
  over several event-loop turns (`SharpPicture`), each under `TURN_SECONDS`, while the
  scaled one stays on screen; it replaces it when complete, and a zoom, a redraw of
  everything or another image meanwhile drops it;
- a change of every shape's look (fill opacity, a class hidden or shown, a colour) is
  drawn the same way (`redraw`): of many shapes over turns while the last picture shows,
  of few at the next paint.

A picture with no shape in it is a 1-pixel stand-in, and the last picture let go of is
kept and cleared for the next of its size (`_spare`): allocating ~17 MB costs more than
drawing a batch of shapes.

Shapes go into the picture exactly as their items would paint them (same pen, brush,
order and the view's render hints), at an integral pixel offset, so the pixels equal
those of items painting themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, QSizeF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from PySide6.QtWidgets import (
    QAbstractGraphicsShapeItem,
    QGraphicsItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.ui.canvas.scene_items import Z_SHAPES

CACHE_MARGIN = 0.5  # of the viewport's size, drawn beyond each side so pans only blit
MAX_CACHE_PIXELS = 24_000_000  # device pixels (96 MB); past it only the viewport is drawn
PEN_MARGIN = 4.0  # device px beyond an item's bounds: a 3 px cosmetic pen, antialiased
SCALE_WHILE_ZOOMING = 400  # plain shapes from which a zoom frame scales the last picture
MAX_DIRTY = 64  # rectangles to redraw; past this the whole picture is redrawn
# Drawing a sharp picture after a zoom stops after the batch that passes this (seconds
# of one event-loop turn), so input and frames get a turn at least every ~16 ms.
TURN_SECONDS = 0.008
BATCH = 32  # shapes drawn between two looks at the clock
# Shapes drawn on top of the picture (an image opening) show at most this often
# (milliseconds): a repaint of the viewport costs ~5 ms, a batch of shapes ~1.5 ms.
SHOW_ON_TOP_MS = 50

PlainItems = Callable[[QRectF], list[QAbstractGraphicsShapeItem]]


def same_scale(a: QTransform, b: QTransform) -> bool:
    return (a.m11(), a.m12(), a.m21(), a.m22()) == (b.m11(), b.m12(), b.m21(), b.m22())


def is_axis_aligned(t: QTransform) -> bool:
    kind = QTransform.TransformationType
    return t.type() in (kind.TxNone, kind.TxTranslate, kind.TxScale)


@dataclass
class SharpPicture:
    """A picture being drawn a batch per event-loop turn (after a zoom settles). Its
    transform and origin are fixed when it starts; `items` are read in its second turn;
    `dirty` are the scene rects that changed since it started (redrawn once it shows)."""

    xf: QTransform  # scene -> viewport pixels it is drawn for
    rect: QRect  # its extent in viewport pixels (logical)
    dpr: float
    hints: QPainter.RenderHint
    image: QImage | None = None
    items: list[QAbstractGraphicsShapeItem] | None = None
    done: int = 0  # items drawn so far
    dirty: list[QRectF] = field(default_factory=list)

    def transform(self) -> QTransform:
        """Scene -> picture pixels (logical)."""
        return self.xf * QTransform.fromTranslate(-self.rect.x(), -self.rect.y())


class ShapeRaster(QGraphicsItem):
    """Draws the plain shapes that `plain_in(scene_rect)` returns (bottom first) from a
    picture in viewport pixels. Scene coordinates are image pixels. `full_renders`,
    `partial_renders`, `shapes_drawn`, `sharp_turns` (event-loop turns spent on sharp
    pictures) and `pictures_made` (pictures allocated, not the spare used again) count
    the work done (tests read them)."""

    def __init__(self, plain_in: PlainItems):
        super().__init__()
        self.setZValue(Z_SHAPES)
        self._plain_in = plain_in
        self._bounds = QRectF()
        self._image: QImage | None = None
        self._xf = QTransform()  # scene -> viewport pixels when the picture was drawn
        self._origin = QPointF()  # the picture's top-left in viewport pixels then
        self._size = QSizeF()  # the picture's extent in viewport pixels (logical)
        # The picture holds no shape and is a 1-pixel stand-in: a picture of ~17 MB
        # takes ~5-10 ms to allocate and clear, for nothing (all hidden, an image opening).
        self._blank = False
        # The last picture let go of, cleared and used again for the next of its size:
        # a new one costs ~10 ms of page faults under load, clearing one ~2 ms.
        self._spare: QImage | None = None
        self._dpr = 1.0
        self._count = 0  # shapes in the last full picture
        self._dirty: list[QRectF] = []  # scene rects to redraw
        self._option = QStyleOptionGraphicsItem()
        self._scaled = False  # the last frame showed the picture scaled (a zoom step)
        self._hints = QPainter.RenderHint(0)  # the view's, when the picture was drawn
        self._sharp: SharpPicture | None = None  # being drawn, not shown yet
        self._redraw_due = False  # the next sharp picture is due at the same scale too
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._sharp_turn)
        self._on_top = QTimer()  # shows shapes drawn on top (`draw_on_top`)
        self._on_top.setSingleShot(True)
        self._on_top.setInterval(SHOW_ON_TOP_MS)
        self._on_top.timeout.connect(self.update)
        self.full_renders = 0
        self.partial_renders = 0
        self.shapes_drawn = 0
        self.sharp_turns = 0
        self.pictures_made = 0

    # --- what the layer tells it ---------------------------------------------------------

    def set_bounds(self, rect: QRectF) -> None:
        """Where shapes can be (scene rect); the item paints nowhere else."""
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = QRectF(rect)
        self.invalidate()

    def invalidate(self) -> None:
        """Draw the whole picture again at the next paint."""
        self._retire(self._image)
        self._image = None
        self._dirty.clear()
        self._drop_sharp()
        self.update()

    @property
    def sharpening(self) -> bool:
        """A sharp picture is due or being drawn between event-loop turns."""
        return self._sharp is not None or self._timer.isActive()

    def mark_dirty(self, rect: QRectF) -> None:
        """The shapes in `rect` (scene) changed: redraw that part at the next paint."""
        if self._blank:
            self.invalidate()  # a shape to draw: a real picture
            return
        if self._image is None or rect.isEmpty():
            self.update()
            return
        sharp = self._sharp
        if len(self._dirty) >= MAX_DIRTY or (sharp is not None and len(sharp.dirty) >= MAX_DIRTY):
            self.invalidate()
            return
        self._dirty.append(QRectF(rect))
        if sharp is not None:  # it may have drawn the shape as it was: redraw it there
            sharp.dirty.append(QRectF(rect))
        m = PEN_MARGIN / max(abs(self._xf.m11()), 1e-9)
        self.update(rect.adjusted(-m, -m, m, m))

    def mark_item(self, item: QGraphicsItem) -> None:
        """`item` changes (or goes): redraw where it is now."""
        if self._image is not None:  # else the whole picture is drawn anyway
            self.mark_dirty(item.sceneBoundingRect())

    def draw_on_top(self, items: list[QGraphicsItem]) -> None:
        """New plain items, stacked above every plain shape already drawn: paint them
        onto the picture as it stands (what lies under them is unchanged), which costs
        only their own strokes, where a redraw of their places would repaint everything
        there again. They show within `SHOW_ON_TOP_MS` (with those drawn meanwhile), not
        at once: a repaint for each batch would take as long as the batch."""
        if self._image is None or not items:
            return  # the next full picture draws them
        if self._blank:
            self.invalidate()  # a real picture, with them, at the next paint
            return
        if self._sharp is not None and self._sharp.items is not None:
            self._sharp.items.extend(items)  # on top there as well
        painter = QPainter(self._image)
        painter.setRenderHints(self._hints)
        painter.setTransform(self._picture_transform())
        for item in items:
            item.paint(painter, self._option, None)
        painter.end()
        self.shapes_drawn += len(items)
        self._count += len(items)
        if not self._on_top.isActive():
            self._on_top.start()

    def redraw(self, shapes: int) -> None:
        """Every plain shape may look different now (fill opacity, colours, which show):
        draw a new picture of the `shapes` plain shapes (about) it will hold. Of few, at
        the next paint; of many, like the sharp picture after a zoom: over the next
        event-loop turns, each under `TURN_SECONDS`, while the current one shows."""
        if self._image is None or shapes < SCALE_WHILE_ZOOMING:
            self.invalidate()
            return
        self._drop_sharp()
        self._redraw_due = True
        self._timer.start()

    def view_settled(self) -> None:
        """The view stopped zooming: replace a scaled picture by a sharp one, drawn over
        the next event-loop turns (the scaled one shows meanwhile)."""
        if self._image is not None and self._scaled and self._sharp is None:
            self._timer.start()

    # --- QGraphicsItem ---------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        xf = painter.worldTransform()
        if widget is None or not is_axis_aligned(xf):  # printing, rendering elsewhere
            self._draw_shapes(painter, self._bounds)
            return
        if self._sharp is not None and not same_scale(xf, self._sharp.xf):
            self._drop_sharp()  # zoomed again: the view settles again later
        self._scaled = False
        if self._image is not None and widget.devicePixelRatioF() == self._dpr:
            if same_scale(xf, self._xf):
                shift = QPointF(xf.dx() - self._xf.dx(), xf.dy() - self._xf.dy())
                if self._covers(shift, self._needed(xf, widget)):
                    self._redraw_dirty(painter.renderHints())
                    self._blit(painter, shift)
                    return
            elif self._count >= SCALE_WHILE_ZOOMING:
                self._scaled = True
                self._blit_scaled(painter, xf)
                return
        self._render(xf, widget, painter.renderHints())
        self._blit(painter, QPointF())

    # --- the picture -----------------------------------------------------------------------

    def _needed(self, xf: QTransform, widget: QWidget) -> QRectF:
        """Viewport pixels where shapes can show now."""
        return xf.mapRect(self._bounds).intersected(QRectF(widget.rect()))

    def _covers(self, shift: QPointF, needed: QRectF) -> bool:
        """Whether the picture, moved by `shift` (viewport px), covers `needed`. A shift
        by a fraction of a pixel would blur it: no."""
        if abs(shift.x() - round(shift.x())) > 1e-6 or abs(shift.y() - round(shift.y())) > 1e-6:
            return False
        have = QRectF(self._origin + shift, self._size)
        return needed.isEmpty() or have.contains(needed)

    def _picture_rect(self, xf: QTransform, view: QRectF, dpr: float) -> QRect:
        """Viewport pixels a new picture covers: the viewport and a margin around it,
        where shapes can be."""
        mx, my = view.width() * CACHE_MARGIN, view.height() * CACHE_MARGIN
        area = view.adjusted(-mx, -my, mx, my).intersected(xf.mapRect(self._bounds))
        if area.width() * area.height() * dpr * dpr > MAX_CACHE_PIXELS:
            area = view.intersected(xf.mapRect(self._bounds))
        rect = area.toAlignedRect()
        return QRect(0, 0, 1, 1) if rect.isEmpty() else rect

    def _render(self, xf: QTransform, widget: QWidget, hints: QPainter.RenderHint) -> None:
        """Draw every plain shape around the viewport into a new picture."""
        self._drop_sharp()  # this one is up to date
        dpr = widget.devicePixelRatioF()
        rect = self._picture_rect(xf, QRectF(widget.rect()), dpr)
        items = self._plain_in(xf.inverted()[0].mapRect(QRectF(rect)))
        self._blank = not items
        self._retire(self._image)
        image = self._new_picture(QRect(rect.topLeft(), QSize(1, 1)) if self._blank else rect, dpr)
        self._image, self._dpr, self._dirty, self._hints = image, dpr, [], hints
        self._origin, self._size = QPointF(rect.topLeft()), QSizeF(rect.size())
        self._xf = QTransform(xf)
        painter = QPainter(image)
        painter.setRenderHints(hints)
        # An integral offset: each shape lands on the pixels it would paint itself.
        painter.setTransform(self._picture_transform())
        for item in items:
            item.paint(painter, self._option, None)
        painter.end()
        self.shapes_drawn += len(items)
        self._count = len(items)
        self.full_renders += 1

    def _picture_transform(self) -> QTransform:
        """Scene -> picture pixels (logical)."""
        return self._xf * QTransform.fromTranslate(-self._origin.x(), -self._origin.y())

    def _redraw_dirty(self, hints: QPainter.RenderHint) -> None:
        """Clear and redraw the picture where shapes changed, clipped to those places."""
        if not self._dirty or self._image is None:
            return
        to_pic = self._picture_transform()
        from_pic = to_pic.inverted()[0]
        painter = QPainter(self._image)
        painter.setRenderHints(hints)
        for rect in self._dirty:
            pic = to_pic.mapRect(rect).adjusted(-PEN_MARGIN, -PEN_MARGIN, PEN_MARGIN, PEN_MARGIN)
            pic = QRectF(pic.toAlignedRect())
            painter.resetTransform()
            painter.setClipRect(pic)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            painter.fillRect(pic, QColor(0, 0, 0, 0))
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
            painter.setTransform(to_pic)
            m = PEN_MARGIN * from_pic.m11()
            self._draw_shapes(painter, from_pic.mapRect(pic).adjusted(-m, -m, m, m))
            self.partial_renders += 1
        painter.end()
        self._dirty = []

    # --- the sharp picture after a zoom, a batch per event-loop turn ------------------------

    def _drop_sharp(self) -> None:
        if self._sharp is not None:
            self._retire(self._sharp.image)
        self._sharp = None
        self._redraw_due = False
        self._timer.stop()

    def _sharp_turn(self) -> None:
        """One event-loop turn on the sharp picture: in the first, plan it (a blank
        picture of ~17 MB can take ~9 ms to allocate); in the next, find its shapes
        (~4 ms for 3,000); in these, draw them in batches until `TURN_SECONDS` have
        passed; once all are drawn, show it."""
        started = time.perf_counter()
        self.sharp_turns += 1
        sharp = self._sharp
        if sharp is None:
            self._sharp = self._plan_sharp()
            if self._sharp is not None:
                self._timer.start()
            return
        if sharp.items is None:
            sharp.items = self._plain_in(sharp.xf.inverted()[0].mapRect(QRectF(sharp.rect)))
        assert sharp.image is not None
        painter = QPainter(sharp.image)
        painter.setRenderHints(sharp.hints)
        painter.setTransform(sharp.transform())
        items, done = sharp.items, sharp.done
        while done < len(items):
            for item in items[done : done + BATCH]:
                item.paint(painter, self._option, None)
            self.shapes_drawn += min(BATCH, len(items) - done)
            done += BATCH
            if time.perf_counter() - started > TURN_SECONDS:
                break
        painter.end()
        sharp.done = min(done, len(items))
        if sharp.done < len(items):
            self._timer.start()
            return
        self._show_sharp(sharp)

    def _plan_sharp(self) -> SharpPicture | None:
        """A sharp picture for the view as it is now, with its shapes (bottom first);
        None when there is nothing to sharpen (a redraw that cannot be planned is left
        to the next paint)."""
        scene = self.scene()
        views = [v for v in scene.views() if v.isVisible()] if scene is not None else []
        if not views or self._image is None:
            if self._redraw_due:  # no view to plan for: whole at the next paint
                self.invalidate()
            return None
        view = views[0]
        xf = self.deviceTransform(view.viewportTransform())
        due, self._redraw_due = self._redraw_due, False
        if not is_axis_aligned(xf) or (same_scale(xf, self._xf) and not due):
            if due:
                self.invalidate()
            return None
        widget = view.viewport()
        dpr = widget.devicePixelRatioF()
        rect = self._picture_rect(xf, QRectF(widget.rect()), dpr)
        return SharpPicture(xf, rect, dpr, view.renderHints(), self._new_picture(rect, dpr))

    def _show_sharp(self, sharp: SharpPicture) -> None:
        """The sharp picture is complete: it replaces the scaled one (what changed while
        it was drawn is redrawn at the next paint)."""
        assert sharp.items is not None
        self._retire(self._image)
        self._image, self._dpr, self._hints = sharp.image, sharp.dpr, sharp.hints
        self._xf, self._origin = QTransform(sharp.xf), QPointF(sharp.rect.topLeft())
        self._size, self._blank = QSizeF(sharp.rect.size()), False
        self._dirty, self._count = sharp.dirty, len(sharp.items)
        self._sharp = None
        self.full_renders += 1
        self.update()

    def _retire(self, image: QImage | None) -> None:
        """`image` is no longer shown or drawn: keep it as the spare (a stand-in of one
        pixel is not worth keeping)."""
        if image is not None and image.width() * image.height() > 1:
            self._spare = image

    def _new_picture(self, rect: QRect, dpr: float) -> QImage:
        """A transparent picture of `rect` (logical pixels): the spare if it fits."""
        spare = self._spare
        if spare is not None and spare.size() == picture_size(rect, dpr):
            self._spare = None
            spare.setDevicePixelRatio(dpr)
            spare.fill(Qt.GlobalColor.transparent)
            return spare
        image = blank_picture(rect, dpr)
        self.pictures_made += image.width() * image.height() > 1
        return image

    def _draw_shapes(self, painter: QPainter, scene_rect: QRectF) -> int:
        items = self._plain_in(scene_rect)
        for item in items:
            item.paint(painter, self._option, None)
        self.shapes_drawn += len(items)
        return len(items)

    def _blit(self, painter: QPainter, shift: QPointF) -> None:
        assert self._image is not None
        painter.save()
        painter.resetTransform()
        painter.drawImage(self._origin + shift, self._image)
        painter.restore()

    def _blit_scaled(self, painter: QPainter, xf: QTransform) -> None:
        """A zoom frame: the last picture, scaled to the new zoom (sharp once settled)."""
        assert self._image is not None
        painter.save()
        painter.setTransform(self._picture_transform().inverted()[0] * xf)
        painter.drawImage(QPointF(0, 0), self._image)
        painter.restore()


def picture_size(rect: QRect, dpr: float) -> QSize:
    """Device pixels of a picture of `rect` (logical pixels) at device pixel ratio `dpr`."""
    return QSize(max(1, math.ceil(rect.width() * dpr)), max(1, math.ceil(rect.height() * dpr)))


def blank_picture(rect: QRect, dpr: float) -> QImage:
    """A transparent picture of `rect` (logical pixels) at device pixel ratio `dpr`."""
    image = QImage(picture_size(rect, dpr), QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(dpr)
    image.fill(Qt.GlobalColor.transparent)
    return image

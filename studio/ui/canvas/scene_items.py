"""The canvas's graphics items: cheap on purpose, since a canvas may hold thousands.

Shapes are plain rect and path items with cosmetic pens (a line stays 2 screen pixels
wide at any zoom), translucent fills and no effects. Handles exist only for selected
shapes and ignore the view's transform, so they stay 8 screen pixels at any zoom.
Scene coordinates are image pixels.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPen,
    QTransform,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core.kinds import ShapeKind
from studio.core.records import AnnotationRecord, Polygons

Z_IMAGE, Z_TILES, Z_SHAPES, Z_SELECTED, Z_DRAFT = 0.0, 1.0, 10.0, 20.0, 30.0
Z_HANDLES, Z_OVERLAY, Z_MESSAGE = 40.0, 50.0, 60.0
HANDLE_SIZE = 8.0  # screen pixels
FALLBACK_COLOR = "#ffe119"
DEFAULT_FILL_ALPHA = 40  # 0-255: a tint that leaves the pixels under a shape readable
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)
Look = tuple[QPen, QBrush, float]  # a shape item's pen, brush and z-value
# Scene units around a polygon's points in its bounds: half the widest pen (3), as Qt's
# own bounds of a 3-pixel pen at 1:1.
PEN_BOUNDS_MARGIN = 1.5


class ClassStyle:
    """Pens and brushes of one class colour, made once and shared by its items."""

    def __init__(self, color: str):
        c = QColor(color)
        if not c.isValid():
            c = QColor(FALLBACK_COLOR)
        self.color = c
        self.pen = cosmetic_pen(c, 2.0)
        self.hover_pen = cosmetic_pen(c.lighter(140), 3.0)
        self.selected_pen = cosmetic_pen(c.lighter(120), 3.0)
        self.brush = tinted_brush(c, DEFAULT_FILL_ALPHA)
        self.hover_brush = tinted_brush(c, 90)
        self.selected_brush = tinted_brush(c, 70)
        self._fills: dict[int, ClassStyle] = {}

    def with_fill(self, alpha: int | None) -> ClassStyle:
        """This style with plain shapes filled at `alpha` (0-255; 0: outlines only) and
        hovered or selected ones at least that; None: this style. Made once per alpha."""
        if alpha is None or alpha == self.brush.color().alpha():
            return self
        style = self._fills.get(alpha)
        if style is None:
            style = self._fills[alpha] = ClassStyle(self.color.name())
            # The same pens: items restyled to another fill keep theirs (see ShapeLook).
            style.pen, style.hover_pen = self.pen, self.hover_pen
            style.selected_pen = self.selected_pen
            style.brush = tinted_brush(self.color, alpha)
            style.hover_brush = tinted_brush(self.color, max(alpha, 90))
            style.selected_brush = tinted_brush(self.color, max(alpha, 70))
        return style


def cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen `width` screen pixels wide at any zoom."""
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def tinted_brush(color: QColor, alpha: int) -> QBrush:
    """A fill of `color` at opacity `alpha` (0-255)."""
    c = QColor(color)
    c.setAlpha(alpha)
    return QBrush(c)


def polygons_path(polys: Polygons) -> QPainterPath:
    """A closed subpath per part ([x0, y0, x1, y1, ...], image pixels)."""
    path = QPainterPath()
    line = path.lineTo  # bound once: 3,000 polygons of 12 points are 36,000 calls
    for part in polys:
        path.moveTo(part[0], part[1])
        for x, y in zip(part[2::2], part[3::2], strict=True):
            line(x, y)
        path.closeSubpath()
    return path


def shape_look(style: ClassStyle, hover: bool, selected: bool, dense: bool) -> Look:
    """Pen, brush and stacking of a shape. `dense`: the image has so many shapes that
    filling them all would cost more than it shows; only the hovered and selected ones
    are filled then."""
    if selected:
        return style.selected_pen, style.selected_brush, Z_SELECTED
    if hover:
        return style.hover_pen, style.hover_brush, Z_SHAPES + 1
    return style.pen, NO_BRUSH if dense else style.brush, Z_SHAPES


class ShapeLook:
    """What shape items share: their look (pen, brush, z) set only when it changes.
    Styles hand out shared pen and brush objects, so an identity test is enough; a
    restyle of 3,000 items that changes nothing (fill opacity while only outlines are
    drawn) then costs no Qt call, where setting a pen re-indexes the item."""

    _look: Look | None = None

    def apply_style(self, style: ClassStyle, hover: bool, selected: bool, dense: bool) -> bool:
        """Give the item the look of its state; True if it changed."""
        look = shape_look(style, hover, selected, dense)
        old = self._look
        if old is not None and all(a is b for a, b in zip(old, look, strict=True)):
            return False
        self._look = look
        pen, brush, z = look
        self.setPen(pen)  # type: ignore[attr-defined]
        self.setBrush(brush)  # type: ignore[attr-defined]
        self.setZValue(z)  # type: ignore[attr-defined]
        return True


class BoxItem(ShapeLook, QGraphicsRectItem):
    """A box (or a mask, shown by its box) of one annotation."""

    def __init__(self, record: AnnotationRecord):
        super().__init__()
        self.ann_id = record.id
        self.set_record(record)

    def set_record(self, record: AnnotationRecord) -> None:
        self.record = record
        x, y, w, h = record.bbox
        self.setRect(QRectF(x, y, w, h))


class PolygonItem(ShapeLook, QGraphicsPathItem):
    """A polygon (all its parts) of one annotation."""

    def __init__(self, record: AnnotationRecord):
        super().__init__()
        self.ann_id = record.id
        self._bounds = QRectF()
        self.set_record(record)

    def set_record(self, record: AnnotationRecord) -> None:
        self.record = record
        path = polygons_path(record.polygons or [])
        self.prepareGeometryChange()  # the scene forgets the old bounds...
        m = PEN_BOUNDS_MARGIN
        self._bounds = path.controlPointRect().adjusted(-m, -m, m, m)
        self.setPath(path)  # ...and repaints within the new ones

    def boundingRect(self) -> QRectF:
        # Qt's own strokes the path with the pen (~13 us a polygon): 40 ms of opening an
        # image with 3,000 polygons went there. Cosmetic pens make a scene-unit stroke
        # width meaningless anyway; the view pads what it repaints by a few pixels.
        return self._bounds


ShapeItem = BoxItem | PolygonItem


def shape_item_type(record: AnnotationRecord) -> type[BoxItem] | type[PolygonItem]:
    """Polygons as paths; boxes (and masks, shown by their box) as rects."""
    return PolygonItem if record.kind == ShapeKind.POLYGON and record.polygons else BoxItem


def make_shape_item(record: AnnotationRecord) -> BoxItem | PolygonItem:
    return shape_item_type(record)(record)


class HandleItem(QGraphicsRectItem):
    """A vertex or box handle: a small square, constant size on screen."""

    def __init__(self, x: float, y: float, color: QColor, active: bool = False):
        s = HANDLE_SIZE
        super().__init__(-s / 2, -s / 2, s, s)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setPos(x, y)
        self.setZValue(Z_HANDLES)
        self.set_active(color, active)

    def set_active(self, color: QColor, active: bool) -> None:
        """The active vertex (the one Delete removes) is filled with the class colour."""
        self.setPen(QPen(QColor("black") if active else color, 1.5))
        self.setBrush(QBrush(color if active else QColor(255, 255, 255, 230)))
        s = HANDLE_SIZE * (1.5 if active else 1.0)
        self.setRect(-s / 2, -s / 2, s, s)


class TagItem(QGraphicsItem):
    """A class name on a coloured tab, drawn at the hovered or selected shape's corner;
    one item for the whole canvas (text on every shape would swamp a dense image)."""

    def __init__(self):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(Z_OVERLAY)
        self.text = ""
        self.color = QColor(FALLBACK_COLOR)
        self.font = QFont()
        self.font.setPointSizeF(9.0)
        self._rect = QRectF()
        self.setVisible(False)

    def show_tag(self, text: str, color: QColor, pos: QPointF) -> None:
        self.prepareGeometryChange()
        self.text, self.color = text, color
        fm = QFontMetricsF(self.font)
        self._rect = QRectF(0, -fm.height() - 4, fm.horizontalAdvance(text) + 8, fm.height() + 4)
        self.setPos(pos)
        self.setVisible(True)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        painter.fillRect(self._rect, self.color)
        dark = self.color.lightnessF() > 0.6
        painter.setPen(QColor("black") if dark else QColor("white"))
        painter.setFont(self.font)
        painter.drawText(self._rect.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignLeft, self.text)


class MessageItem(QGraphicsSimpleTextItem):
    """A readable line of text over the image (e.g. why it cannot be shown)."""

    def __init__(self):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(Z_MESSAGE)
        font = QFont()
        font.setPointSizeF(12.0)
        self.setFont(font)
        self.setBrush(QBrush(QColor("white")))
        self.setPen(QPen(QColor(0, 0, 0, 160), 0.6))
        self.setVisible(False)

    def show_text(self, text: str, centre: QPointF) -> None:
        self.setText(text)
        r = self.boundingRect()
        # Centred on the image; the item ignores zoom, so the offset is in screen pixels.
        self.setPos(centre)
        self.setTransform(QTransform.fromTranslate(-r.width() / 2, -r.height() / 2))
        self.setVisible(True)

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
    QGraphicsLineItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core.records import AnnotationRecord, BBox, Polygons

Z_IMAGE, Z_TILES, Z_SHAPES, Z_SELECTED, Z_DRAFT = 0.0, 1.0, 10.0, 20.0, 30.0
Z_HANDLES, Z_OVERLAY, Z_MESSAGE = 40.0, 50.0, 60.0
HANDLE_SIZE = 8.0  # screen pixels
FALLBACK_COLOR = "#ffe119"
NO_BRUSH = QBrush(Qt.BrushStyle.NoBrush)


class ClassStyle:
    """Pens and brushes of one class colour, made once and shared by its items."""

    def __init__(self, color: str):
        c = QColor(color)
        if not c.isValid():
            c = QColor(FALLBACK_COLOR)
        self.color = c
        self.pen = _pen(c, 2.0)
        self.hover_pen = _pen(c.lighter(140), 3.0)
        self.selected_pen = _pen(c.lighter(120), 3.0)
        self.brush = _brush(c, 40)
        self.hover_brush = _brush(c, 90)
        self.selected_brush = _brush(c, 70)


def _pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def _brush(color: QColor, alpha: int) -> QBrush:
    c = QColor(color)
    c.setAlpha(alpha)
    return QBrush(c)


def polygons_path(polys: Polygons) -> QPainterPath:
    path = QPainterPath()
    for part in polys:
        path.moveTo(part[0], part[1])
        for i in range(2, len(part), 2):
            path.lineTo(part[i], part[i + 1])
        path.closeSubpath()
    return path


class _ShapeMixin:
    """What box and polygon items share: their annotation id and how they look."""

    ann_id: int
    record: AnnotationRecord

    def apply_style(self, style: ClassStyle, hover: bool, selected: bool, dense: bool) -> None:
        """`dense`: the image has so many shapes that filling them all would cost more
        than it shows; only the hovered and selected ones are filled then."""
        item: QGraphicsItem = self  # type: ignore[assignment]
        if selected:
            pen, brush, z = style.selected_pen, style.selected_brush, Z_SELECTED
        elif hover:
            pen, brush, z = style.hover_pen, style.hover_brush, Z_SHAPES + 1
        else:
            pen, brush, z = style.pen, NO_BRUSH if dense else style.brush, Z_SHAPES
        item.setPen(pen)  # type: ignore[attr-defined]
        item.setBrush(brush)  # type: ignore[attr-defined]
        item.setZValue(z)


class BoxItem(QGraphicsRectItem, _ShapeMixin):
    def __init__(self, record: AnnotationRecord):
        super().__init__()
        self.ann_id = record.id
        self.set_record(record)

    def set_record(self, record: AnnotationRecord) -> None:
        self.record = record
        x, y, w, h = record.bbox
        self.setRect(QRectF(x, y, w, h))


class PolygonItem(QGraphicsPathItem, _ShapeMixin):
    def __init__(self, record: AnnotationRecord):
        super().__init__()
        self.ann_id = record.id
        self.set_record(record)

    def set_record(self, record: AnnotationRecord) -> None:
        self.record = record
        self.setPath(polygons_path(record.polygons or []))


ShapeItem = BoxItem | PolygonItem


def shape_item_type(record: AnnotationRecord) -> type[BoxItem] | type[PolygonItem]:
    """Polygons as paths; boxes (and masks, shown by their box) as rects."""
    return PolygonItem if record.kind == "polygon" and record.polygons else BoxItem


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


class DraftBox(QGraphicsRectItem):
    """The box being drawn: known to the canvas only, written on release."""

    def __init__(self, color: QColor):
        super().__init__()
        self.setPen(_pen(color, 2.0, Qt.PenStyle.DashLine))
        self.setBrush(_brush(color, 50))
        self.setZValue(Z_DRAFT)

    def set_box(self, bbox: BBox) -> None:
        self.setRect(QRectF(*bbox))


class DraftPolygon(QGraphicsPathItem):
    """The polygon being drawn: its vertices, the rubber line to the cursor, and a marker
    on the first vertex that grows when a click there would close the polygon."""

    def __init__(self, color: QColor):
        super().__init__()
        self.color = color
        self.setPen(_pen(color, 2.0))
        self.setBrush(_brush(color, 40))
        self.setZValue(Z_DRAFT)
        self.points: list[tuple[float, float]] = []
        self.cursor: tuple[float, float] | None = None
        self.handles: list[HandleItem] = []

    def update_shape(self, can_close: bool) -> None:
        path = QPainterPath()
        pts = self.points + ([self.cursor] if self.cursor else [])
        if pts:
            path.moveTo(*pts[0])
            for p in pts[1:]:
                path.lineTo(*p)
        self.setPath(path)
        scene = self.scene()
        while len(self.handles) > len(self.points):
            h = self.handles.pop()
            if scene:
                scene.removeItem(h)
        while len(self.handles) < len(self.points) and scene:
            p = self.points[len(self.handles)]
            h = HandleItem(p[0], p[1], self.color)
            scene.addItem(h)
            self.handles.append(h)
        if self.handles:
            self.handles[0].set_active(self.color, can_close)

    def remove(self) -> None:
        scene = self.scene()
        if scene:
            for h in self.handles:
                scene.removeItem(h)
            scene.removeItem(self)
        self.handles.clear()


class Crosshair:
    """Two lines across the image through the cursor, while drawing."""

    def __init__(self, scene):
        pen = _pen(QColor(255, 255, 255, 200), 1.0, Qt.PenStyle.DashLine)
        self.h = QGraphicsLineItem()
        self.v = QGraphicsLineItem()
        for line in (self.h, self.v):
            line.setPen(pen)
            line.setZValue(Z_OVERLAY)
            line.setVisible(False)
            scene.addItem(line)

    def show_at(self, x: float, y: float, width: float, height: float) -> None:
        self.h.setLine(0.0, y, width, y)
        self.v.setLine(x, 0.0, x, height)
        self.h.setVisible(True)
        self.v.setVisible(True)

    def hide(self) -> None:
        self.h.setVisible(False)
        self.v.setVisible(False)


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

"""The window's icons, drawn with QPainter: no image files, and right in light and dark mode.

Each glyph is a function that draws in a 24x24 box with the painter's pen and brush
already set. `GlyphEngine` paints it at whatever size Qt asks, in the colour of the
application palette's text *at paint time* (greyed when disabled), so a theme switch
recolours every icon without rebuilding one. Use `icon(name)`; names are in `GLYPHS`.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)

Glyph = Callable[[QPainter], None]
BOX = 24.0  # glyphs are drawn in a BOX x BOX square


def _pts(*xy: float) -> QPolygonF:
    return QPolygonF([QPointF(xy[i], xy[i + 1]) for i in range(0, len(xy), 2)])


def _select(p: QPainter) -> None:  # an arrow cursor
    p.setBrush(p.pen().color())
    p.drawPolygon(_pts(6, 3, 6, 19, 10, 15, 13, 21, 15.5, 20, 12.5, 14, 18, 14))


def _box(p: QPainter) -> None:
    p.drawRect(QRectF(4, 6, 16, 12))
    _corners(p, [(4, 6), (20, 6), (4, 18), (20, 18)])


def _polygon(p: QPainter) -> None:
    pts = [(4, 10), (11, 4), (20, 8), (18, 19), (7, 18)]
    p.drawPolygon(_pts(*[c for xy in pts for c in xy]))
    _corners(p, pts)


def _corners(p: QPainter, pts: list[tuple[float, float]]) -> None:
    p.save()
    p.setBrush(p.pen().color())
    for x, y in pts:
        p.drawRect(QRectF(x - 1.6, y - 1.6, 3.2, 3.2))
    p.restore()


def _prev(p: QPainter) -> None:
    p.drawPolyline(_pts(15, 5, 8, 12, 15, 19))


def _next(p: QPainter) -> None:
    p.drawPolyline(_pts(9, 5, 16, 12, 9, 19))


def _fit(p: QPainter) -> None:  # four corners pointing out
    for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        cx, cy = 12 - 8 * sx, 12 - 8 * sy
        p.drawPolyline(_pts(cx, cy + 5 * sy, cx, cy, cx + 5 * sx, cy))
    p.drawRect(QRectF(9, 9, 6, 6))


def _zoom_100(p: QPainter) -> None:  # a magnifier with "1"
    p.drawEllipse(QRectF(3, 3, 13, 13))
    p.drawLine(QPointF(14.5, 14.5), QPointF(21, 21))
    p.drawPolyline(_pts(8, 7.5, 10, 6, 10, 13))


def _train(p: QPainter) -> None:  # a rising curve over axes, with a play triangle
    p.drawPolyline(_pts(3, 3, 3, 21, 21, 21))
    p.drawPolyline(_pts(5, 17, 9, 11, 12, 14, 19, 5))
    p.setBrush(p.pen().color())
    p.drawPolygon(_pts(14, 11, 14, 19, 20.5, 15))


def _eye(p: QPainter) -> None:
    path = QPainterPath(QPointF(2, 12))
    path.quadTo(QPointF(12, 2), QPointF(22, 12))
    path.quadTo(QPointF(12, 22), QPointF(2, 12))
    p.drawPath(path)
    p.setBrush(p.pen().color())
    p.drawEllipse(QPointF(12, 12), 3, 3)


def _eye_off(p: QPainter) -> None:
    p.save()
    p.setOpacity(0.45)
    _eye(p)
    p.restore()
    p.drawLine(QPointF(4, 20), QPointF(20, 4))


def _lock(p: QPainter) -> None:
    p.drawArc(QRectF(7, 3, 10, 11), 0, 180 * 16)
    p.drawLine(QPointF(7, 8.5), QPointF(7, 11))
    p.drawLine(QPointF(17, 8.5), QPointF(17, 11))
    p.setBrush(p.pen().color())
    p.drawRoundedRect(QRectF(5, 11, 14, 10), 2, 2)


def _unlock(p: QPainter) -> None:
    p.setOpacity(0.45)
    p.drawArc(QRectF(11, 3, 10, 11), 0, 180 * 16)
    p.drawLine(QPointF(21, 8.5), QPointF(21, 11))
    p.drawRoundedRect(QRectF(3, 11, 14, 10), 2, 2)


GLYPHS: dict[str, Glyph] = {
    "select": _select,
    "box": _box,
    "polygon": _polygon,
    "prev": _prev,
    "next": _next,
    "fit": _fit,
    "zoom_100": _zoom_100,
    "train": _train,
    "eye": _eye,
    "eye_off": _eye_off,
    "lock": _lock,
    "unlock": _unlock,
}


def glyph_color(mode: QIcon.Mode) -> QColor:
    """The colour icons are drawn in now: the palette's text colour (dimmed when
    disabled), so they read on light and dark backgrounds alike."""
    palette = QGuiApplication.palette()
    if mode == QIcon.Mode.Disabled:
        return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)


class GlyphEngine(QIconEngine):
    """Paints one glyph at any size, coloured from the palette when painted."""

    def __init__(self, glyph: Glyph):
        super().__init__()
        self.glyph = glyph

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        side = min(rect.width(), rect.height())
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.translate(
            rect.x() + (rect.width() - side) / 2, rect.y() + (rect.height() - side) / 2
        )
        painter.scale(side / BOX, side / BOX)
        pen = QPen(glyph_color(mode), 1.8)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        self.glyph(painter)
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pm = QPixmap(size)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pm

    def clone(self) -> QIconEngine:
        return GlyphEngine(self.glyph)


def icon(name: str) -> QIcon:
    """The icon called `name` (a key of `GLYPHS`); KeyError for an unknown name."""
    return QIcon(GlyphEngine(GLYPHS[name]))


__all__ = ["GLYPHS", "GlyphEngine", "glyph_color", "icon"]

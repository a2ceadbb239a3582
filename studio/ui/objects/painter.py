"""The objects list's cell painter: draws a row's cached texts and icons directly.

Qt's standard painter asked the model for seven roles of every cell (each a call into
Python) and laid out each text anew: ~15 ms of CPU time for the ~40 rows in sight of a
dense image, at every scroll step and every first paint. `RowPainter` reads the row's
cells the model made when the row was listed (`ObjectsModel.cells`), with the icons
and texts drawn from caches: pixmaps per icon and mode, `QStaticText`s per text (their
glyphs laid out once), elided class names per width. Where each icon and text goes in
a cell comes from the style itself, once per column width (`_Layout`), so the list
looks as the standard painter drew it: the selection's colours, the selected icons'
tint, alternate rows (drawn by the table beneath), the right-aligned score. The cell
with the keyboard focus, one per paint, is drawn by the standard painter (its focus
frame is the style's).

Coordinates: viewport pixels (logical), as Qt hands the cell's rectangle in.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QFontMetricsF, QIcon, QPainter, QPalette, QPen, QPixmap, QStaticText
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from studio.ui.objects.model import CLASS, EYE, LOCK, SCORE, ObjectsModel

Index = QModelIndex | QPersistentModelIndex
State = QStyle.StateFlag
SELECTED = State.State_Selected.value
HAS_FOCUS = State.State_HasFocus.value
ENABLED = State.State_Enabled.value
# Texts and pixmaps kept at most (distinct class names, widths, scores: a few hundred in
# use); past this the cache starts over rather than grow with every width dragged.
MAX_CACHED = 4096


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a column's icon and text go, relative to the cell's top-left corner, as the
    style lays out a cell of that size: the icon's box (x, y, w, h) and the text's left
    edge, width (its margins taken off) and top (the line centred), pixels."""

    icon: tuple[int, int, int, int]
    text_x: float
    text_w: int
    text_y: float


class RowPainter(QStyledItemDelegate):
    """Paints the cells of an `ObjectsModel`'s rows. `prepare(view)` takes the view's
    palette, font and pixel ratio before each paint (the table calls it)."""

    def __init__(self, model: ObjectsModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self._layouts: dict[tuple[int, int, int], _Layout] = {}
        self._pixmaps: dict[tuple[int, int], tuple[QPixmap, int, int]] = {}
        self._texts: dict[str, tuple[QStaticText, float]] = {}
        self._elided: dict[tuple[str, int], str] = {}
        self._look: tuple = ()
        self._metrics: QFontMetricsF | None = None
        self._pens = (QPen(), QPen())  # text, selected text
        self._highlight = QPalette().highlight()
        self._row_fills_selection = False
        self._dpr = 1.0

    def prepare(self, view: QWidget) -> None:
        """Take the colours of the view's palette now (its colour group: active,
        inactive or disabled, as the style picks it); a new font, style, pixel ratio or
        palette (the icons are drawn again in its colours) drops the caches."""
        palette, style = view.palette(), view.style()
        look = (view.font().key(), id(style), view.devicePixelRatioF(), palette.cacheKey())
        if look != self._look:
            self._look, self._dpr = look, look[2]
            self._metrics = QFontMetricsF(view.font())
            self._layouts.clear()
            self._pixmaps.clear()
            self._texts.clear()
            self._elided.clear()
        Group, Role = QPalette.ColorGroup, QPalette.ColorRole
        if not view.isEnabled():
            group = Group.Disabled
        else:
            group = Group.Active if view.isActiveWindow() else Group.Inactive
        self._pens = (QPen(palette.color(group, Role.Text)),
                      QPen(palette.color(group, Role.HighlightedText)))  # fmt: skip
        self._highlight = palette.brush(group, Role.Highlight)
        # Styles that show "decoration selected" (Fusion) fill a selected row's whole
        # background beneath the cells already (the table's row panel).
        hint = QStyle.StyleHint.SH_ItemView_ShowDecorationSelected
        self._row_fills_selection = bool(style.styleHint(hint, None, view))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        state = option.state.value
        if state & HAS_FOCUS:  # one cell a paint: the style's own look, focus frame too
            super().paint(painter, option, index)
            return
        row, col, rect = index.row(), index.column(), option.rect
        layout = self._layouts.get((col, rect.width(), rect.height()))
        if layout is None:
            layout = self._layout(option, index)
        selected = state & SELECTED
        if selected and not self._row_fills_selection:
            painter.fillRect(rect, self._highlight)
        x, y = rect.x(), rect.y()
        model = self.model
        if col >= CLASS:
            cells = model.cells[row]
            if col == CLASS:
                self._icon(painter, x, y, layout, cells.swatch, state)
            text = cells.texts[col]
            if text:
                self._text(painter, x, y, layout, text, col == SCORE, selected)
        elif col == EYE:
            hidden = model.rows[row].ann_id in model.hidden
            self._icon(painter, x, y, layout, model.icons["eye_off" if hidden else "eye"], state)
        elif col == LOCK:
            locked = model.rows[row].ann_id in model.locked
            self._icon(painter, x, y, layout, model.icons["lock" if locked else "unlock"], state)

    def _icon(
        self, painter: QPainter, x: int, y: int, layout: _Layout, icon: QIcon, state: int
    ) -> None:
        """The icon centred in the layout's icon box, in the mode Qt's painter picks
        (selected icons are tinted with the selection's colour)."""
        if not state & ENABLED:
            mode = QIcon.Mode.Disabled
        else:
            mode = QIcon.Mode.Selected if state & SELECTED else QIcon.Mode.Normal
        key = (icon.cacheKey(), mode.value)
        cached = self._pixmaps.get(key)
        if cached is None:
            cached = self._pixmap(icon, mode, layout)
            self._pixmaps[key] = cached
        pm, dx, dy = cached
        painter.drawPixmap(x + dx, y + dy, pm)

    def _pixmap(self, icon: QIcon, mode: QIcon.Mode, layout: _Layout) -> tuple[QPixmap, int, int]:
        """The icon's pixmap for the icon box and its offset in the cell (centred, as
        `QIcon.paint` aligns it)."""
        if len(self._pixmaps) > MAX_CACHED:
            self._pixmaps.clear()
        bx, by, bw, bh = layout.icon
        pm = icon.pixmap(QSize(bw, bh), self._dpr, mode)
        size = pm.deviceIndependentSize().toSize()
        return pm, bx + (bw - size.width()) // 2, by + (bh - size.height()) // 2

    def _text(
        self, painter: QPainter, x: int, y: int, layout: _Layout, text: str, right: bool,
        selected: int,
    ) -> None:  # fmt: skip
        """One line of text in the layout's text box: elided at the right when too
        long, right-aligned for the score."""
        width = layout.text_w
        elided = self._elided.get((text, width))
        if elided is None:
            elided = self._elide(text, width)
        cached = self._texts.get(elided)
        if cached is None:
            cached = self._static(elided)
        static, advance = cached
        left = x + layout.text_x + (width - advance if right else 0)
        painter.setPen(self._pens[1 if selected else 0])
        painter.drawStaticText(QPointF(left, y + layout.text_y), static)

    def _elide(self, text: str, width: int) -> str:
        if len(self._elided) > MAX_CACHED:
            self._elided.clear()
        metrics = self._metrics
        assert metrics is not None
        fits = metrics.horizontalAdvance(text) <= width
        elided = text if fits else metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
        self._elided[(text, width)] = elided
        return elided

    def _static(self, text: str) -> tuple[QStaticText, float]:
        """The text with its glyphs laid out once, and its advance (pixels)."""
        if len(self._texts) > MAX_CACHED:
            self._texts.clear()
        static = QStaticText(text)
        static.setTextFormat(Qt.TextFormat.PlainText)
        metrics = self._metrics
        assert metrics is not None
        cached = (static, metrics.horizontalAdvance(text))
        self._texts[text] = cached
        return cached

    def _layout(self, option: QStyleOptionViewItem, index: Index) -> _Layout:
        """Ask the style where a cell of this column and size puts its icon and its text
        (the options Qt's painter would build for the cell), once per size."""
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        cell = option.rect
        opt.rect = QRect(0, 0, cell.width(), cell.height())
        style = opt.widget.style() if opt.widget is not None else None
        if style is None:
            from PySide6.QtWidgets import QApplication

            style = QApplication.style()
        element = QStyle.SubElement
        icon = style.subElementRect(element.SE_ItemViewItemDecoration, opt, opt.widget)
        text = style.subElementRect(element.SE_ItemViewItemText, opt, opt.widget)
        # Qt's text drawing takes the focus frame's margin (plus one) off both sides
        # and centres the line's height in what is left.
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, opt.widget) + 1
        metrics = self._metrics or QFontMetricsF(opt.font)
        line = metrics.ascent() + metrics.descent()
        layout = _Layout(
            icon=(icon.x(), icon.y(), icon.width(), icon.height()),
            text_x=text.x() + margin,
            text_w=max(0, text.width() - 2 * margin),
            text_y=text.y() + (text.height() - line) / 2,
        )
        self._layouts[(index.column(), cell.width(), cell.height())] = layout
        return layout

"""Histograms of objects by cells covered on each level, one group of bars per bin.

Bin b (CELL_BINS: "<0.5", "0.5-1", ... cells) sits at x = b; within it each level has its
own bar, side by side, finest level left. Clicking a bar emits `bar_clicked(level index,
bin index)`; the panel turns that into the objects behind the bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.ml.analysis.zoom_objects import CELL_BINS

LEVEL_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
GROUP_WIDTH = 0.8  # of one bin's width, shared by the levels' bars
BELOW_ONE_BINS = 2  # the first two bins are below one cell: drawn with a red edge


class _Bars(pg.BarGraphItem):
    """One level's bars; a left click reports the bin under the pointer."""

    def __init__(self, on_click: Callable[[float], None], **opts: object):
        super().__init__(**opts)
        self._on_click = on_click

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's hook name
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_click(ev.pos().x())


class CellHistogram(QWidget):
    """Grouped bars: objects per bin of cells covered, per level."""

    bar_clicked = Signal(int, int)  # level index, bin index

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        item = self.plot.getPlotItem()
        item.setLabel("left", "objects")
        item.setLabel("bottom", "cells covered (side / stride)")
        item.getAxis("bottom").setTicks([list(enumerate(CELL_BINS))])
        self.legend = item.addLegend(offset=(-10, 10))
        self.bars: list[_Bars] = []
        self.counts: list[list[int]] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)

    def bar_x(self, level: int, bin_index: int) -> float:
        """The centre x of one bar, in plot coordinates."""
        n = max(1, len(self.counts))
        width = GROUP_WIDTH / n
        return bin_index - GROUP_WIDTH / 2 + width * (level + 0.5)

    def set_counts(self, labels: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        """One histogram per level: `labels[k]` ("P3/8") and `counts[k]` per CELL_BINS."""
        item = self.plot.getPlotItem()
        for bars in self.bars:
            item.removeItem(bars)
        self.legend.clear()
        self.bars, self.counts = [], [list(c) for c in counts]
        width = GROUP_WIDTH / max(1, len(counts))
        for k, (label, heights) in enumerate(zip(labels, counts, strict=True)):
            color = LEVEL_COLORS[k % len(LEVEL_COLORS)]
            pens = [pg.mkPen("#d62728" if b < BELOW_ONE_BINS else color, width=1.5)
                    for b in range(len(heights))]  # fmt: skip
            bars = _Bars(
                lambda x, k=k: self._clicked(k, x),
                x=[self.bar_x(k, b) for b in range(len(heights))],
                height=list(heights),
                width=width * 0.95,
                brush=pg.mkBrush(color),
                pens=pens,
                name=label,
            )
            item.addItem(bars)  # named: the plot's legend lists it
            self.bars.append(bars)
        top = max((max(c) for c in counts if len(c)), default=0)
        item.setYRange(0, max(1, top) * 1.08, padding=0)
        item.setXRange(-0.6, len(CELL_BINS) - 0.4, padding=0)

    def _clicked(self, level: int, x: float) -> None:
        """A click at plot x on a level's bars: the bin whose bar holds x."""
        half = GROUP_WIDTH / max(1, len(self.counts)) / 2
        for b in range(len(CELL_BINS)):
            if abs(x - self.bar_x(level, b)) <= half:
                self.bar_clicked.emit(level, b)
                return

    def bar_pos(self, level: int, bin_index: int) -> QPointF:
        """Where a bar's middle is, in the plot widget's viewport pixels (for tests)."""
        height = self.counts[level][bin_index] if self.counts else 0
        vb = self.plot.getPlotItem().getViewBox()
        scene = vb.mapViewToScene(QPointF(self.bar_x(level, bin_index), height / 2))
        return QPointF(self.plot.mapFromScene(scene))

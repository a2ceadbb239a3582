"""Live training plots (pyqtgraph): loss per iteration (total and each term, smoothed with
an EMA, raw values on demand), learning rate, and validation metrics per epoch (AP, AP50,
per class on demand). Several runs overlay as one curve each.

Data lives in `RunCurves` (numpy buffers that grow by doubling, EMA kept alongside), fed
from training messages or database rows. Appending only marks the plots dirty; a timer
redraws at most 5 times a second, so a fast training loop never makes the window stutter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from studio.ml.train.messages import EpochMetrics, Iteration
from studio.ui.common.check_box import CheckBox

EMA_BETA = 0.9  # weight of the past in the smoothed loss (TensorBoard's 0.9 by default)
REDRAW_MS = 200  # at most 5 redraws a second
CREATE_PER_TICK = 3  # new curves per redraw: a run's first redraw is spread over ticks
NOT_LOSSES = ("lr", "images_per_s")
# Metrics shown per epoch: the COCO APs of boxes and masks, and the semantic mIoU.
MAIN_METRIC = re.compile(r"^((bbox|segm)/(AP|AP50)|mIoU)$")
CLASS_METRIC = re.compile(r"^((bbox|segm)/AP|IoU)/.+")
PRIMARY = ("segm/AP", "bbox/AP", "mIoU")
PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)  # fmt: skip
Row = tuple[str, int, int, str, float]  # kind, step, epoch, name, value (Project.metrics)


class Series:
    """x/y values that grow in place (capacity doubles), with their debiased EMA."""

    __slots__ = ("x", "y", "ema", "n", "_avg", "_weight")

    def __init__(self, capacity: int = 256):
        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.ema = np.empty(capacity)
        self.n = 0
        self._avg = 0.0
        self._weight = 0.0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            for name in ("x", "y", "ema"):
                old = getattr(self, name)
                new = np.empty(2 * len(old))
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        # Debiased like Adam's moments, so the curve does not start near zero.
        self._avg = EMA_BETA * self._avg + (1 - EMA_BETA) * y
        self._weight = EMA_BETA * self._weight + (1 - EMA_BETA)
        self.x[self.n], self.y[self.n] = x, y
        self.ema[self.n] = self._avg / self._weight
        self.n += 1

    def data(self, smoothed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Views of the first n values (later appends do not change them)."""
        return self.x[: self.n], (self.ema if smoothed else self.y)[: self.n]

    def last(self) -> float | None:
        return float(self.y[self.n - 1]) if self.n else None


class RunCurves:
    """One run's curves: per iteration (loss terms, "lr", "images_per_s") and per epoch
    (x = epochs completed). `version` changes with every append, to redraw only when needed."""

    def __init__(self) -> None:
        self.iters: dict[str, Series] = {}
        self.epochs: dict[str, Series] = {}
        self.version = 0

    def _add(self, table: dict[str, Series], name: str, x: float, y: float) -> None:
        series = table.get(name)
        if series is None:
            series = table[name] = Series()
        series.append(x, y)

    def add_iteration(self, msg: Iteration) -> None:
        for k, v in msg.losses.items():
            self._add(self.iters, k, msg.iteration, v)
        self._add(self.iters, "lr", msg.iteration, msg.lr)
        self._add(self.iters, "images_per_s", msg.iteration, msg.images_per_s)
        self.version += 1

    def add_epoch(self, msg: EpochMetrics) -> None:
        for k, v in msg.metrics.items():
            self._add(self.epochs, k, msg.epoch + 1, v)
        self.version += 1

    def add_rows(self, rows: Iterable[Row], upto_step: int | None = None) -> None:
        """Database rows (Project.metrics), in insertion order; iteration rows after
        `upto_step` are skipped (a killed run's steps that a resume trains again)."""
        for kind, step, _epoch, name, value in rows:
            if kind == "iter":
                if upto_step is None or step <= upto_step:
                    self._add(self.iters, name, step, value)
            else:
                self._add(self.epochs, name, step + 1, value)
        self.version += 1

    @classmethod
    def from_rows(cls, rows: Iterable[Row], upto_step: int | None = None) -> RunCurves:
        c = cls()
        c.add_rows(rows, upto_step)
        return c

    def iterations(self) -> int:
        s = self.iters.get("loss")
        return s.n if s else 0

    def primary_metric(self) -> str | None:
        return next((k for k in PRIMARY if k in self.epochs), None)


class TrainPlots(QWidget):
    """Three plots stacked: loss, learning rate, validation metrics. `show_runs` picks what
    they show; `touch()` after appending to a shown RunCurves redraws at the next tick."""

    csv_requested = Signal()
    png_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._runs: list[tuple[int, str, RunCurves]] = []
        # (plot, run id, metric, raw) -> (curve, (legend label, colour))
        self._items: dict[tuple[str, int, str, bool], tuple[pg.PlotDataItem, tuple[str, str]]] = {}
        self._ranges: dict[str, tuple] = {}  # plot -> (x range, y range) last set
        self._user_ranged: set[str] = set()  # plots the user zoomed or panned
        self._setting_range = False
        # What each curve shows: (id of its Series, points); redraw skips curves that match.
        self._drawn: dict[tuple[str, int, str, bool], tuple[int, int]] = {}
        self._versions: dict[int, tuple[int, int]] = {}  # run id -> (id, version) drawn
        self._layout_key: tuple | None = None  # the curves the plots hold, as _wanted gave
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_options())
        layout.addWidget(self._build_plots(), 1)
        self._build_hover()
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    # --- building -------------------------------------------------------------------------

    def _build_options(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.raw_box = CheckBox("Raw values")
        self.raw_box.setToolTip("Show every iteration's loss behind the smoothed (EMA) curves")
        self.per_class_box = CheckBox("AP per class")
        self.per_class_box.setToolTip("Show the validation AP of each class")
        for box in (self.raw_box, self.per_class_box):
            box.toggled.connect(self._force_redraw)
            row.addWidget(box)
        row.addStretch(1)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self.png_requested)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("The metrics of the runs shown, from the project database")
        self.csv_button.clicked.connect(self.csv_requested)
        row.addWidget(self.png_button)
        row.addWidget(self.csv_button)
        return row

    def _plot(
        self, row: int, title: str, x_label: str, legend_at: tuple[int, int] = (-4, 4)
    ) -> pg.PlotItem:
        """A plot of the figure; its legend in the corner `legend_at` says (pyqtgraph's
        offset: negative from the right or the bottom), where its curves seldom run."""
        plot = self.graphics.addPlot(row=row, col=0)
        plot.setTitle(title, size="9pt", color="#333")
        plot.setLabel("bottom", x_label, color="#444")
        # No grid: pyqtgraph draws it as long lines in the axes' pictures, which costs
        # 15-20 ms a repaint in software rendering, more than everything else together.
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen("#888"))
            axis.setTextPen(pg.mkPen("#333"))
        # A fixed width: labels that grow ("0.5" -> "0.0015") would otherwise re-lay out the
        # whole figure, and redraw every axis, on each update. It also aligns the plots.
        plot.getAxis("left").setWidth(52)
        legend = plot.addLegend(
            offset=legend_at, labelTextSize="8pt", labelTextColor="#333", colCount=2
        )
        legend.setBrush(pg.mkBrush(255, 255, 255, 170))
        plot.setMenuEnabled(False)
        return plot

    def _build_plots(self) -> pg.GraphicsLayoutWidget:
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumSize(320, 240)  # three plots, readable; fits a 768-px screen
        self.plots = {
            "loss": self._plot(0, "Training loss", "iteration"),
            "lr": self._plot(1, "Learning rate", "iteration"),
            # AP rises: its newest points are top right, and the bottom right stays free.
            "metrics": self._plot(2, "Validation", "epoch", legend_at=(-4, -4)),
        }
        self.plots["lr"].setXLink(self.plots["loss"])
        for name in ("loss", "lr"):
            self.plots[name].vb.disableAutoRange()
            self.plots[name].vb.sigRangeChangedManually.connect(
                lambda *_, n=name: self._on_user_range(n)
            )
        self.plots["lr"].getAxis("left").enableAutoSIPrefix(False)
        self.plots["metrics"].enableAutoRange(enable=False)  # see _fit_metrics
        for row, stretch in enumerate((5, 2, 4)):
            self.graphics.ci.layout.setRowStretchFactor(row, stretch)
        self.placeholder = pg.TextItem(
            "Press Train, or select runs: their curves appear here", color="#888", anchor=(0.5, 0.5)
        )
        self.placeholder.setPos(0.5, 0.5)
        self.plots["loss"].addItem(self.placeholder, ignoreBounds=True)
        return self.graphics

    def _build_hover(self) -> None:
        # One readout for the plot under the mouse: a vertical line and each curve's value at
        # the nearest x. Rate-limited: hovering must not cost more than a redraw.
        self._hover_line = pg.InfiniteLine(
            angle=90, pen=pg.mkPen("#999", style=Qt.PenStyle.DashLine)
        )
        self._hover_text = pg.TextItem(anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 220))
        self._hover_text.setZValue(100)
        self._hover_plot: pg.PlotItem | None = None
        self._proxy = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse
        )

    # --- what is shown ----------------------------------------------------------------------

    def show_runs(self, runs: Sequence[tuple[int, str, RunCurves]]) -> None:
        """Show these runs: one run with every curve, several overlaid (total loss, learning
        rate and the primary metric, one colour each)."""
        runs = list(runs)
        same = [(r, lbl, id(c)) for r, lbl, c in runs] == [
            (r, lbl, id(c)) for r, lbl, c in self._runs
        ]
        self._runs = runs
        if same:  # a refresh that changed nothing shown: no need to set every curve again
            self.touch()
        else:
            self._force_redraw()

    def touch(self) -> None:
        """Data was appended to a shown run; the timer redraws it."""
        if not self._timer.isActive():
            self._timer.start()

    def _force_redraw(self) -> None:
        self._layout_key = None
        self._versions = {}
        self.redraw()
        self.touch()  # the rest of the curves, if creating them takes several ticks

    def _wanted(self) -> list[tuple[str, int, str, bool, str, str]]:
        """(plot, run id, metric, raw, legend label, colour) of every curve to draw."""
        out = []
        raw = self.raw_box.isChecked()
        per_class = self.per_class_box.isChecked()
        overlay = len(self._runs) > 1
        for i, (run_id, label, c) in enumerate(self._runs):
            run_colour = PALETTE[i % len(PALETTE)]
            losses = [k for k in c.iters if k not in NOT_LOSSES]
            losses.sort(key=lambda k: (k != "loss", k))
            if overlay:
                losses = losses[:1]
            for j, k in enumerate(losses):
                colour = run_colour if overlay else PALETTE[j % len(PALETTE)]
                name = label if overlay else k
                out.append(("loss", run_id, k, False, name, colour))
                if raw:
                    out.append(("loss", run_id, k, True, "", colour))
            if "lr" in c.iters:
                out.append(("lr", run_id, "lr", False, label if overlay else "lr", run_colour))
            metrics = [k for k in c.epochs if MAIN_METRIC.match(k)]
            if per_class:
                metrics += [k for k in c.epochs if CLASS_METRIC.match(k)]
            if overlay:
                primary = c.primary_metric()
                metrics = [primary] if primary else []
            for j, k in enumerate(metrics):
                colour = run_colour if overlay else PALETTE[j % len(PALETTE)]
                out.append(("metrics", run_id, k, False, f"{label} {k}" if overlay else k, colour))
        return out

    def redraw(self) -> None:
        """Create the curves when what is shown changed, then give new data to the curves
        whose series grew since the last redraw. When nothing changed, the timer stops
        until `touch()`."""
        wanted = self._wanted()
        key = tuple(w[:4] for w in wanted)
        complete = key == self._layout_key or self._sync_items(wanted)
        if complete:
            self._layout_key = key
        if not self._runs:
            self._clear_ranges()
            self._timer.stop()
            return
        versions = {rid: (id(c), c.version) for rid, _, c in self._runs}
        if complete and versions == self._versions:
            self._timer.stop()
            return
        if complete:
            self._versions = versions
        curves = {rid: c for rid, _, c in self._runs}
        changed: set[str] = set()
        self.placeholder.setVisible(False)
        for ikey, (item, _style) in self._items.items():
            plot, rid, metric, raw = ikey
            c = curves[rid]  # _sync_items made the curves match the runs shown
            series = (c.epochs if plot == "metrics" else c.iters).get(metric)
            if series is None or self._drawn.get(ikey) == (id(series), series.n):
                continue
            self._drawn[ikey] = (id(series), series.n)
            item.setData(*series.data(smoothed=plot == "loss" and not raw))
            changed.add(plot)
        if "metrics" in changed:
            self._fit_metrics()
        if changed & {"loss", "lr"}:
            self._fit_iterations()

    def _fit_metrics(self) -> None:
        """Epochs 0.5 past each end with whole-epoch ticks, and AP from 0 to a little over
        its largest value (a fixed 0-1 range hides the early epochs' small APs)."""
        plot = self.plots["metrics"]
        xs = [item.xData for item in plot.listDataItems() if item.xData is not None]
        ys = [item.yData for item in plot.listDataItems() if item.yData is not None]
        last = max((float(x.max()) for x in xs if len(x)), default=1.0)
        top = max((float(np.nanmax(y)) for y in ys if len(y)), default=0.0)
        plot.setXRange(0.5, max(last, 2) + 0.5, padding=0)
        plot.setYRange(0, min(1.0, max(0.05, top * 1.15)), padding=0)
        spacing = [(5, 0), (1, 0)] if last <= 20 else None
        axis = plot.getAxis("bottom")
        if axis._tickSpacing != spacing:  # setting it again would redraw the axis
            axis.setTickSpacing(levels=spacing)

    def _sync_items(self, wanted: list[tuple[str, int, str, bool, str, str]]) -> bool:
        """Make the plots hold the `wanted` curves, keeping those already there. Creating
        a curve with its legend entry is what costs (~3 ms), so at most CREATE_PER_TICK
        are created per call; returns whether all are there (else the next tick goes on)."""
        items: dict[tuple[str, int, str, bool], tuple[pg.PlotDataItem, tuple[str, str]]] = {}
        budget = CREATE_PER_TICK
        for plot_name, rid, metric, raw, label, colour in wanted:
            key, style = (plot_name, rid, metric, raw), (label, colour)
            old = self._items.pop(key, None)
            if old is not None and old[1] == style:
                items[key] = old
                continue
            if old is not None:
                self.plots[plot_name].removeItem(old[0])
            if budget > 0:
                budget -= 1
                items[key] = (self._new_item(plot_name, metric, raw, label, colour), style)
                self._drawn.pop(key, None)
            else:
                budget = -1  # some left for the next tick
        for (plot_name, *_rest), (item, _style) in self._items.items():
            self.plots[plot_name].removeItem(item)
        self._items = items
        if budget < 0:
            self.touch()
        return budget >= 0

    def _new_item(
        self, plot_name: str, metric: str, raw: bool, label: str, colour: str
    ) -> pg.PlotDataItem:
        if raw:
            pen = pg.mkPen(pg.mkColor(colour).lighter(150), width=1)
        else:
            pen = pg.mkPen(colour, width=2 if metric == "loss" or plot_name != "loss" else 1.3)
        kwargs = {}
        if plot_name == "metrics":
            kwargs = {"symbol": "o", "symbolSize": 5, "symbolBrush": colour, "symbolPen": None}
        item = pg.PlotDataItem(pen=pen, name=label or None, skipFiniteCheck=True, **kwargs)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        item.setZValue(-1 if raw else 0)
        self.plots[plot_name].addItem(item)
        return item

    def _fit_iterations(self) -> None:
        """Ranges of the loss and learning-rate plots in steps (0 to a round number above
        the data): a range that follows every new point redraws the axes, their tick texts
        included, at each update, which is most of the painting time."""
        for name in ("loss", "lr"):
            vb = self.plots[name].vb
            if any(vb.autoRangeEnabled()):  # the "A" button: back to automatic ranges
                self._user_ranged.discard(name)
                vb.disableAutoRange()
            if name in self._user_ranged:
                continue
            data = [(i.xData, i.yData) for i in self.plots[name].listDataItems()]
            data = [(x, y) for x, y in data if x is not None and len(x)]
            if not data:
                continue
            x0 = min(float(x[0]) for x, _ in data)
            x1 = max(float(x[-1]) for x, _ in data)
            y0 = min(float(np.nanmin(y)) for _, y in data)
            y1 = max(float(np.nanmax(y)) for _, y in data)
            lo = 0.0 if y0 >= 0 else y0 - 0.1 * (y1 - y0)
            target = ((x0, max(x0 + 1, nice_ceil(x1))), (lo, nice_ceil(y1 * 1.05)))
            if target != self._ranges.get(name):
                self._ranges[name] = target
                self._setting_range = True
                try:
                    if name == "loss":  # the lr plot follows its x
                        vb.setXRange(*target[0], padding=0)
                    vb.setYRange(*target[1], padding=0)
                finally:
                    self._setting_range = False

    def _clear_ranges(self) -> None:
        """Nothing shown: the placeholder in the middle of empty 0-1 plots."""
        self.placeholder.setVisible(True)
        self._ranges.clear()
        self._user_ranged.clear()
        for name in ("loss", "lr"):
            self.plots[name].vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    def _on_user_range(self, name: str) -> None:
        if not self._setting_range:
            self._user_ranged.add(name)
            self._ranges.pop(name, None)

    # --- reading back (tests, hover) -------------------------------------------------------

    def curve(
        self, plot: str, metric: str, run_id: int | None = None, raw: bool = False
    ) -> pg.PlotDataItem | None:
        for (p, rid, m, r), (item, _style) in self._items.items():
            if (p, m, r) == (plot, metric, raw) and run_id in (None, rid):
                return item
        return None

    def curves(self, plot: str) -> list[pg.PlotDataItem]:
        return [item for (p, *_), (item, _style) in self._items.items() if p == plot]

    def _on_mouse(self, event: tuple[QPointF]) -> None:
        pos = event[0]
        plot = next((p for p in self.plots.values() if p.sceneBoundingRect().contains(pos)), None)
        if plot is not self._hover_plot:
            if self._hover_plot is not None:
                self._hover_plot.removeItem(self._hover_line)
                self._hover_plot.removeItem(self._hover_text)
            if plot is not None:
                plot.addItem(self._hover_line, ignoreBounds=True)
                plot.addItem(self._hover_text, ignoreBounds=True)
            self._hover_plot = plot
        if plot is None:
            return
        point = plot.vb.mapSceneToView(pos)
        lines = []
        for item in plot.listDataItems():
            x, y = item.getOriginalDataset()
            name = item.name()
            if x is None or not len(x) or not name:
                continue
            i = int(np.clip(np.searchsorted(x, point.x()), 0, len(x) - 1))
            if i > 0 and abs(x[i - 1] - point.x()) < abs(x[i] - point.x()):
                i -= 1
            colour = item.opts["pen"].color().name()
            lines.append(f'<span style="color:{colour}">{name}</span> {y[i]:.4g} @ {x[i]:g}')
        self._hover_line.setPos(point.x())
        self._hover_text.setHtml("<br>".join(lines[:12]))
        _x_range, (_y0, y1) = plot.vb.viewRange()
        self._hover_text.setPos(point.x(), y1)
        self._hover_text.setVisible(bool(lines))

    # --- export -----------------------------------------------------------------------------

    def export_png(self, path: Path, width: int = 1600) -> Path:
        """The three plots as one PNG (rendered again at `width` pixels)."""
        from pyqtgraph.exporters import ImageExporter

        self.redraw()
        exporter = ImageExporter(self.graphics.ci)
        exporter.parameters()["width"] = width
        exporter.export(str(path))
        return Path(path)


def nice_ceil(v: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is >= v."""
    if not v > 0 or not np.isfinite(v):
        return 1.0
    power = 10.0 ** np.floor(np.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * power >= v * (1 - 1e-9):
            return float(m * power)
    return float(10 * power)

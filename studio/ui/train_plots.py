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
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from studio.ml.messages import EpochMetrics, Iteration

EMA_BETA = 0.9  # weight of the past in the smoothed loss (TensorBoard's 0.9 by default)
REDRAW_MS = 200  # at most 5 redraws a second
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
        self._items: dict[tuple[str, int, str, bool], pg.PlotDataItem] = {}
        self._drawn: dict[int, int] = {}  # run id -> RunCurves.version drawn
        self._layout_key: tuple = ()
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
        self.raw_box = QCheckBox("Raw values")
        self.raw_box.setToolTip("Show every iteration's loss behind the smoothed (EMA) curves")
        self.per_class_box = QCheckBox("AP per class")
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

    def _plot(self, row: int, title: str, x_label: str) -> pg.PlotItem:
        plot = self.graphics.addPlot(row=row, col=0)
        plot.setTitle(title, size="9pt", color="#333")
        plot.setLabel("bottom", x_label, color="#444")
        plot.showGrid(x=True, y=True, alpha=0.25)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(pg.mkPen("#888"))
            axis.setTextPen(pg.mkPen("#333"))
        legend = plot.addLegend(offset=(-4, 4), labelTextSize="8pt", colCount=2)
        legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        plot.setMenuEnabled(False)
        return plot

    def _build_plots(self) -> pg.GraphicsLayoutWidget:
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setMinimumSize(320, 300)
        self.plots = {
            "loss": self._plot(0, "Training loss", "iteration"),
            "lr": self._plot(1, "Learning rate", "iteration"),
            "metrics": self._plot(2, "Validation", "epoch"),
        }
        self.plots["lr"].setXLink(self.plots["loss"])
        self.plots["lr"].getAxis("left").enableAutoSIPrefix(False)
        self.plots["metrics"].setYRange(0, 1, padding=0.02)
        self.plots["metrics"].enableAutoRange(axis="y", enable=False)
        for row, stretch in enumerate((5, 2, 4)):
            self.graphics.ci.layout.setRowStretchFactor(row, stretch)
        self.placeholder = pg.TextItem("Press Train: curves appear here", color="#888")
        self.plots["loss"].addItem(self.placeholder, ignoreBounds=True)
        return self.graphics

    def _build_hover(self) -> None:
        # One readout for the plot under the mouse: a vertical line and each curve's value at
        # the nearest x. Rate-limited: hovering must not cost more than a redraw.
        self._hover_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#999", style=Qt.DashLine))
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
        self._runs = list(runs)
        self._force_redraw()

    def touch(self) -> None:
        """Data was appended to a shown run; the timer redraws it."""
        if not self._timer.isActive():
            self._timer.start()

    def _force_redraw(self) -> None:
        self._layout_key = ()
        self._drawn.clear()
        self.redraw()

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
        """Rebuild the curves when what is shown changed, else update the runs whose data
        grew since the last redraw. Cheap when nothing changed."""
        wanted = self._wanted()
        key = tuple(w[:4] for w in wanted)
        if key != self._layout_key:
            self._rebuild(wanted)
            self._layout_key = key
            self._drawn.clear()
        changed = {rid for rid, _, c in self._runs if self._drawn.get(rid) != c.version}
        if not changed:
            return
        curves = {rid: c for rid, _, c in self._runs}
        for (plot, rid, metric, raw), item in self._items.items():
            if rid not in changed:
                continue
            c = curves[rid]
            series = (c.epochs if plot == "metrics" else c.iters).get(metric)
            if series is not None:
                x, y = series.data(smoothed=plot == "loss" and not raw)
                item.setData(x, y)
        for rid in changed:
            self._drawn[rid] = curves[rid].version
        self.placeholder.setVisible(not self._runs)

    def _rebuild(self, wanted: list[tuple[str, int, str, bool, str, str]]) -> None:
        for plot in self.plots.values():
            for item in list(plot.listDataItems()):
                plot.removeItem(item)
            if plot.legend is not None:
                plot.legend.clear()
        self._items.clear()
        for plot_name, rid, metric, raw, label, colour in wanted:
            plot = self.plots[plot_name]
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
            plot.addItem(item)
            self._items[(plot_name, rid, metric, raw)] = item

    # --- reading back (tests, hover) -------------------------------------------------------

    def curve(
        self, plot: str, metric: str, run_id: int | None = None, raw: bool = False
    ) -> pg.PlotDataItem | None:
        for (p, rid, m, r), item in self._items.items():
            if (p, m, r) == (plot, metric, raw) and run_id in (None, rid):
                return item
        return None

    def curves(self, plot: str) -> list[pg.PlotDataItem]:
        return [item for (p, *_), item in self._items.items() if p == plot]

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


def legend_label(run_id: int, name: str) -> str:
    return f"#{run_id} {name}"

"""The measured zoom view: a run's AP, AP50 and recall by object-size bucket against the
zoom, plotted live as each zoom finishes.

The evaluation (`zoom_work.measure_zoom`) runs on a worker thread through `run_task`;
each finished zoom crosses to the GUI thread through `_Relay`'s queued signal, so the
plot grows one point per zoom while the rest still runs. Cancel stops at the next image;
the zooms already measured stay plotted and exportable as CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.ml.analysis.zoom_empirical import BUCKETS, ScaleResult
from studio.ml.analysis.zoom_report import write_csv
from studio.ui.analysis.zoom_work import measure_zoom
from studio.ui.common.concurrency import Task, run_task

METRICS = ("ap", "ap50", "recall")
METRIC_TEXT = {"ap": "AP (IoU .50:.95)", "ap50": "AP50", "recall": "recall (IoU .5)"}
BUCKET_COLORS = {"all": "#222222", "small": "#d62728", "medium": "#1f77b4", "large": "#2ca02c"}


class _Relay(QObject):
    """Lives on the GUI thread; `scale_done` emitted from the worker is queued to it."""

    scale_done = Signal(object)  # ScaleResult


class ZoomMeasureView(QWidget):
    """Measure button, progress and Cancel, a metric chooser, the live plot, CSV export."""

    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project_dir: Path | None = None
        self.run_id: int | None = None
        self.scales: tuple[float, ...] = ()
        self.results: list[ScaleResult] = []
        self.task: Task | None = None
        self.device = "auto"
        self._relay = _Relay(self)
        self._relay.scale_done.connect(self._on_scale, Qt.ConnectionType.QueuedConnection)
        self._build()

    def _build(self) -> None:
        self.measure_btn = QPushButton("Measure")
        self.measure_btn.setToolTip("Evaluate the run's validation images at each zoom")
        self.measure_btn.clicked.connect(self.measure)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.csv_btn = QPushButton("Export CSV…")
        self.csv_btn.setEnabled(False)
        self.csv_btn.clicked.connect(self._export_interactive)
        self.metric = QComboBox()
        for key in METRICS:
            self.metric.addItem(METRIC_TEXT[key], key)
        self.metric.currentIndexChanged.connect(lambda _i: self._replot())
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Choose a run to measure AP at each zoom.")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setMenuEnabled(False)
        self.plot.setMinimumHeight(170)
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "zoom")
        item.setYRange(0, 1, padding=0.02)
        item.addLegend(offset=(-10, 10))
        self.curves = {b: item.plot([], [], pen=pg.mkPen(BUCKET_COLORS[b], width=2),
                                    symbol="o", symbolSize=7,
                                    symbolBrush=BUCKET_COLORS[b], name=b)
                       for b in BUCKETS}  # fmt: skip
        row = QHBoxLayout()
        for w in (self.measure_btn, self.cancel_btn, self.metric, self.csv_btn):
            row.addWidget(w)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.plot, 1)

    # --- what to measure ---------------------------------------------------------------

    def set_target(self, project_dir: Path | None, run_id: int | None, scales: Sequence[float]):
        """The project, run and zooms the next Measure evaluates (run None: no Measure)."""
        if (project_dir, run_id) != (self.project_dir, self.run_id):
            self.cancel()
            self.results = []
            self._replot()
        self.project_dir, self.run_id, self.scales = project_dir, run_id, tuple(scales)
        self.measure_btn.setEnabled(run_id is not None and not self.busy)
        if run_id is None:
            self.status.setText("Choose a run (not a model name) to measure AP at each zoom.")

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done

    # --- running -----------------------------------------------------------------------

    def measure(self) -> None:
        """Start the evaluation at every zoom in the background."""
        if self.busy or self.project_dir is None or self.run_id is None or not self.scales:
            return
        self.results = []
        self._replot()
        relay, project_dir, run_id, scales = self._relay, self.project_dir, self.run_id, self.scales
        device = self.device

        def work(progress):
            return measure_zoom(project_dir, run_id, scales, relay.scale_done.emit, progress,
                                device)  # fmt: skip

        self.task = task = run_task(work, self._on_done, self._on_failed)
        task.progressed.connect(self._on_progress)
        task.cancelled.connect(self._on_cancelled)
        self._set_running(True)
        self.status.setText(f"Measuring run #{run_id} at {len(scales)} zooms…")

    def cancel(self) -> None:
        """Stop at the next image; what was measured stays."""
        if self.busy:
            self.task.cancel()

    def _set_running(self, on: bool) -> None:
        self.measure_btn.setEnabled(not on and self.run_id is not None)
        self.cancel_btn.setEnabled(on)
        self.progress.setVisible(on)
        if on:
            self.progress.setRange(0, 0)

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        if text:
            self.progress.setFormat(f"{text}: %v / %m images")

    def _on_scale(self, result: ScaleResult) -> None:
        self.results.append(result)
        self._replot()
        self.csv_btn.setEnabled(True)

    def _on_done(self, _results: object) -> None:
        self._set_running(False)
        self.status.setText(f"Measured {len(self.results)} zooms on the validation images.")

    def _on_failed(self, exc: BaseException) -> None:
        self._set_running(False)
        self.status.setText(f"Measuring failed: {exc}")
        self.message.emit(f"Zoom measurement failed: {exc}")

    def _on_cancelled(self) -> None:
        self._set_running(False)
        self.status.setText(f"Cancelled after {len(self.results)} of {len(self.scales)} zooms.")

    # --- showing -----------------------------------------------------------------------

    @property
    def metric_key(self) -> str:
        return str(self.metric.currentData())

    def points(self, bucket: str = "all") -> list[tuple[float, float]]:
        """(zoom, value) plotted for `bucket` and the chosen metric (undefined values,
        -1, are left out)."""
        key = self.metric_key
        out = []
        for r in self.results:
            value = getattr(r.metrics[bucket], key)
            if value >= 0:
                out.append((r.zoom, value))
        return sorted(out)

    def _replot(self) -> None:
        self.plot.getPlotItem().setLabel("left", METRIC_TEXT[self.metric_key])
        for bucket, curve in self.curves.items():
            pts = self.points(bucket)
            curve.setData([p[0] for p in pts], [p[1] for p in pts])

    def export_csv(self, path: Path | str) -> None:
        """Write the measured zooms (one row per zoom and bucket); StudioError naming the
        file when it cannot be written."""
        if not self.results:
            raise StudioError("nothing measured yet: press Measure first")
        write_csv(path, self.results)

    def _export_interactive(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", "zoom.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
            except StudioError as exc:
                self.message.emit(str(exc))
            else:
                self.message.emit(f"Wrote {path}")

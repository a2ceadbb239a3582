"""The Evaluation view: a run's errors against the labels, every number clickable.

Per-class table (COCO AP, AP50, AP75, APs, APm, APl from pycocotools, an AP[band]
column for each size band the user sets; precision, recall, TP, FP, FN at the score
threshold), PR curves per class with the threshold's operating point, a confusion matrix
(rows: label classes, columns: predicted classes, the last row and column "background")
and the TIDE-style error breakdown. IoU is on masks for a segmenter, on boxes otherwise.
Clicking a count, a row, a cell, an error type or a point of a PR curve emits
`objects_chosen` with the `ObjectRef`s behind it; hovering a PR point shows its score,
precision and recall. The size bands are saved in the project's settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.ml.analysis.errors import BACKGROUND, ErrorReport
from studio.ml.analysis.mask_iou import IouType
from studio.ml.analysis.size_bands import band_aps, bands_from_edges
from studio.ui.analysis.size_bands_field import SizeBandsField
from studio.ui.analysis.work import (
    SIZE_BANDS_SETTING,
    ObjectRef,
    cell_refs,
    class_refs,
    error_refs,
    pr_curve,
    pr_point_refs,
    refs,
)
from studio.ui.common.concurrency import run_task

CLASS_COLUMNS = ("class", "AP", "AP50", "AP75", "APs", "APm", "APl", "P", "R", "TP", "FP", "FN")
BAND_AT = CLASS_COLUMNS.index("APl") + 1  # size-band columns go after COCO's sizes
_AP_KEYS = {"AP": "ap", "AP50": "ap50", "AP75": "ap75", "APs": "aps", "APm": "apm", "APl": "apl"}
_COUNT_KEYS = {"TP": "tp", "FP": "fp", "FN": "fn"}
ERROR_ROWS = ("cls", "loc", "both", "dupe", "bkg", "miss")
ERROR_TEXT = {
    "cls": "classification", "loc": "localisation", "both": "class and place",
    "dupe": "duplicate", "bkg": "background", "miss": "missed",
}  # fmt: skip


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v < 0):
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _table(columns: list[str], on_click: Callable[[int, int], None]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.cellClicked.connect(on_click)
    return t


def _pr_tip(x: float, y: float, data: Any) -> str:
    """Hover text of a PR point: data is (class id, score, class name)."""
    return f"{data[2]}: score ≥ {data[1]:.3f}\nprecision {y:.3f}, recall {x:.3f}\nclick: list"


def band_column(label: str) -> str:
    """The table header of a size band ("<8" -> "AP[<8]")."""
    return f"AP[{label}]"


def _cell(text: str, tip: str = "") -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tip:
        item.setToolTip(tip)
    return item


class EvaluationView(QWidget):
    """Shows one `ErrorReport`; `set_report` fills it, `set_colors` colours the curves."""

    objects_chosen = Signal(object)  # list[ObjectRef]

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.report: ErrorReport | None = None
        self.colors: dict[int, str] = {}
        self.columns: list[str] = list(CLASS_COLUMNS)  # the class table's, bands included
        self.pr_points: dict[int, pg.ScatterPlotItem] = {}  # class id -> its PR points
        self._project: Project | None = None
        self._bands_of: Project | None = None  # the project whose bands the field shows
        self._build()

    def _build(self) -> None:
        self.summary = QLabel("No evaluation yet: predict, then Evaluate.")
        self.summary.setWordWrap(True)
        self.bands = SizeBandsField()
        self.bands.edges_changed.connect(self._on_bands)
        self.classes = _table(list(CLASS_COLUMNS), self._class_clicked)
        self.confusion = _table([], self._confusion_clicked)
        self.errors = _table(
            ["error (IoU 0.5, all scores)", "AP50 gained", "count"], self._error_clicked
        )
        self.pr = pg.PlotWidget(background="w")
        self.pr.setLabel("bottom", "recall")
        self.pr.setLabel("left", "precision")
        self.pr.setXRange(0, 1)
        self.pr.setYRange(0, 1.02)
        self.pr.addLegend(offset=(-10, 10))
        # One view at a time, each the panel's whole width: side by side in the docked
        # panel (about 520 px) the curves and the matrix got 240 px each, the matrix cut.
        self.views = QTabWidget()
        self.views.addTab(self.confusion, "Confusion (rows: labels)")
        self.views.addTab(self.pr, "PR curves")
        self.views.addTab(self.errors, "Errors (TIDE)")
        self.views.setTabToolTip(2, "TIDE's own settings: IoU 0.5 and every stored "
                                 "prediction, whatever the IoU box and the score slider say")  # fmt: skip
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(self.classes)
        vsplit.addWidget(self.views)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self.bands)
        lay.addWidget(vsplit, 1)

    def set_colors(self, colors: dict[int, str]) -> None:
        self.colors = dict(colors)

    def set_project(self, project: Project | None) -> None:
        """The project whose settings hold the size bands; the field shows its bands."""
        self._project = project
        self._load_bands()

    def project(self) -> Project | None:
        """The project set with `set_project`, else the enclosing panel's `project`
        (the Inspect dock's), so that the bands persist wherever the view is placed."""
        if self._project is not None:
            return self._project
        w = self.parentWidget()
        while w is not None:
            p = getattr(w, "project", None)
            if isinstance(p, Project):
                return p
            w = w.parentWidget()
        return None

    def _load_bands(self) -> None:
        project = self.project()
        if project is self._bands_of:
            return
        self._bands_of = project
        edges = project.get_setting(SIZE_BANDS_SETTING, []) if project is not None else []
        try:
            self.bands.set_edges([float(v) for v in edges or []])
        except (TypeError, ValueError):
            self.bands.set_edges([])  # a setting edited by hand: start over, say nothing

    def _on_bands(self, edges: list[float]) -> None:
        """Save the new bands; recompute the shown report's AP with them (pycocotools,
        in the background), the columns follow."""
        project = self.project()
        if project is not None:
            project.set_setting(SIZE_BANDS_SETTING, edges)
        report = self.report
        if report is None or report.gt is None:
            return
        bands = bands_from_edges(edges)
        if not bands or not report.aps:
            report.size_bands = bands
            self._fill_classes(report)
            return

        def done(aps: dict) -> None:
            # In place: a re-count made meanwhile shares this dict (it keeps the AP).
            report.aps.update(aps)
            report.size_bands = bands
            if self.report is not None and self.report.aps is report.aps:
                self.report.size_bands = bands
                self._fill_classes(self.report)

        def failed(exc: BaseException) -> None:
            self.summary.setText(f"Size bands: {exc}")

        run_task(lambda _progress: band_aps(report, bands), done, failed)

    # --- filling -------------------------------------------------------------------------

    def set_report(self, report: ErrorReport | None) -> None:
        self.report = report
        self._load_bands()
        if report is None:
            self.summary.setText("No evaluation yet: predict, then Evaluate.")
            for t in (self.classes, self.confusion, self.errors):
                t.setRowCount(0)
            self.pr.clear()
            self.pr_points = {}
            return
        total = report.total()
        n = len(set(report.labels.image_id.tolist()) | set(report.dets.image_id.tolist()))
        self.summary.setText(
            f"{n} images, {'mask' if report.iou_type == IouType.SEGM else 'box'} IoU ≥ "
            f"{report.iou:.2f}, score ≥ {report.score:.2f}: "
            f"TP {total['tp']}, FP {total['fp']}, FN {total['fn']}, precision "
            f"{_fmt(total['precision'])}, recall {_fmt(total['recall'])}"
        )
        self._fill_classes(report)
        self._fill_confusion(report)
        self._fill_errors(report)
        self._plot_pr(report)

    def _fill_classes(self, report: ErrorReport) -> None:
        per = report.per_class()
        rows = [(cid, name, per[name]) for cid, name in
                zip(report.class_ids, report.class_names, strict=True)]  # fmt: skip
        rows.append((None, "all", {**report.total(), **report.aps.get("all", {})}))
        bands = list(report.size_bands)
        self.columns = [*CLASS_COLUMNS[:BAND_AT], *map(band_column, bands),
                        *CLASS_COLUMNS[BAND_AT:]]  # fmt: skip
        keys = {**_AP_KEYS, **_COUNT_KEYS, "P": "precision", "R": "recall"}
        keys.update({band_column(b): f"ap_{b}" for b in bands})
        self.classes.setColumnCount(len(self.columns))
        self.classes.setHorizontalHeaderLabels(self.columns)
        self.classes.setRowCount(len(rows))
        for r, (_cid, name, data) in enumerate(rows):
            self.classes.setItem(r, 0, QTableWidgetItem(name))
            for c, col in enumerate(self.columns[1:], 1):
                tip = "click: list these objects" if col in _COUNT_KEYS else ""
                self.classes.setItem(r, c, _cell(_fmt(data.get(keys[col])), tip))
        self._class_ids = [cid for cid, _n, _d in rows]

    def _fill_confusion(self, report: ErrorReport) -> None:
        names = [*report.class_names, BACKGROUND]
        m = report.confusion
        self.confusion.setColumnCount(len(names))
        self.confusion.setRowCount(len(names))
        # Rows: label classes; columns: predicted classes (the tooltips say so too).
        self.confusion.setHorizontalHeaderLabels(names)
        self.confusion.setVerticalHeaderLabels(names)
        self.confusion.verticalHeader().setVisible(True)
        peak = max(int(m.max()), 1)
        for r in range(len(names)):
            for c in range(len(names)):
                v = int(m[r, c])
                item = _cell(str(v), f"label {names[r]} / predicted {names[c]}: click to list")
                if v:
                    good = r == c and r < len(names) - 1
                    base = QColor(46, 204, 64) if good else QColor(255, 65, 54)
                    base.setAlpha(40 + int(160 * v / peak))
                    item.setBackground(QBrush(base))
                self.confusion.setItem(r, c, item)

    def _fill_errors(self, report: ErrorReport) -> None:
        tide = report.tide
        self.errors.setRowCount(len(ERROR_ROWS) if tide is not None else 0)
        if tide is None:
            return
        counts = tide.counts()
        for r, key in enumerate(ERROR_ROWS):
            self.errors.setItem(r, 0, QTableWidgetItem(ERROR_TEXT[key]))
            self.errors.setItem(r, 1, _cell(f"{tide.dap.get(key, 0.0):.4f}"))
            self.errors.setItem(r, 2, _cell(str(counts.get(key, 0)), "click: list these objects"))

    def _plot_pr(self, report: ErrorReport) -> None:
        self.pr.clear()
        self.pr_points = {}
        for cid, name in zip(report.class_ids, report.class_names, strict=True):
            recall, precision, score = pr_curve(report, cid)
            if not len(recall):
                continue
            color = QColor(self.colors.get(cid, "#888888"))
            self.pr.plot(recall, precision, pen=pg.mkPen(color, width=2), name=name)
            # One clickable, hoverable point per operating point (each prediction's score).
            points = pg.ScatterPlotItem(
                x=recall, y=precision, data=[(cid, float(s), name) for s in score.tolist()],
                size=5, pen=None, brush=color, hoverable=True, hoverSize=10, tip=_pr_tip,
            )  # fmt: skip
            points.sigClicked.connect(self._pr_clicked)
            points.setZValue(1)  # above the operating-point marker, which would take the click
            self.pr.addItem(points)
            self.pr_points[cid] = points
            at = np.flatnonzero(score >= report.score)
            if len(at):
                i = int(at[-1])
                self.pr.plot([recall[i]], [precision[i]], pen=None, symbol="o", symbolSize=9,
                             symbolBrush=color, symbolPen="k")  # fmt: skip

    # --- clicks --------------------------------------------------------------------------

    def _emit(self, objects: list[ObjectRef]) -> None:
        self.objects_chosen.emit(objects)

    def _class_clicked(self, row: int, col: int) -> None:
        if self.report is None or row >= len(self._class_ids):
            return
        cid = self._class_ids[row]
        what = _COUNT_KEYS.get(self.columns[col])
        if what is None:
            self._emit(class_refs(self.report, cid))
        else:
            kind = "label" if what == "fn" else "prediction"
            self._emit(refs(self.report.items(what, cid), kind))

    def _pr_clicked(self, _item: Any, points: Any, _event: Any = None) -> None:
        """A click on PR points (the topmost first): the objects behind that point."""
        if self.report is None or points is None or not len(points):
            return
        cid, score, _name = points[0].data()
        self._emit(pr_point_refs(self.report, cid, score))

    def _confusion_clicked(self, row: int, col: int) -> None:
        if self.report is not None:
            self._emit(cell_refs(self.report, row, col))

    def _error_clicked(self, row: int, _col: int) -> None:
        if self.report is not None and row < len(ERROR_ROWS):
            self._emit(error_refs(self.report, ERROR_ROWS[row]))

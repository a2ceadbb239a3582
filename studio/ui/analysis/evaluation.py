"""The Evaluation view: a run's errors against the labels, every number clickable.

Per-class table (COCO AP, AP50, AP75, APs, APm, APl from pycocotools; precision, recall,
TP, FP, FN at the score threshold), PR curves per class with the threshold's operating
point, a confusion matrix (rows: label classes, columns: predicted classes, the last
row and column "background") and the TIDE-style error breakdown. Clicking a count, a
row, a cell or an error type emits `objects_chosen` with the `ObjectRef`s behind it.
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

from studio.ml.analysis.errors import BACKGROUND, ErrorReport
from studio.ui.analysis.work import ObjectRef, cell_refs, class_refs, error_refs, pr_curve, refs

CLASS_COLUMNS = ("class", "AP", "AP50", "AP75", "APs", "APm", "APl", "P", "R", "TP", "FP", "FN")
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
        self._build()

    def _build(self) -> None:
        self.summary = QLabel("No evaluation yet: predict, then Evaluate.")
        self.summary.setWordWrap(True)
        self.classes = _table(list(CLASS_COLUMNS), self._class_clicked)
        self.confusion = _table([], self._confusion_clicked)
        self.errors = _table(["error", "AP50 gained", "count"], self._error_clicked)
        self.pr = pg.PlotWidget(background="w")
        self.pr.setLabel("bottom", "recall")
        self.pr.setLabel("left", "precision")
        self.pr.setXRange(0, 1)
        self.pr.setYRange(0, 1.02)
        self.pr.addLegend(offset=(-10, 10))
        tabs = QTabWidget()
        tabs.addTab(self.confusion, "Confusion (rows: labels)")
        tabs.addTab(self.errors, "Errors (TIDE)")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.pr)
        split.addWidget(tabs)
        split.setSizes([500, 500])  # the confusion matrix needs room as much as the curves
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(self.classes)
        vsplit.addWidget(split)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(vsplit, 1)

    def set_colors(self, colors: dict[int, str]) -> None:
        self.colors = dict(colors)

    # --- filling -------------------------------------------------------------------------

    def set_report(self, report: ErrorReport | None) -> None:
        self.report = report
        if report is None:
            self.summary.setText("No evaluation yet: predict, then Evaluate.")
            for t in (self.classes, self.confusion, self.errors):
                t.setRowCount(0)
            self.pr.clear()
            return
        total = report.total()
        n = len(set(report.labels.image_id.tolist()) | set(report.dets.image_id.tolist()))
        self.summary.setText(
            f"{n} images, IoU ≥ {report.iou:.2f}, score ≥ {report.score:.2f}: "
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
        self.classes.setRowCount(len(rows))
        for r, (_cid, name, data) in enumerate(rows):
            self.classes.setItem(r, 0, QTableWidgetItem(name))
            for c, col in enumerate(CLASS_COLUMNS[1:], 1):
                key = _AP_KEYS.get(col) or _COUNT_KEYS.get(col)
                if key is None:
                    key = "precision" if col == "P" else "recall"
                tip = "click: list these objects" if col in _COUNT_KEYS else ""
                self.classes.setItem(r, c, _cell(_fmt(data.get(key)), tip))
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
        for cid, name in zip(report.class_ids, report.class_names, strict=True):
            recall, precision, score = pr_curve(report, cid)
            if not len(recall):
                continue
            color = QColor(self.colors.get(cid, "#888888"))
            self.pr.plot(recall, precision, pen=pg.mkPen(color, width=2), name=name)
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
        what = _COUNT_KEYS.get(CLASS_COLUMNS[col])
        if what is None:
            self._emit(class_refs(self.report, cid))
        else:
            kind = "label" if what == "fn" else "prediction"
            self._emit(refs(self.report.items(what, cid), kind))

    def _confusion_clicked(self, row: int, col: int) -> None:
        if self.report is not None:
            self._emit(cell_refs(self.report, row, col))

    def _error_clicked(self, row: int, _col: int) -> None:
        if self.report is not None and row < len(ERROR_ROWS):
            self._emit(error_refs(self.report, ERROR_ROWS[row]))

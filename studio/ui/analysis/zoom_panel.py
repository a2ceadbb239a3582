"""The Zoom scales view: how many feature-grid cells the project's objects cover.

For a model (a run, or a registered model name) at an input size: the table of IDEAS.md
for one box (the project's median object unless a box size is given), rows per zoom,
cells per level, cells below one flagged; histograms of the objects by cells covered
per level at a chosen zoom (click a bar: `objects_chosen` lists those objects); the share
below one and two cells per class; the recommendation; and the measured view
(`zoom_measure`). The analysis runs on a worker thread (`zoom_work.static_zoom`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.ml.analysis.zoom import DEFAULT_SCALES, format_cells, format_pixels, parse_scales
from studio.ml.analysis.zoom_advice import percent
from studio.ui.analysis.predict_bar import FollowsCurrentModel, runs_for_combo
from studio.ui.analysis.zoom_histogram import CellHistogram
from studio.ui.analysis.zoom_measure import ZoomMeasureView
from studio.ui.analysis.zoom_work import ZoomChoice, ZoomResult, static_zoom
from studio.ui.common.combos import narrow
from studio.ui.common.concurrency import Task, run_task
from studio.ui.common.scrolled import scrolled

BELOW_ONE = QColor("#f8d0d0")  # the background of a cell below one grid cell
MODEL_NAMES = (  # offered without importing the registry (torch) on the GUI thread
    "composable", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn", "ssdlite320_mobilenet_v3_large",
)  # fmt: skip
RUN, MODEL = "run", "model"
ROW_HEIGHT = 22  # compact table rows: the dock holds tables and two plots


def _table() -> QTableWidget:
    t = QTableWidget(0, 0)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return t


def _fit_height(table: QTableWidget) -> None:
    """Tall enough for every row (up to 8), so a short table is never a scrolled sliver."""
    rows = min(table.rowCount(), 8)
    height = table.horizontalHeader().height() + 2 * table.frameWidth() + 2
    height += sum(table.rowHeight(r) for r in range(rows))
    table.setMinimumHeight(height)
    table.setMaximumHeight(height if table.rowCount() <= 8 else 16_777_215)


def _cell(text: str, tip: str = "", background: QColor | None = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if tip:
        item.setToolTip(tip)
    if background is not None:  # light tints: dark text on them, in the dark theme too
        item.setBackground(QBrush(background))
        item.setForeground(QBrush(QColor("black")))
    return item


class ZoomPanel(QWidget):
    objects_chosen = Signal(object)  # list[ObjectRef]
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.result: ZoomResult | None = None
        self.task: Task | None = None
        self._generation = 0  # analyses started; only the latest one's result is shown
        self._follow = FollowsCurrentModel()
        self._build()

    # --- building ----------------------------------------------------------------------

    def _build(self) -> None:
        # Everything scrolls when the dock is shorter than the tables and plots need.
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addLayout(self._build_controls())
        self.status = QLabel("")
        # An error naming a long path must not widen the dock: cut at the dock's width, whole
        # in the tooltip. (Word wrap here left the panel a screen of blank space.)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.status)
        # The tables at their full height above the splitter: in it, a short dock squeezed
        # their pane below its rows and drew them over the lines beneath (the panel
        # scrolls instead).
        lay.addWidget(self._build_tables())
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._build_histogram())
        self.measured = ZoomMeasureView()
        self.measured.message.connect(self.message)
        split.addWidget(self.measured)
        for i, stretch in enumerate((1, 1)):
            split.setStretchFactor(i, stretch)
        split.setChildrenCollapsible(False)
        lay.addWidget(split, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolled(body, fit=True))  # vertically; as wide as its controls

    def _build_controls(self) -> QFormLayout:
        self.model = narrow(QComboBox())
        self.model.currentIndexChanged.connect(lambda _i: self._target_changed())
        self.image_size = QSpinBox()
        self.image_size.setRange(0, 8192)
        self.image_size.setSingleStep(32)
        self.image_size.setSpecialValueText("model's own")
        self.box = QSpinBox()
        self.box.setRange(0, 8192)
        self.box.setSpecialValueText("median object")
        self.box.setSuffix(" px")
        self.scales = QLineEdit(", ".join(f"{s:g}" for s in DEFAULT_SCALES))
        self.analyse_btn = QPushButton("Analyse")
        self.analyse_btn.clicked.connect(self.analyse)
        sizes = QHBoxLayout()
        for label, w in (("input", self.image_size), ("box", self.box)):
            sizes.addWidget(QLabel(label))
            sizes.addWidget(w)
        sizes.addWidget(self.analyse_btn)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Sizes", sizes)
        form.addRow("Zooms", self.scales)
        return form

    def _build_tables(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        self.box_label = QLabel("")
        self.box_label.setWordWrap(True)  # a long model name must not widen the panel
        self.table = _table()
        self.classes = _table()
        self.advice = QLabel("")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.box_label)
        lay.addWidget(self.table)
        lay.addWidget(QLabel("Per class: share below one cell (below two) at zoom 1"))
        lay.addWidget(self.classes)
        lay.addWidget(self.advice)
        return w

    def _build_histogram(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Objects by cells covered, at zoom"))
        self.hist_zoom = QComboBox()
        self.hist_zoom.currentIndexChanged.connect(lambda _i: self._show_histogram())
        row.addWidget(self.hist_zoom)
        row.addWidget(QLabel("(click a bar to list its objects)"))
        row.addStretch(1)
        self.histogram = CellHistogram()
        self.histogram.setMinimumHeight(150)
        self.histogram.bar_clicked.connect(self._bar_clicked)
        lay.addLayout(row)
        lay.addWidget(self.histogram, 1)
        return w

    # --- project and model -------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.result = None
        self._generation += 1
        self.reload_runs()
        self._clear()

    def reload_runs(self) -> None:
        keep = self.model.currentData()
        runs = runs_for_combo(self.project) if self.project else []
        keep = self._follow.choose(keep, (RUN, runs[0][0]) if runs else (MODEL, MODEL_NAMES[0]))
        self.model.blockSignals(True)
        self.model.clear()
        for run_id, label in runs:
            self.model.addItem(f"run {label}", (RUN, run_id))
        for name in MODEL_NAMES:
            self.model.addItem(f"model {name}", (MODEL, name))
        self.model.setCurrentIndex(max(self._find(keep), 0))
        self.model.blockSignals(False)
        self._target_changed()

    def set_model(self, kind: str, value: int | str) -> None:
        """Choose a run (kind "run", its id) or a model (kind "model", its name), adding
        a model name the combo does not offer yet."""
        at = self._find((kind, value))
        if at < 0 and kind == MODEL:
            self.model.addItem(f"model {value}", (MODEL, value))
            at = self.model.count() - 1
        self.model.setCurrentIndex(at)

    def _find(self, data: object) -> int:
        # QComboBox.findData cannot compare Python tuples: compare here.
        items = (self.model.itemData(i) for i in range(self.model.count()))
        return next((i for i, d in enumerate(items) if d is not None and tuple(d) == data), -1)

    def choice(self) -> ZoomChoice:
        """The analysis the controls ask for; ValueError naming a bad zoom scale."""
        kind, value = self.model.currentData() or (MODEL, None)
        return ZoomChoice(
            run_id=int(value) if kind == RUN else None,
            model=str(value) if kind == MODEL and value else None,
            image_size=self.image_size.value() or None,
            box=float(self.box.value()) or None,
            scales=parse_scales(self.scales.text().replace(" ", "")),
        )

    def _target_changed(self) -> None:
        kind, value = self.model.currentData() or (MODEL, None)
        try:
            scales = self.choice().scales
        except ValueError:
            scales = DEFAULT_SCALES
        path = self.project.path if self.project else None
        self.measured.set_target(path, int(value) if kind == RUN else None, scales)

    # --- analysing ---------------------------------------------------------------------

    def analyse(self) -> None:
        """Run the static analysis of the chosen model in the background."""
        if self.project is None:
            return
        try:
            choice = self.choice()
        except ValueError as exc:
            self.status.setText(f"Zooms: {exc}")
            return
        self._target_changed()
        self._generation += 1
        generation, project_dir = self._generation, self.project.path
        self.status.setText("Analysing…")
        self.status.setToolTip("")  # the last error's, if any
        self.analyse_btn.setEnabled(False)

        def done(result: ZoomResult) -> None:
            if generation == self._generation:
                self.analyse_btn.setEnabled(True)
                self.show_result(result)

        def failed(exc: BaseException) -> None:
            if generation == self._generation:
                self.analyse_btn.setEnabled(True)
                self.status.setText(f"Cannot analyse: {exc}")
                self.status.setToolTip(self.status.text())

        self.task = run_task(lambda p: static_zoom(project_dir, choice, p), done, failed)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's hook name
        super().showEvent(event)
        if self.result is None and self.project is not None and not self.busy:
            self.analyse()

    # --- showing -----------------------------------------------------------------------

    def _clear(self) -> None:
        for t in (self.table, self.classes):
            t.setRowCount(0)
            t.setColumnCount(0)
        self.hist_zoom.clear()
        self.histogram.set_counts([], [])
        self.advice.setText("")
        self.box_label.setText("")
        self.status.setText("")

    def show_result(self, result: ZoomResult) -> None:
        self.result = result
        report = result.report
        m = report.model
        what = "the median object" if report.box_is_median else "a box"
        self.box_label.setText(
            f"{m.model} at input {m.image_size}: {what} of {format_pixels(report.box)} px"
            " (sqrt of box area, at the model input) covers"
        )
        self.status.setText(f"{report.analysis.count if report.analysis else 0} objects")
        self._fill_table()
        self._fill_classes()
        self.advice.setText(report.advice)
        self.hist_zoom.blockSignals(True)
        self.hist_zoom.clear()
        self.hist_zoom.addItems([f"{row.zoom:g}" for row in report.rows])
        self.hist_zoom.blockSignals(False)
        self._show_histogram()

    def _fill_table(self) -> None:
        report = self.result.report
        levels = report.model.levels
        heads = ["zoom", "image", "box (px)"]
        heads += [f"cells on {lv.label}" if i == 0 else f"on {lv.label}"
                  for i, lv in enumerate(levels)]  # fmt: skip
        self.table.setColumnCount(len(heads))
        self.table.setHorizontalHeaderLabels(heads)
        self.table.setRowCount(len(report.rows))
        for r, row in enumerate(report.rows):
            values = [f"{row.zoom:.3f}", str(row.image), format_pixels(row.box)]
            for c, text in enumerate(values):
                self.table.setItem(r, c, _cell(text))
            for k, lv in enumerate(levels):
                below = lv.name in row.below_one
                text = format_cells(row.cells[lv.name])
                tip = f"below one cell of {lv.label}: hard to detect" if below else ""
                self.table.setItem(r, 3 + k, _cell(text, tip, BELOW_ONE if below else None))
        _fit_height(self.table)

    def _fill_classes(self) -> None:
        report = self.result.report
        levels = report.model.levels
        analysis = report.analysis
        classes = analysis.classes if analysis else {}
        self.classes.setColumnCount(2 + len(levels))
        self.classes.setHorizontalHeaderLabels(["class", "objects", *(lv.label for lv in levels)])
        self.classes.setRowCount(len(classes))
        for r, (name, (count, shares)) in enumerate(classes.items()):
            self.classes.setItem(r, 0, QTableWidgetItem(name))
            self.classes.setItem(r, 1, _cell(str(count)))
            for k, lv in enumerate(levels):
                s = shares[lv.name]
                bg = BELOW_ONE if s.below_1 > 0.1 else None
                text = f"{percent(s.below_1)} ({percent(s.below_2)})"
                self.classes.setItem(r, 2 + k, _cell(text, background=bg))
        _fit_height(self.classes)

    def _show_histogram(self) -> None:
        if self.result is None or self.hist_zoom.currentIndex() < 0:
            return
        report, z = self.result.report, self.hist_zoom.currentIndex()
        analysis = report.analysis
        if analysis is None:
            return
        shares = analysis.by_zoom[z][1]
        levels = report.model.levels
        self.histogram.set_counts(
            [lv.label for lv in levels], [shares[lv.name].histogram for lv in levels]
        )

    def _bar_clicked(self, level: int, bin_index: int) -> None:
        if self.result is None:
            return
        refs = self.result.refs(self.hist_zoom.currentIndex(), level, bin_index)
        label = self.result.report.model.levels[level].label
        self.message.emit(f"{len(refs)} objects in that bar of {label}")
        if refs:
            self.objects_chosen.emit(refs)

    def shutdown(self) -> None:
        self._generation += 1
        self.measured.cancel()

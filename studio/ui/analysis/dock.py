"""The Inspect dock: a run's predictions on the canvas, its errors against the labels,
and review (accept predictions as labels).

The window hands it the canvas (`attach_canvas`: the dock drives the canvas's
"predictions" layer and layer toggles through the canvas's public methods) and where
the browser's selection is (`selected_images`). Everything the dock finds is emitted
as `objects_chosen` (a list of `work.ObjectRef`); the window shows those images in the
browser and calls `zoom_to` with the one opened. Each new report (full evaluation, or a
re-count after the slider, the IoU or a label changed) is also emitted per image as
`image_errors` ({} when there is none), for the browser's counts, filters and sorts.
Evaluation runs on a worker thread; moving the score slider or the IoU re-counts without
AP (AP and the TIDE breakdown do not depend on the score threshold; TIDE matches at 0.5
whatever the IoU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.ml.analysis.errors import ErrorReport
from studio.ml.analysis.per_image import PerImageErrors, per_image_errors
from studio.ui.analysis.evaluation import EvaluationView
from studio.ui.analysis.predict_bar import ALL_SPLITS, PredictBar
from studio.ui.analysis.review_panel import ReviewPanel
from studio.ui.analysis.work import ObjectRef, evaluate, same_scoring
from studio.ui.common.bridge import ProjectBridge
from studio.ui.common.check_box import CheckBox
from studio.ui.common.concurrency import run_task
from studio.ui.common.scrolled import scrolled

SLIDER_STEPS = 100  # the score slider's resolution: 0.01
RECOUNT_MS = 120  # debounce of re-counting while the slider moves


class InspectDock(QDockWidget):
    objects_chosen = Signal(object)  # list[ObjectRef]
    message = Signal(str)  # one line for the status bar
    image_errors = Signal(object)  # PerImageErrors (dict: image id -> ImageErrors), or {}

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Inspect", parent)
        self.setObjectName("inspect_dock")
        self.project: Project | None = None
        self.canvas: Any = None
        self.report: ErrorReport | None = None
        self._bridge: ProjectBridge | None = None
        self._generation = 0  # evaluations started; only the latest one's result is shown
        self._build()
        self._recount = QTimer(self, singleShot=True, interval=RECOUNT_MS)
        self._recount.timeout.connect(lambda: self.evaluate(full=False))

    # --- building ------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        lay = QVBoxLayout(body)
        self.bar = PredictBar()
        self.bar.run_changed.connect(self._on_run_changed)
        self.bar.predicted.connect(self._on_predicted)
        lay.addWidget(self.bar)
        lay.addLayout(self._build_view_controls())
        self.tabs = QTabWidget()
        self.review = ReviewPanel()
        self.review.message.connect(self.message)
        self.evaluation = EvaluationView()
        self.evaluation.objects_chosen.connect(self.objects_chosen)
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self._build_eval_tab(), "Evaluation")
        lay.addWidget(self.tabs, 1)
        self.setWidget(scrolled(body, fit=True))  # a short screen scrolls it

    def _build_view_controls(self) -> QHBoxLayout:
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setValue(30)
        self.slider.valueChanged.connect(self._on_score)
        self.score_label = QLabel("score ≥ 0.30")
        self.iou = QDoubleSpinBox()
        self.iou.setRange(0.05, 1.0)
        self.iou.setSingleStep(0.05)
        self.iou.setValue(0.5)
        self.iou.setPrefix("IoU ≥ ")
        self.iou.valueChanged.connect(self._on_iou)
        self.show_labels = CheckBox("Labels")
        self.show_preds = CheckBox("Predictions")
        self.show_errors = CheckBox("Errors")
        for box in (self.show_labels, self.show_preds, self.show_errors):
            box.setChecked(True)
        self.show_labels.toggled.connect(self._apply_layers)
        self.show_preds.toggled.connect(self._apply_layers)
        self.show_errors.toggled.connect(self._on_errors_toggled)
        row = QHBoxLayout()
        row.addWidget(self.score_label)
        row.addWidget(self.slider, 1)
        for w in (self.iou, self.show_labels, self.show_preds, self.show_errors):
            row.addWidget(w)
        return row

    def _build_eval_tab(self) -> QWidget:
        w = QWidget()
        self.eval_split = QComboBox()
        self.eval_split.addItems(["val", "test", "train", ALL_SPLITS])
        self.eval_btn = QPushButton("Evaluate")
        self.eval_btn.clicked.connect(lambda: self.evaluate(full=True))
        top = QHBoxLayout()
        top.addWidget(QLabel("Images"))
        top.addWidget(self.eval_split)
        top.addWidget(self.eval_btn)
        top.addStretch(1)
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.evaluation, 1)
        return w

    # --- wiring to the window ------------------------------------------------------------

    def attach_canvas(self, canvas: Any, selected_images: Callable[[], list[int]]) -> None:
        """Drive `canvas` (a CanvasView: `layer`, `set_layer_visible`, `image_id`,
        `image_shown`); `selected_images` gives the browser's selected image ids."""
        self.canvas = canvas
        self.review.canvas = canvas
        canvas.selection_changed.connect(self.review.canvas_selected)
        self.review.layer = self.layer
        self.bar.current_image = lambda: canvas.image_id
        self.bar.selected_images = selected_images
        canvas.image_shown.connect(lambda _id: self.review.refresh())
        self.visibilityChanged.connect(self._apply_layers)
        self._push_settings()
        self._apply_layers()

    @property
    def layer(self) -> Any:
        """The canvas's predictions layer (None before `attach_canvas`)."""
        return self.canvas.layer("predictions") if self.canvas is not None else None

    def set_project(self, project: Project | None) -> None:
        if self._bridge is not None:
            self._bridge.disconnect_project()
            self._bridge = None
        self.project = project
        self.review.project = project
        self._set_report(None)
        if project is not None:
            self._bridge = ProjectBridge(project.events)
            self._bridge.connect_queued("annotations_changed", self._on_annotations_changed)
            # A review marked done makes the pre-labelled shapes labels.
            self._bridge.connect_queued("images_changed", self._on_annotations_changed)
            self._bridge.connect_queued("runs_changed", lambda _r: self.bar.reload_runs())
            self._bridge.connect_queued("classes_changed", self._on_classes_changed)
            self._on_classes_changed()
        self.bar.set_project(project)
        self._on_run_changed(self.bar.run_id)

    def shutdown(self) -> None:
        self.bar.cancel()
        self.set_project(None)

    # --- settings to the layer -----------------------------------------------------------

    @property
    def score(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def _push_settings(self) -> None:
        layer = self.layer
        if layer is None:
            return
        layer.set_score_threshold(self.score)
        layer.set_iou(self.iou.value())
        layer.set_errors_shown(self.show_errors.isChecked())
        layer.set_run(self.bar.run_id)
        self.review.refresh()

    def _apply_layers(self, *_args: object) -> None:
        """Predictions (and their errors) on the canvas while this dock is in sight and
        its Predictions box is on; labels unless the dock is in sight with its Labels box
        off. Closing the dock gives labelling its canvas back."""
        if self.canvas is None:
            return
        shown = self.isVisible()
        self.canvas.set_layer_visible("predictions", shown and self.show_preds.isChecked())
        self.canvas.set_layer_visible("annotations", not shown or self.show_labels.isChecked())
        self.review.refresh()

    def _on_score(self, value: int) -> None:
        self.score_label.setText(f"score ≥ {value / SLIDER_STEPS:.2f}")
        if self.layer is not None:
            self.layer.set_score_threshold(self.score)
            self.review.refresh()
        if self.report is not None:
            self._recount.start()

    def _on_iou(self, value: float) -> None:
        if self.layer is not None:
            self.layer.set_iou(value)
            self.review.refresh()
        if self.report is not None:
            self._recount.start()

    def _on_errors_toggled(self, on: bool) -> None:
        if self.layer is not None:
            self.layer.set_errors_shown(on)

    def _on_run_changed(self, run_id: int | None) -> None:
        self._set_report(None)
        if self.layer is not None:
            self.layer.set_run(run_id)
            self.review.refresh()

    def _on_predicted(self, _result: object) -> None:
        if self.layer is not None:
            self.layer.reload()
            self.review.refresh()
        if self.report is not None or self.tabs.currentIndex() == 1:
            self.evaluate(full=True)

    def _on_annotations_changed(self, image_ids: object) -> None:
        layer = self.layer
        if layer is not None and layer.image is not None:
            if image_ids is None or layer.image.id in image_ids:  # type: ignore[operator]
                layer.reload_labels()
                self.review.refresh()
        if self.report is not None:
            self._recount.start()  # counts follow a fixed label at once

    def _on_classes_changed(self) -> None:
        if self.project is None:
            return
        classes = self.project.classes()
        colors = {c.id: c.color for c in classes}
        self.evaluation.set_colors(colors)
        if self.layer is not None:
            self.layer.set_classes(colors, {c.id: c.name for c in classes})

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, full: bool = True) -> None:
        """Score the run against the labels in the background; `full`: with AP and the
        error breakdown (else the last ones are kept and only the counts are redone)."""
        run_id = self.bar.run_id
        if self.project is None or run_id is None:
            return
        split = self.eval_split.currentText()
        split_arg = None if split == ALL_SPLITS else split
        folder, iou, score = self.project.path, self.iou.value(), self.score
        last = self.report
        with_ap = full or last is None
        self._generation += 1
        gen = self._generation

        def work(progress: Any) -> tuple[ErrorReport, PerImageErrors]:
            report = evaluate(folder, run_id, split=split_arg, iou=iou, score=score,
                              with_ap=with_ap, progress=progress)  # fmt: skip
            return report, per_image_errors(report)

        def done(result: tuple[ErrorReport, PerImageErrors]) -> None:
            if gen != self._generation:
                return  # a later evaluation is on its way
            report, per_image = result
            again = False
            if not with_ap and last is not None:
                # The last report's AP and breakdown hold if it had them (a recount's own
                # report has none while the full evaluation it asked for runs) and it
                # scored the same labels, images and predictions; else they follow.
                if last.tide is not None and same_scoring(last, report):
                    report.aps, report.tide = last.aps, last.tide
                else:
                    again = True
            self._set_report(report, per_image)
            self.eval_btn.setEnabled(True)
            if again:
                self.evaluate(full=True)

        def failed(exc: BaseException) -> None:
            if gen == self._generation:
                self.evaluation.summary.setText(str(exc))
                self.eval_btn.setEnabled(True)

        self.eval_btn.setEnabled(False)
        self.evaluation.summary.setText("Evaluating…")
        run_task(work, done, failed)

    def _set_report(
        self, report: ErrorReport | None, per_image: PerImageErrors | None = None
    ) -> None:
        had = self.report is not None
        self.report = report
        self.evaluation.set_report(report)
        if report is not None or had:
            self.image_errors.emit(per_image if per_image is not None else {})

    # --- going to an object --------------------------------------------------------------

    def zoom_to(self, ref: ObjectRef, margin: float = 3.0) -> None:
        """With `ref`'s image shown on the canvas: zoom so that the object fills about
        1/`margin` of the view, centred, and select it (a label on the canvas, a
        prediction in the review list)."""
        if self.canvas is None or self.project is None or self.canvas.image_id != ref.image_id:
            return
        if ref.kind == "label":
            anns = self.project.annotations(ids=[ref.object_id])
            bbox = anns[0].bbox if anns else None
        else:
            row = self.layer.row(ref.object_id) if self.layer is not None else None
            bbox = row["bbox"] if row else None
        if bbox is None:
            return
        x, y, w, h = bbox
        vp = self.canvas.viewport().size()
        zoom = min(vp.width() / max(w * margin, 1.0), vp.height() / max(h * margin, 1.0))
        self.canvas.set_zoom(zoom)
        self.canvas.centerOn(x + w / 2, y + h / 2)
        if ref.kind == "label":
            self.canvas.select([ref.object_id])
        else:
            self.layer.select(ref.object_id)
            self.review.select_prediction(ref.object_id)

"""The run chooser and the Predict buttons, with inline progress and Cancel.

Prediction runs on a worker thread through `run_task` (`work.predict_images`: torch is
imported there, never on the GUI thread); the bar shows its progress and stops it at the
next image on Cancel (what was predicted before stays stored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from studio.core.kinds import RunStatus, Split
from studio.core.project import Project
from studio.ui.analysis.work import PredictResult, predict_images
from studio.ui.common.combos import narrow
from studio.ui.common.concurrency import Task, run_task

ALL_SPLITS = "all images"


def runs_for_combo(project: Project) -> list[tuple[int, str]]:
    """(run id, label) of the runs with weights to predict with, the current model
    first, then the newest first."""
    current = project.current_model()
    out = []
    for r in sorted(project.runs(), key=lambda r: (r.id != current, -r.id)):
        if r.status == RunStatus.FAILED and not (r.dir / "last.pt").is_file():
            continue
        star = " ★ current model" if r.id == current else ""
        out.append((r.id, f"#{r.id} {r.name} ({r.status}){star}"))
    return out


class FollowsCurrentModel:
    """Which run a run box shows when its list is re-read. Its first entry is the project's
    model (else the newest run); a box showing that entry follows it to the next one (a run
    just trained), while a run the user chose in its place stays chosen."""

    def __init__(self) -> None:
        self.default: Any = None  # the first entry's data at the last re-read

    def choose(self, chosen: Any, first: Any) -> Any:
        """The entry (its data) to show, `chosen` being the one shown and `first` the
        re-read list's first."""
        following = chosen is None or chosen == self.default
        self.default = first
        return first if following else chosen


def predicted_text(result: PredictResult) -> str:
    """One line on a finished prediction (a PredictReport): "Predicted 60 images, 6,000
    predictions stored." with the images kept as they were (their predictions already
    from this checkpoint) and those whose file is missing, when there are any."""
    n = result.predicted
    text = f"Predicted {n:,} image{'s' if n != 1 else ''}, {result.stored:,} predictions stored"
    if result.skipped:
        text += f"; {result.skipped:,} already had this checkpoint's predictions"
    if result.missing_files:
        text += f"; {result.missing_files:,} image files not found"
    if result.unreadable:
        text += f"; {result.unreadable:,} image files could not be read"
    return text + "."


class PredictBar(QWidget):
    """Run combo, Predict image / selection / split / all, progress and Cancel."""

    run_changed = Signal(object)  # run id or None
    predicted = Signal(object)  # PredictResult
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.current_image: Callable[[], int | None] = lambda: None
        self.selected_images: Callable[[], list[int]] = lambda: []
        self.task: Task | None = None
        self._follow = FollowsCurrentModel()
        self._build()

    def _build(self) -> None:
        self.runs = narrow(QComboBox())
        self.runs.currentIndexChanged.connect(lambda _i: self.run_changed.emit(self.run_id))
        self.split = QComboBox()
        # In Evaluate's order, val first: a default of train predicted 240 images that
        # Evaluate (val) then could not use.
        self.split.addItems([Split.VAL, Split.TEST, Split.TRAIN, ALL_SPLITS])
        self.btn_image = QPushButton("Predict image")
        self.btn_selection = QPushButton("Predict selection")
        self.btn_split = QPushButton("Predict split")
        self.btn_all = QPushButton("Predict all")
        self.btn_image.clicked.connect(lambda: self.predict_image())
        self.btn_selection.clicked.connect(lambda: self.predict(self.selected_images()))
        self.btn_split.clicked.connect(lambda: self.predict_split(self.split.currentText()))
        self.btn_all.clicked.connect(lambda: self.predict(None))
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setVisible(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.status = QLabel("")
        self.status.setWordWrap(True)  # an error names a path: it must not widen the dock
        g = QGridLayout(self)
        g.setContentsMargins(0, 0, 0, 0)
        g.addWidget(QLabel("Run"), 0, 0)
        g.addWidget(self.runs, 0, 1, 1, 4)
        for c, b in enumerate((self.btn_image, self.btn_selection, self.btn_all), 0):
            g.addWidget(b, 1, c)
        g.addWidget(self.split, 1, 3)
        g.addWidget(self.btn_split, 1, 4)
        g.addWidget(self.progress, 2, 0, 1, 4)
        g.addWidget(self.cancel_btn, 2, 4)
        g.addWidget(self.status, 3, 0, 1, 5)

    # --- runs ----------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.cancel()
        self.project = project
        self.reload_runs()

    def reload_runs(self) -> None:
        chosen = self.run_id
        runs = runs_for_combo(self.project) if self.project else []
        keep = self._follow.choose(chosen, runs[0][0] if runs else None)
        self.runs.blockSignals(True)
        self.runs.clear()
        for run_id, label in runs:
            self.runs.addItem(label, run_id)
        at = self.runs.findData(keep) if keep is not None else -1
        self.runs.setCurrentIndex(at if at >= 0 else 0 if self.runs.count() else -1)
        self.runs.blockSignals(False)
        if self.run_id != chosen:
            self.run_changed.emit(self.run_id)

    @property
    def run_id(self) -> int | None:
        data = self.runs.currentData()
        return int(data) if data is not None else None

    def set_run(self, run_id: int) -> None:
        at = self.runs.findData(run_id)
        if at >= 0:
            self.runs.setCurrentIndex(at)

    # --- predicting ----------------------------------------------------------------------

    def predict_image(self) -> Task | None:
        image = self.current_image()
        return self.predict([image]) if image is not None else None

    def predict_split(self, split: str) -> Task | None:
        if self.project is None:
            return None
        if split == ALL_SPLITS:
            return self.predict(None)
        return self.predict([im.id for im in self.project.images(split)])

    def predict(self, image_ids: list[int] | None) -> Task | None:
        """Predict these images (None: all) with the chosen run, in the background."""
        if self.project is None or self.run_id is None or self.busy:
            return None
        if image_ids is not None and not image_ids:
            self.status.setText("No images to predict.")
            return None
        folder, run_id = self.project.path, self.run_id
        self.task = task = run_task(
            lambda progress: predict_images(folder, run_id, image_ids, progress),
            self._done, self._failed,
        )  # fmt: skip
        task.progressed.connect(self._progressed)
        task.cancelled.connect(self._cancelled)
        self._set_busy(True)
        return task

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done

    def cancel(self) -> None:
        if self.busy and self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling…")

    def _set_busy(self, on: bool) -> None:
        for b in (self.btn_image, self.btn_selection, self.btn_split, self.btn_all, self.runs):
            b.setEnabled(not on)
        self.progress.setVisible(on)
        self.cancel_btn.setVisible(on)
        if on:
            self.progress.setRange(0, 0)
            self.status.setText("Loading the model…")

    def _progressed(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"{text}: {done}/{total}")

    def _done(self, result: PredictResult) -> None:
        self._set_busy(False)
        self.status.setText(predicted_text(result))
        self.predicted.emit(result)

    def _failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        self.status.setText(f"Prediction failed: {exc}")
        self.failed.emit(str(exc))

    def _cancelled(self) -> None:
        self._set_busy(False)
        self.status.setText("Prediction cancelled; images done so far keep their predictions.")
        self.predicted.emit(None)

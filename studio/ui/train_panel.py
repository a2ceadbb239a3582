"""The training dock: one Train button, an Advanced section, Stop and Resume, progress,
live plots and the runs list.

Train picks the model, recipe and device for the project (`studio.ml.preflight`), checks
what cannot work, creates the run and starts it in a `TrainingProcess` child, all but the
start in a worker thread. The GUI thread only polls the child's queue (every 150 ms,
never waiting), appends to numpy buffers and redraws at most 5 times a second. The child
runs at a lower CPU priority (nice 10, set from here on each of its threads), so on a
2-core machine the window stays responsive while training takes every core.

Runs started elsewhere (the command line) are read from the database every 2 seconds,
off the GUI thread, so they appear and plot live too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QDoubleValidator, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.ml.config import TrainConfig
from studio.ml.messages import (
    EpochMetrics,
    Failed,
    Finished,
    Iteration,
    Message,
    Notice,
    Started,
    Stopped,
)

from .runs_view import RunsView
from .train_checks import Eta, format_bytes, format_duration, lower_priority, process_rss
from .train_plots import RunCurves, TrainPlots, legend_label
from .workers import error_text, run_task

POLL_MS = 150  # the child's queue is read this often, without waiting
DB_REFRESH_MS = 2000  # runs list, and curves of runs trained by another process
UI_MIN_INTERVAL_S = 0.2  # progress text at most 5 times a second
KILL_AFTER_S = 20.0  # Stop turns into Kill when the run has not stopped by then
SETTINGS_KEY = "train_settings"
RESUMABLE = ("stopped", "failed", "queued")
MAX_SHOWN_RUNS = 10


WEIGHT_CHOICES = (  # label, weights, backbone_weights
    ("Pretrained (COCO; else ImageNet backbone)", "default", "imagenet"),
    ("ImageNet backbone only", "none", "imagenet"),
    ("None: train from scratch", "none", "none"),
    ("A weights file…", "file", "none"),
)
DEVICE_CHOICES = (
    ("Auto", "auto"),
    ("CPU", "cpu"),
    ("GPU (CUDA)", "cuda"),
    ("Apple GPU (MPS)", "mps"),
)
PARTS = ("backbone", "neck", "head")
SUMMARY_DELAY_MS = 400  # the summary is computed once the picks settle


def _panel_info(path: Path) -> Any:
    from studio.ml.preflight import panel_info

    return panel_info(path)


class AdvancedForm(QWidget):
    """Every setting the Train button otherwise picks. `overrides()` holds only what
    differs from the recipe (what the user changed), so a better recipe later still
    applies to the rest; settings it does not show (set from the command line or a test)
    are kept as they are."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.info: Any = None
        self._recipe: dict[str, Any] = TrainConfig().to_dict()
        self._extras: dict[str, Any] = {}
        self._filling = False
        self._executor: Any = None
        self._future: Any = None
        self._summary_key: tuple | None = None
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._build_model(form)
        self._build_length(form)
        self._build_data(form)
        self._summary_timer = QTimer(self, interval=SUMMARY_DELAY_MS, singleShot=True)
        self._summary_timer.timeout.connect(self._request_summary)
        self._summary_poll = QTimer(self, interval=200)
        self._summary_poll.timeout.connect(self._poll_summary)

    # --- building ---------------------------------------------------------------------------

    def _combo(self, items: Any = ()) -> QComboBox:
        combo = QComboBox()
        for label, data in items:
            combo.addItem(label, data)
        combo.currentIndexChanged.connect(self._emit_changed)
        return combo

    def _spin(self, lo: int, hi: int, special: str = "", step: int = 1) -> QSpinBox:
        spin = QSpinBox(minimum=lo, maximum=hi, singleStep=step)
        if special:
            spin.setSpecialValueText(special)
        spin.valueChanged.connect(self._emit_changed)
        return spin

    def _fspin(self, lo: float, hi: float, step: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(minimum=lo, maximum=hi, singleStep=step, decimals=2)
        spin.valueChanged.connect(self._emit_changed)
        return spin

    def _build_model(self, form: QFormLayout) -> None:
        self.model = self._combo([("Auto", "")])
        self.model.currentIndexChanged.connect(self._on_model)
        form.addRow("Model", self.model)
        self.parts = QWidget()
        grid = QVBoxLayout(self.parts)
        grid.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.part_combos = {}
        for part in PARTS:
            combo = self._combo()
            combo.setToolTip(f"The composable detector's {part}")
            combo.currentIndexChanged.connect(self._schedule_summary)
            self.part_combos[part] = combo
            row.addWidget(combo, 1)
        grid.addLayout(row)
        self.summary = QLabel()
        self.summary.setFont(QFont("monospace", 8))
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.summary)
        form.addRow("Parts", self.parts)
        self.weights = self._combo([(label, (w, b)) for label, w, b in WEIGHT_CHOICES])
        self.weights.currentIndexChanged.connect(self._update_visibility)
        self.weights_path = QLineEdit(placeholderText="path to a .pt state dict or checkpoint")
        self.weights_path.textChanged.connect(self._emit_changed)
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._browse_weights)
        self.weights_file = QWidget()
        row = QHBoxLayout(self.weights_file)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.weights_path, 1)
        row.addWidget(browse)
        form.addRow("Weights", self.weights)
        form.addRow("", self.weights_file)
        self.device = self._combo(DEVICE_CHOICES)
        form.addRow("Device", self.device)

    def _build_length(self, form: QFormLayout) -> None:
        self.epochs = self._spin(0, 10000, "no limit")
        self.budget = self._spin(0, 100000, "none")
        self.budget.setSuffix(" min")
        self.budget.setToolTip("Stop gracefully (and evaluate) after this many minutes")
        row = QHBoxLayout()
        row.addWidget(self.epochs, 1)
        row.addWidget(QLabel("time budget"))
        row.addWidget(self.budget, 1)
        form.addRow("Epochs", row)
        self.batch = self._spin(1, 512)
        self.image_size = self._spin(0, 4096, "model default", step=32)
        self.image_size.setSuffix(" px")
        self.image_size.valueChanged.connect(self._schedule_summary)
        row = QHBoxLayout()
        row.addWidget(self.batch, 1)
        row.addWidget(QLabel("image size"))
        row.addWidget(self.image_size, 1)
        form.addRow("Batch size", row)
        self.optimizer = self._combo([("AdamW", "adamw"), ("SGD (momentum 0.9)", "sgd")])
        self.lr = QLineEdit(placeholderText="auto")
        self.lr.setValidator(QDoubleValidator(0.0, 10.0, 8))
        self.lr.setToolTip("Head learning rate; empty: 1e-4 (AdamW) or 0.02 × batch / 16 (SGD)")
        self.lr.textChanged.connect(self._emit_changed)
        row = QHBoxLayout()
        row.addWidget(self.optimizer, 1)
        row.addWidget(QLabel("lr"))
        row.addWidget(self.lr, 1)
        form.addRow("Optimizer", row)
        self.freeze = self._spin(-1, 1000, "auto")
        self.freeze.setSuffix(" epochs")
        self.freeze.setToolTip(
            "Epochs the pretrained backbone stays frozen; auto: 1 with pretrained weights, else 0"
        )
        form.addRow("Freeze backbone", self.freeze)

    def _build_data(self, form: QFormLayout) -> None:
        self.hflip = self._fspin(0, 1, 0.1)
        self.jitter = self._fspin(0, 1, 0.05)
        row = QHBoxLayout()
        row.addWidget(QLabel("flip"))
        row.addWidget(self.hflip, 1)
        row.addWidget(QLabel("colour"))
        row.addWidget(self.jitter, 1)
        form.addRow("Augment", row)
        self.scale_lo = self._fspin(0.1, 4, 0.05)
        self.scale_hi = self._fspin(0.1, 4, 0.05)
        row = QHBoxLayout()
        row.addWidget(self.scale_lo, 1)
        row.addWidget(QLabel("to"))
        row.addWidget(self.scale_hi, 1)
        form.addRow("Scale ×", row)
        reset = QPushButton("Reset to the recipe")
        reset.clicked.connect(self.reset)
        form.addRow("", reset)

    # --- content ----------------------------------------------------------------------------

    def set_info(self, info: Any, settings: dict[str, Any]) -> None:
        """Fill the choices from a `preflight.PanelInfo` (None: empty) and show the recipe
        with the remembered `settings` on top."""
        self.info = info
        self._filling = True
        try:
            self.model.clear()
            self.model.addItem("Auto" + (f" ({info.auto_model})" if info else ""), "")
            for m in info.models if info else []:
                self.model.addItem(f"{m.name}  ({m.task.replace('_', ' ')})", m.name)
                self.model.setItemData(
                    self.model.count() - 1, m.description, Qt.ItemDataRole.ToolTipRole
                )
            for part, names in zip(
                PARTS, (info.backbones, info.necks, info.heads) if info else ((),) * 3, strict=True
            ):
                self.part_combos[part].clear()
                self.part_combos[part].addItems(names)
            self.device.setItemText(0, f"Auto ({info.device} here)" if info else "Auto")
        finally:
            self._filling = False
        self._apply(settings)

    def _apply(self, settings: dict[str, Any]) -> None:
        fields = set(self._recipe) | {"model", "model_options"}
        self._extras = {k: v for k, v in settings.items() if k not in self.values()}
        model = str(settings.get("model") or "")
        self._recipe = self._recipe_for(model)
        values = {**self._recipe, **{k: v for k, v in settings.items() if k in fields}}
        values["model"] = model
        self._filling = True
        try:
            for key, value in values.items():
                self._set_value(key, value)
        finally:
            self._filling = False
        self._update_visibility()
        self._schedule_summary()

    def _recipe_for(self, model: str) -> dict[str, Any]:
        if self.info is None:
            return TrainConfig().to_dict()
        from studio.ml.preflight import recipe

        return recipe(model or self.info.auto_model, self.info.device)

    def _set_value(self, key: str, value: Any) -> None:
        if key == "model":
            i = self.model.findData(value or "")
            if i < 0:  # a factory of one's own ("package.module:function")
                self.model.addItem(str(value), value)
                i = self.model.count() - 1
            self.model.setCurrentIndex(i)
        elif key == "model_options":
            defaults = self._part_defaults(str(self.model.currentData() or ""))
            for part, combo in self.part_combos.items():
                combo.setCurrentText(str((value or {}).get(part, defaults.get(part, ""))))
        elif key in ("weights", "backbone_weights"):
            self._set_weights(key, value)
        elif key == "epochs":
            self.epochs.setValue(int(value or 0))
        elif key == "time_budget":
            self.budget.setValue(round((value or 0) / 60))
        elif key in ("batch_size", "image_size"):
            (self.batch if key == "batch_size" else self.image_size).setValue(int(value or 0))
        elif key == "optimizer":
            self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(value)))
        elif key == "lr":
            self.lr.setText("" if value is None else f"{value:g}")
        elif key == "freeze_epochs":
            self.freeze.setValue(-1 if value is None else int(value))
        elif key in ("hflip", "color_jitter"):
            (self.hflip if key == "hflip" else self.jitter).setValue(float(value))
        elif key == "scale_range":
            self.scale_lo.setValue(float(value[0]))
            self.scale_hi.setValue(float(value[1]))
        elif key == "device":
            self.device.setCurrentIndex(max(0, self.device.findData(value)))

    def _set_weights(self, key: str, value: Any) -> None:
        weights, backbone = self.weights.currentData()
        if key == "weights":
            weights = value
        else:
            backbone = value
        if weights not in ("none", "default"):
            self.weights_path.setText(str(weights))
            weights = "file"
        for i, (_label, w, b) in enumerate(WEIGHT_CHOICES):
            if w == weights and (b == backbone or w == "file"):
                self.weights.setCurrentIndex(i)
                return

    def _part_defaults(self, model: str) -> dict[str, Any]:
        if self.info is None:
            return {}
        spec = next(
            (m for m in self.info.models if m.name == (model or self.info.auto_model)), None
        )
        if spec is None or spec.family != "composable":
            return {}
        return {**self.info.composable_defaults, **spec.options}

    def values(self) -> dict[str, Any]:
        """Every setting shown, as TrainConfig fields."""
        model = str(self.model.currentData() or "")
        defaults = self._part_defaults(model)
        options = {
            part: combo.currentText()
            for part, combo in self.part_combos.items()
            if defaults and combo.currentText() and combo.currentText() != defaults.get(part)
        }
        weights, backbone = self.weights.currentData() or ("default", "imagenet")
        if weights == "file":
            weights = self.weights_path.text().strip() or "none"
        lr = self.lr.text().strip().replace(",", ".")
        return {
            "model": model,
            "model_options": options,
            "weights": weights,
            "backbone_weights": backbone,
            "epochs": self.epochs.value() or None,
            "time_budget": float(self.budget.value() * 60) or None,
            "batch_size": self.batch.value(),
            "image_size": self.image_size.value() or None,
            "optimizer": self.optimizer.currentData(),
            "lr": float(lr) if lr else None,
            "freeze_epochs": None if self.freeze.value() < 0 else self.freeze.value(),
            "hflip": round(self.hflip.value(), 4),
            "color_jitter": round(self.jitter.value(), 4),
            "scale_range": [round(self.scale_lo.value(), 4), round(self.scale_hi.value(), 4)],
            "device": self.device.currentData(),
        }

    def overrides(self) -> dict[str, Any]:
        """The settings to remember: what differs from the recipe, plus unshown extras."""
        out = dict(self._extras)
        for key, value in self.values().items():
            if key in ("model", "model_options"):
                if value:
                    out[key] = value
            elif value != self._recipe.get(key):
                out[key] = value
        return out

    def reset(self) -> None:
        self._apply(dict(self._extras))
        self._emit_changed()

    # --- reactions --------------------------------------------------------------------------

    def _emit_changed(self) -> None:
        if not self._filling:
            self.changed.emit()

    def _on_model(self) -> None:
        if self._filling:
            return
        before, old = self.values(), self._recipe
        self._recipe = self._recipe_for(str(self.model.currentData() or ""))
        self._filling = True
        try:  # settings the user left at the old recipe follow the new one
            for key, value in self._recipe.items():
                if key in before and key != "model" and before[key] == old.get(key):
                    self._set_value(key, value)
            self._set_value("model_options", {})
        finally:
            self._filling = False
        self._update_visibility()
        self._schedule_summary()

    def _update_visibility(self) -> None:
        self.parts.setVisible(bool(self._part_defaults(str(self.model.currentData() or ""))))
        self.weights_file.setVisible((self.weights.currentData() or ("",))[0] == "file")

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights", "", "PyTorch weights (*.pt *.pth)")
        if path:
            self.weights_path.setText(path)

    # --- the composable detector's summary (in another process: it takes seconds) -----------

    def _schedule_summary(self) -> None:
        if not self._filling and self.parts.isVisibleTo(self) or self.parts.isVisible():
            self.summary.setText("computing…")
            self._summary_timer.start()

    def _request_summary(self) -> None:
        v = self.values()
        model = v["model"] or (self.info.auto_model if self.info else "")
        if not self._part_defaults(model):
            return
        key = (model, v["image_size"], tuple(sorted(v["model_options"].items())))
        if key == self._summary_key and self._future is None:
            return
        from studio.ml import preflight

        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(
                1, multiprocessing.get_context("spawn"), preflight.init_summary_worker
            )
        self._summary_key = key
        self.summary.setText("computing…")
        self._future = self._executor.submit(preflight.summary_text, *key[:2], dict(key[2]))
        self._future.key = key
        self._summary_poll.start()

    def _poll_summary(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._future = None
        self._summary_poll.stop()
        if future.key != self._summary_key:
            return self._request_summary()
        try:
            self.summary.setText(future.result())
        except Exception as e:  # a bad combination of parts: say why
            self.summary.setText(f"cannot build this model: {e}")

    def shutdown(self) -> None:
        self._summary_poll.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class StallMeter(QObject):
    """The event loop's responsiveness: how late a 10 ms timer fires. `max_ms` is the
    longest stall since `start()`; the panel runs it while it trains."""

    INTERVAL_MS = 10

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self, interval=self.INTERVAL_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.max_ms = 0.0
        self.samples = 0

    def start(self) -> None:
        self.max_ms, self.samples = 0.0, 0
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        late = (now - self._last) * 1000 - self.INTERVAL_MS
        self._last = now
        self.samples += 1
        self.max_ms = max(self.max_ms, late)


class TrainPanel(QDockWidget):
    """Training for the open project. `current_model_changed(run_id)` fires when a run
    finished and its best model became the project's current model."""

    current_model_changed = Signal(int)
    run_started = Signal(int)
    run_ended = Signal(int, str)  # run id, final status

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Training", parent)
        self.setObjectName("train_dock")
        self.project: Project | None = None
        self.ml: Any = None  # preflight.PanelInfo, once the worker has read it
        self._gen = 0  # bumped by set_project: late worker results for another project are dropped
        self._tp: Any = None  # the TrainingProcess this window runs
        self._run_id: int | None = None
        self._live: RunCurves | None = None
        self._pending: list[Message] | None = None  # a resume's messages until its history loads
        self._cache: dict[int, RunCurves] = {}
        self._loading: set[int] = set()
        self._refreshing = False
        self._current_model: int | None = None
        self._want_select: int | None = None
        self._last_iter: Iteration | None = None
        self._started: Started | None = None
        self._stop_asked = 0.0
        self._ui_at = 0.0
        self._rss_at = 0.0
        self._rss: int | None = None
        self.eta = Eta()
        self.stall = StallMeter(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_left())
        splitter.addWidget(self._build_plots())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([460, 700])
        self.setWidget(splitter)
        self._build_timers()
        self._update_buttons()

    # --- building ---------------------------------------------------------------------------

    def _build_left(self) -> QWidget:
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_buttons())
        layout.addWidget(self._build_progress())
        layout.addWidget(self._build_advanced())
        self.runs = RunsView()
        self.runs.selection_changed.connect(self._on_selection)
        self.runs.delete_requested.connect(self.delete_runs)
        layout.addWidget(self.runs, 1)
        return left

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip(
            "Fine-tune a model on this project's labels with a recipe picked for it "
            "(see Advanced), on the GPU when there is one"
        )
        font = self.train_button.font()
        font.setBold(True)
        self.train_button.setFont(font)
        self.train_button.setMinimumHeight(30)
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and stop after the current iteration")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Continue the selected stopped or failed run from its last checkpoint"
        )
        self.resume_button.clicked.connect(self.resume)
        row.addWidget(self.train_button, 2)
        row.addWidget(self.stop_button, 1)
        row.addWidget(self.resume_button, 1)
        return row

    def _build_progress(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.recipe_label = QLabel("Open a project to train.")
        self.recipe_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        self.stats_label = QLabel(self._stats_text())
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notices = QLabel()
        self.notices.setWordWrap(True)
        self.notices.setTextFormat(Qt.TextFormat.RichText)
        self.notices.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.notices.hide()
        for w in (self.recipe_label, self.progress, self.stats_label, self.notices):
            layout.addWidget(w)
        return box

    def _build_advanced(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.advanced_button = QToolButton(text="Advanced", checkable=True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setStyleSheet("QToolButton { border: none; }")
        self.advanced_button.toggled.connect(self._toggle_advanced)
        self.form = AdvancedForm()
        self.form.changed.connect(self._on_form_changed)
        self.advanced_area = QScrollArea()
        self.advanced_area.setWidgetResizable(True)
        self.advanced_area.setWidget(self.form)
        self.advanced_area.setMinimumHeight(220)
        self.advanced_area.hide()
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced_area)
        return box

    def _build_plots(self) -> TrainPlots:
        self.plots = TrainPlots()
        self.plots.png_requested.connect(self.export_png_interactive)
        self.plots.csv_requested.connect(self.export_csv_interactive)
        return self.plots

    def _build_timers(self) -> None:
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._db_timer = QTimer(self, interval=DB_REFRESH_MS)
        self._db_timer.timeout.connect(self.refresh_runs)
        self._save_timer = QTimer(self, interval=500, singleShot=True)
        self._save_timer.timeout.connect(self._save_settings)

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.advanced_area.setVisible(on)

    # --- project ----------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show `project`'s runs and remembered settings (None: nothing). A run this window
        trains for the previous project is asked to stop (it saves a checkpoint; Resume
        continues it)."""
        if self._tp is not None:
            self.shutdown()
        self._gen += 1
        self.project = project
        self._cache.clear()
        self._loading.clear()
        self._live = None
        self._run_id = None
        self._set_notices([])
        self.plots.show_runs([])
        self.runs.set_runs([], None)
        self.form.set_info(None, {})
        if project is None:
            self._db_timer.stop()
            self.recipe_label.setText("Open a project to train.")
            self._update_buttons()
            return
        self._current_model = None
        settings = project.get_setting(SETTINGS_KEY, {}) or {}
        self.recipe_label.setText("Looking at the project…")
        gen, path = self._gen, project.path
        run_task(
            lambda _p: _panel_info(path),
            lambda info: self._on_ml_info(gen, info, settings),
            lambda exc: self._on_error(gen, "Training is not available", exc),
        )
        self.refresh_runs()
        self._db_timer.start()
        self._update_buttons()

    def _on_ml_info(self, gen: int, info: Any, settings: dict[str, Any]) -> None:
        if gen != self._gen:
            return
        self.ml = info
        self.form.set_info(info, settings)
        self._update_recipe_label()
        self._update_buttons()

    def _on_error(self, gen: int, what: str, exc: BaseException) -> None:
        if gen == self._gen:
            self._set_notices([], errors=[f"{what}: {error_text(exc)}"])
            self.train_button.setEnabled(self.project is not None)

    def _on_form_changed(self) -> None:
        self._update_recipe_label()
        self._save_timer.start()

    def _save_settings(self) -> None:
        if self.project is not None and self.ml is not None:
            self.project.set_setting(SETTINGS_KEY, self.form.overrides())

    def _update_recipe_label(self) -> None:
        if self.ml is None:
            return
        v = self.form.values()
        model = (v["model"] or self.ml.auto_model).split(":")[-1]
        device = v["device"] if v["device"] != "auto" else self.ml.device
        length = f"{v['epochs']} epochs" if v["epochs"] else "no epoch limit"
        if v["time_budget"]:
            length += f", at most {format_duration(v['time_budget'])}"
        size = f"{v['image_size']} px" if v["image_size"] else "its default size"
        gpu = "" if device != "cpu" else " (no GPU found)" if v["device"] == "auto" else ""
        self.recipe_label.setText(
            f"Train fine-tunes <b>{model}</b> on the <b>{device}</b>{gpu}: {length}, batch "
            f"{v['batch_size']}, {size}."
        )

    # --- starting and stopping ---------------------------------------------------------------

    @property
    def is_training(self) -> bool:
        return self._tp is not None

    def train(self) -> None:
        """Check what cannot work, create a run with the recipe (and the Advanced settings)
        and start it. The checks and the run's folder are made in a worker thread."""
        if self.project is None or self._tp is not None:
            return
        self._save_timer.stop()
        settings = self.form.overrides() if self.ml is not None else self._stored_settings()
        self.project.set_setting(SETTINGS_KEY, settings)
        self.train_button.setEnabled(False)
        self.progress.setFormat("checking…")
        self._set_notices([])
        gen, path = self._gen, self.project.path

        def work(_progress: Any) -> tuple[Any, int | None]:
            from studio.ml import preflight, runner

            with Project.open(path) as p:
                cfg, problems = preflight.config_from_settings(p, settings)
                report = preflight.check(p, cfg)
                report.problems[:0] = problems
                if not report.ok:
                    return report, None
                return report, runner.create_run(p, report.config).id

        run_task(
            work,
            lambda res: self._on_checked(gen, *res),
            lambda exc: self._on_start_failed(gen, exc),
        )

    def _stored_settings(self) -> dict[str, Any]:
        assert self.project is not None
        return dict(self.project.get_setting(SETTINGS_KEY, {}) or {})

    def _on_checked(self, gen: int, report: Any, run_id: int | None) -> None:
        if gen != self._gen:
            return
        self._set_notices(report.warnings, errors=report.errors)
        if run_id is None:
            self.progress.setFormat("not started")
            self._update_buttons()
            return
        self._start_process(run_id, resume=False)

    def _on_start_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen:
            return
        self._set_notices([], errors=[f"Training cannot start: {error_text(exc)}"])
        self.progress.setFormat("not started")
        self._update_buttons()

    def resume(self) -> None:
        """Continue the selected stopped or failed run from its last checkpoint."""
        run = self._resumable()
        if run is None or self._tp is not None:
            return
        self._set_notices([])
        self._start_process(run.id, resume=True)

    def _resumable(self) -> Any:
        ids = self.runs.selected_ids()
        run = self.runs.run(ids[0]) if len(ids) == 1 else None
        return run if run is not None and run.status in RESUMABLE else None

    def _start_process(self, run_id: int, resume: bool) -> None:
        from studio.ml.runner import TrainingProcess  # imported by the worker already

        assert self.project is not None
        self._cache.pop(run_id, None)
        self._run_id, self._live = run_id, RunCurves()
        self._pending = [] if resume else None
        self._last_iter = self._started = None
        self._stop_asked = 0.0
        self._rss = None
        tp = TrainingProcess(self.project.path, run_id, resume=resume)
        tp.start()
        # Before the child imports torch and starts its threads: they inherit the niceness.
        lower_priority(tp.pid)
        self._tp = tp
        self.stall.start()
        self._poll_timer.start()
        self.progress.setRange(0, 0)  # busy until Started says how long
        self.progress.setFormat("starting…")
        self._want_select = run_id
        self._update_buttons()
        self.refresh_runs()
        self.run_started.emit(run_id)

    def stop(self) -> None:
        """Ask the run to stop (checkpoint first); a second press after KILL_AFTER_S kills it."""
        if self._tp is None:
            return
        if self._stop_asked and time.monotonic() - self._stop_asked > KILL_AFTER_S:
            self._tp.kill()
            return
        self._tp.request_stop()
        self._stop_asked = time.monotonic()
        self.progress.setFormat("stopping after this iteration…")
        self._update_buttons()

    def shutdown(self) -> None:
        """For the window's close: ask a run to stop (it checkpoints; Python waits for the
        child at exit, about one iteration) and stop the timers. Never blocks."""
        if self._tp is not None:
            self._tp.request_stop()
            _ORPHANS.append(self._tp)  # keeps the handle (and its queue) alive until exit
        self._tp = None
        self._poll_timer.stop()
        self._db_timer.stop()
        self.stall.stop()
        self.form.shutdown()

    # --- the running process -----------------------------------------------------------------

    def _poll(self) -> None:
        tp = self._tp
        if tp is None:
            self._poll_timer.stop()
            return
        for msg in tp.poll(0):
            self._handle(msg)
        now = time.monotonic()
        if now - self._rss_at > 1.0:
            self._rss_at = now
            self._rss = process_rss(tp.pid)
        if now - self._ui_at > UI_MIN_INTERVAL_S:
            self._ui_at = now
            self._update_progress()
        if tp.finished is not None and not tp.is_alive():
            tp.close()  # the child has exited: close() does not wait
            self._end(tp.finished)
        elif self._stop_asked and now - self._stop_asked > KILL_AFTER_S:
            self.stop_button.setText("Kill")
            self.stop_button.setEnabled(True)

    def _handle(self, msg: Message) -> None:
        if self._pending is not None and isinstance(msg, Iteration | EpochMetrics):
            self._pending.append(msg)  # a resume: drawn after the run's history
        elif isinstance(msg, Iteration):
            self._last_iter = msg
            self._live.add_iteration(msg)
            self.plots.touch()
        elif isinstance(msg, EpochMetrics):
            self._live.add_epoch(msg)
            self.plots.touch()
            self.refresh_runs()
        elif isinstance(msg, Started):
            self._on_started(msg)
        elif isinstance(msg, Notice):
            self._add_notice(msg.text)
        elif isinstance(msg, Failed):
            self._add_notice(msg.error, error=True)

    def _on_started(self, msg: Started) -> None:
        self._started = msg
        self.eta.start(msg.iteration)
        if self._tp is not None:
            lower_priority(self._tp.pid)  # threads started before the first renice
        for w in msg.warnings:
            self._add_notice(w)
        total = (msg.epochs or 0) * msg.iters_per_epoch
        self.progress.setRange(0, max(total, 1) if total else 0)
        self.recipe_label.setText(
            f"Training <b>{msg.model.split(':')[-1]}</b> ({msg.task.replace('_', ' ')}) on the "
            f"<b>{msg.device}</b>: {msg.num_train} training images, {msg.num_val} validation."
        )
        if self._pending is not None:
            self._load_history(self._run_id, msg)
        self.refresh_runs()

    def _load_history(self, run_id: int, started: Started) -> None:
        """A resumed run: its curves so far from the database, then what arrived since."""
        gen, project = self._gen, self.project

        def work(_progress: Any) -> RunCurves:
            rows = [
                r
                for r in project.metrics(run_id)
                if r[0] == "iter" or r[1] < started.epoch  # epochs the resume trains again
            ]
            return RunCurves.from_rows(rows, upto_step=started.iteration)

        def done(curves: RunCurves) -> None:
            if gen != self._gen or run_id != self._run_id:
                return
            pending, self._pending = self._pending or [], None
            self._live = curves
            for m in pending:
                self._handle(m)
            self._show_selected()

        run_task(work, done, lambda exc: done(RunCurves()))

    def _end(self, msg: Message | None) -> None:
        run_id = self._run_id
        self._tp = None
        self._poll_timer.stop()
        self.stall.stop()
        if self._pending is not None:  # ended before the history came: keep what arrived
            for m in self._pending:
                self._handle(m)
        if run_id is not None and self._live is not None:
            self._cache[run_id] = self._live
        status = "failed"
        if isinstance(msg, Finished):
            status = "finished"
            best = (
                f"best {msg.best_metric_name} {msg.best_metric:.3f}"
                if msg.best_metric is not None
                else "no validation"
            )
            self.progress.setFormat(f"finished after {msg.epoch} epochs ({best})")
            self._add_notice(f"Run {run_id} finished: its best model is now the project's model.")
        elif isinstance(msg, Stopped):
            status = "stopped"
            self.progress.setFormat(f"stopped at epoch {msg.epoch + 1}: Resume continues it")
        else:
            self.progress.setFormat("failed")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setToolTip(f"Longest GUI stall during the run: {self.stall.max_ms:.0f} ms")
        self._stop_asked = 0.0
        self.stop_button.setText("Stop")
        self._update_buttons()
        self.refresh_runs()
        if run_id is not None:
            self.run_ended.emit(run_id, status)
            if status == "finished":
                self._current_model = run_id
                self.current_model_changed.emit(run_id)

    def _update_progress(self) -> None:
        m, s = self._last_iter, self._started
        if m is None or s is None or self._tp is None or self._stop_asked:
            self.stats_label.setText(self._stats_text())
            return
        total = (s.epochs or 0) * (m.iters_per_epoch or s.iters_per_epoch)
        if total:
            self.progress.setMaximum(total)
            self.progress.setValue(min(m.iteration, total))
        epochs = f"/{s.epochs}" if s.epochs else ""
        self.progress.setFormat(
            f"epoch {m.epoch + 1}{epochs} · iteration {m.step_in_epoch}/{m.iters_per_epoch}"
        )
        eta = self.eta.update(m.iteration, total or None, None)
        self.stats_label.setText(self._stats_text(m.images_per_s, eta, m))

    def _stats_text(
        self, speed: float | None = None, eta: float | None = None, m: Any = None
    ) -> str:
        gpu = getattr(m, "gpu_memory_mb", None)  # reported by the engine where it can
        gpu_text = "—" if gpu is None else format_bytes(gpu * 2**20)
        speed_text = "—" if speed is None else f"{speed:.1f}"
        return (
            f"{speed_text} img/s · ETA {format_duration(eta)} · "
            f"RAM {format_bytes(self._rss)} · GPU {gpu_text}"
        )

    # --- notices ----------------------------------------------------------------------------

    def _set_notices(self, warnings: list[str], errors: list[str] | None = None) -> None:
        self._notice_lines = [(t, True) for t in errors or []] + [(t, False) for t in warnings]
        self._render_notices()

    def _add_notice(self, text: str, error: bool = False) -> None:
        if (text, error) not in self._notice_lines:
            self._notice_lines.append((text, error))
            self._render_notices()

    def _render_notices(self) -> None:
        lines = [
            f'<span style="color:{"#c62828" if err else "#a15c00"}">{"✖" if err else "⚠"} '
            f"{_html(text)}</span>"
            for text, err in self._notice_lines[-8:]
        ]
        self.notices.setText("<br>".join(lines))
        self.notices.setVisible(bool(lines))

    def notice_texts(self) -> list[str]:
        return [t for t, _ in self._notice_lines]

    # --- runs list and curves -----------------------------------------------------------------

    def refresh_runs(self) -> None:
        """Re-read the runs (and the curves of selected runs another process trains) in a
        worker; cheap queries, every DB_REFRESH_MS and after each epoch of our own run."""
        if self.project is None or self._refreshing:
            return
        self._refreshing = True
        gen, project = self._gen, self.project
        own = self._run_id if self._tp is not None else None
        shown = [rid for rid in self.runs.selected_ids() if rid != own]

        def work(_progress: Any) -> tuple[list[Any], int | None, dict[int, RunCurves]]:
            runs = project.runs()
            status = {r.id: r.status for r in runs}
            external = {
                rid: RunCurves.from_rows(project.metrics(rid))
                for rid in shown
                if status.get(rid) == "running" or rid not in self._cache
            }
            return runs, project.current_model(), external

        def done(result: tuple[list[Any], int | None, dict[int, RunCurves]]) -> None:
            self._refreshing = False
            if gen == self._gen:
                self._on_runs(*result)

        def failed(exc: BaseException) -> None:
            self._refreshing = False

        run_task(work, done, failed)

    def _on_runs(self, runs: list[Any], current: int | None, curves: dict[int, RunCurves]) -> None:
        busy = {self._run_id} if self._tp is not None else set()
        self.runs.set_runs(runs, current, busy)
        if (
            current is not None
            and current != self._current_model
            and self._current_model is not None
        ):
            self.current_model_changed.emit(current)  # a run finished in another process
        self._current_model = current
        for rid, c in curves.items():
            if rid not in busy:
                self._cache[rid] = c
        if self._want_select is not None and self.runs.run(self._want_select) is not None:
            rid, self._want_select = self._want_select, None
            self.runs.select_ids([rid])  # shows it
        elif curves:
            self._show_selected()
        self._update_buttons()

    def _on_selection(self, _ids: list[int]) -> None:
        self._show_selected()
        self._update_buttons()

    def shown_run_ids(self) -> list[int]:
        ids = self.runs.selected_ids()
        if not ids and self._run_id is not None:
            ids = [self._run_id]
        return ids[:MAX_SHOWN_RUNS]

    def _show_selected(self) -> None:
        shown, missing = [], []
        for rid in self.shown_run_ids():
            curves = (
                self._live
                if rid == self._run_id and self._live is not None
                else self._cache.get(rid)
            )
            run = self.runs.run(rid)
            if curves is None:
                missing.append(rid)
            else:
                shown.append((rid, legend_label(rid, run.name if run else ""), curves))
        self.plots.show_runs(shown)
        if missing:
            self._load_curves(missing)

    def _load_curves(self, run_ids: list[int]) -> None:
        ids = [rid for rid in run_ids if rid not in self._loading]
        if not ids or self.project is None:
            return
        self._loading.update(ids)
        gen, project = self._gen, self.project

        def work(_progress: Any) -> dict[int, RunCurves]:
            return {rid: RunCurves.from_rows(project.metrics(rid)) for rid in ids}

        def done(curves: dict[int, RunCurves]) -> None:
            if gen != self._gen:
                return
            self._loading.difference_update(ids)
            self._cache.update(curves)
            self._show_selected()

        run_task(work, done, lambda exc: self._loading.difference_update(ids))

    def delete_runs(self, run_ids: list[int]) -> None:
        if self.project is None:
            return
        for rid in run_ids:
            if rid == self._run_id and self._tp is not None:
                continue
            try:
                self.project.delete_run(rid)
            except StudioError as e:
                self._add_notice(str(e), error=True)
            self._cache.pop(rid, None)
        self.refresh_runs()

    def _update_buttons(self) -> None:
        has = self.project is not None
        training = self._tp is not None
        self.train_button.setEnabled(has and not training and self.progress.format() != "checking…")
        self.stop_button.setEnabled(
            training and (not self._stop_asked or self.stop_button.text() == "Kill")
        )
        self.resume_button.setEnabled(has and not training and self._resumable() is not None)
        self.form.setEnabled(has and not training)

    # --- export -----------------------------------------------------------------------------

    def export_png_interactive(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "training.png", "PNG (*.png)")
        if path:
            self.plots.export_png(Path(path))

    def export_csv_interactive(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export metrics", "metrics.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> Any:
        """Write the metrics of the runs shown (from the database) to `path`, in a worker.
        Returns the Task (its `finished` carries the row count)."""
        from .train_checks import write_metrics_csv

        assert self.project is not None
        project, ids = self.project, self.shown_run_ids()
        names = {rid: (self.runs.run(rid).name if self.runs.run(rid) else "") for rid in ids}

        def work(_progress: Any) -> int:
            return write_metrics_csv(path, [(rid, names[rid], project.metrics(rid)) for rid in ids])

        return run_task(work, None, lambda exc: self._add_notice(f"CSV export failed: {exc}", True))


_ORPHANS: list[Any] = []  # runs asked to stop at shutdown: their handles live until exit


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""The training dock's Advanced section: every setting the Train button would otherwise
pick (model, the composable detector's backbone, neck and head with a live summary,
weights, length, batch and image size, optimizer and learning rate, backbone freezing,
augmentation, device), remembered per project.

The checks of what cannot work are Qt-free, in `studio.ml.run.preflight`; this is where the
user sees and changes what those checks and the run will use. The composable detector's
summary (output shapes, parameters, GFLOPs) takes seconds: it is computed in a separate
low-priority process (`ModelSummaries`), waited for by a worker thread (`run_task`), with
"computing…" shown meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QDoubleValidator, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.ml.train.config import TrainConfig
from studio.ui.common.concurrency import run_task
from studio.ui.training.ml_info import ModelSummaries
from studio.ui.training.run_progress import format_duration
from studio.ui.training.weights_folder import WeightsFolderField

if TYPE_CHECKING:
    from PySide6.QtGui import QShowEvent

    from studio.ml.run.preflight import PanelInfo

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


class AdvancedForm(QWidget):
    """Every setting the Train button otherwise picks. `overrides()` holds only what
    differs from the recipe (what the user changed), so a better recipe later still
    applies to the rest; settings it does not show (set from the command line or a test)
    are kept as they are."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.info: PanelInfo | None = None
        self._recipe: dict[str, Any] = TrainConfig().to_dict()
        self._extras: dict[str, Any] = {}
        self._filling = False
        self._summaries = ModelSummaries()
        # The summaries' own pool: one waits for its process for seconds at a time, which
        # must not hold one of the shared pool's few threads (thumbnails, the runs list).
        self._summary_pool = QThreadPool(self)
        self._summary_pool.setMaxThreadCount(1)
        self._requests = 0  # numbers the summaries asked for
        self._computing: int | None = None  # the request being computed
        self._summary_key: tuple | None = None  # what the summary should describe
        self._summary_text = ""  # the summary of _summary_key, once computed
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._build_model(form)
        self._build_length(form)
        self._build_data(form)
        self._summary_timer = QTimer(self, interval=SUMMARY_DELAY_MS, singleShot=True)
        self._summary_timer.timeout.connect(self._request_summary)

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
        # The composable detector's parts, with the summary under them across the whole
        # width: its table is ~65 characters wide.
        self.parts = QWidget()
        box = QVBoxLayout(self.parts)
        box.setContentsMargins(0, 0, 0, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Backbone, neck, head"))
        self.part_combos = {}
        for part in PARTS:
            combo = self._combo()
            combo.setToolTip(f"The composable detector's {part}")
            combo.setMinimumContentsLength(8)
            combo.currentIndexChanged.connect(self._schedule_summary)
            self.part_combos[part] = combo
            row.addWidget(combo, 1)
        box.addLayout(row)
        self.summary = QLabel()
        self.summary.setFont(QFont("monospace", 8))
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setToolTip(
            "Each part's outputs for one square image of the chosen size, its parameters "
            "and GFLOPs (a multiply-add counts 2)"
        )
        box.addWidget(self.summary)
        form.addRow(self.parts)
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
        # A project setting, not a training one: the dock saves it (folder_changed).
        self.weights_folder = WeightsFolderField()
        form.addRow("Weights folder", self.weights_folder)
        self.device = self._combo(DEVICE_CHOICES)
        form.addRow("Device", self.device)

    def _build_length(self, form: QFormLayout) -> None:
        self.epochs = self._spin(0, 10000, "no limit")
        # In minutes, with fractions for short tries (0.5 = 30 s); the config holds seconds.
        self.budget = self._fspin(0, 100000, 1)
        self.budget.setSpecialValueText("none")
        self.budget.setSuffix(" min")
        self.budget.setToolTip(
            "The run, evaluation included, ends within this many minutes (0.5 = 30 s)"
        )
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

    def set_info(self, info: PanelInfo | None, settings: dict[str, Any]) -> None:
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
        from studio.ml.run.preflight import recipe

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
            self.budget.setValue((value or 0) / 60)
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
            # Whole seconds: the spin box keeps minutes to 2 decimals (0.33 min = 20 s).
            "time_budget": float(round(self.budget.value() * 60)) or None,
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

    def recipe_text(self) -> str:
        """What Train does with these settings, as one rich-text sentence ("" until
        `set_info`)."""
        if self.info is None:
            return ""
        v = self.values()
        model = (v["model"] or self.info.auto_model).split(":")[-1]
        device = v["device"] if v["device"] != "auto" else self.info.device
        length = f"{v['epochs']} epochs" if v["epochs"] else "no epoch limit"
        if v["time_budget"]:
            length += f", at most {format_duration(v['time_budget'])}"
        gpu = " (no GPU found)" if device == "cpu" and v["device"] == "auto" else ""
        scratch = v["weights"] == "none" and v["backbone_weights"] == "none"
        choice = next((m for m in self.info.models if m.name == model), None)
        size = f"{v['image_size']} px input"
        if not v["image_size"]:
            by_objects = choice is not None and choice.sized_by_objects
            size = "the input size your objects need" if by_objects else "its own input size"
        scratch = scratch or (choice is not None and not choice.supports_pretrained)
        verb = "trains <b>{}</b> from scratch" if scratch else "fine-tunes <b>{}</b>"
        return (
            f"Train {verb.format(model)} on the <b>{device}</b>{gpu}: {length}, batch "
            f"{v['batch_size']}, {size}."
        )

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
        # Only for a composable model, and only while the section is open: the summary
        # costs a process with torch in it.
        if self.parts.isVisibleTo(self) and self.isVisible():
            self.summary.setText("computing…")
            self._summary_timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._schedule_summary()

    def _request_summary(self) -> None:
        v = self.values()
        model = v["model"] or (self.info.auto_model if self.info else "")
        if not self._part_defaults(model):
            return
        key = (model, v["image_size"], tuple(sorted(v["model_options"].items())))
        if self._computing is not None:  # one at a time: the newest key is asked for next
            self._summary_key = key
            return
        if key == self._summary_key and self._summary_text:
            self.summary.setText(self._summary_text)
            return
        self._summary_key, self._summary_text = key, ""
        self.summary.setText("computing…")
        self._requests += 1
        self._computing = request = self._requests
        summaries = self._summaries

        run_task(
            lambda _progress: summaries.describe(model, key[1], dict(key[2])),
            lambda text: self._on_summary(request, key, text),
            # A combination of parts that cannot be built: say why.
            lambda e: self._on_summary(request, key, f"cannot build this model: {e}"),
            pool=self._summary_pool,
        )

    def _on_summary(self, request: int, key: tuple, text: str) -> None:
        if request != self._computing:  # asked before a shutdown
            return
        self._computing = None
        if key != self._summary_key:  # the picks changed meanwhile
            self._request_summary()
            return
        self._summary_text = text
        self.summary.setText(text)

    def shutdown(self) -> None:
        self._computing = None
        self._summaries.shutdown()

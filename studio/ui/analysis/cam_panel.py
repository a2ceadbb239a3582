"""The Activation maps view: what a run's model responds to in the shown image.

The window tells the panel which image is shown (`show_image`) and hands it the canvas
(`attach_canvas`); the panel draws through the canvas's "heatmap" layer only (found by
name: feature packages do not import each other). Maps are computed on one worker
thread of the panel's own (`cam_work.CamService`: the model loads once per run, maps are
cached on disk per run, image, layer and method), so the GUI thread only colours and
paints. A result for an image no longer shown is dropped by the layer.

A model with attention modules (SE, ECA, CBAM) gets a line of its mean attention entropy per
level on the image shown (studio.ml.analysis.attention_entropy), measured on the same worker
after the map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.progress import Progress
from studio.core.project import Project
from studio.ui.analysis.cam_work import (
    GRID_CHANNELS,
    CamAsk,
    CamResult,
    CamService,
    ModelLayers,
    PanelMethod,
    export_overlay,
)
from studio.ui.analysis.predict_bar import FollowsCurrentModel, runs_for_combo
from studio.ui.common.check_box import CheckBox
from studio.ui.common.combos import narrow
from studio.ui.common.concurrency import Task, run_task

# The colour maps offered; the heatmap layer takes OpenCV's names.
COLORMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "hot")
OPACITY_STEPS = 100


class AttentionCamService(CamService):
    """CamService that also measures the attention entropy of a run's model on an image."""

    def attention(self, run_id: int, image_id: int, progress: Progress) -> str:
        """The per-level attention entropy line of run `run_id`'s model on image `image_id`
        (one forward pass); "" when the model has no attention modules."""
        from studio.ml.analysis.attention_entropy import (
            format_entropies,
            image_attention_entropies,
        )

        progress.start(1, "measuring attention")
        with self._lock:
            with Project.open(self.project_dir) as project:
                cams = self._run_cams(project, run_id)
                image = project.image(image_id)
            entries = image_attention_entropies(cams.model.model, cams.decode(image))
        progress.step()
        line = format_entropies(entries)
        return f"{line} (on {image.name})" if line else ""


class CamPanel(QWidget):
    message = Signal(str)
    map_shown = Signal(object)  # CamResult, once it is on the canvas

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.service: CamService | None = None
        self.heatmap: Any = None  # the canvas's heatmap layer
        self.image_id: int | None = None
        self.layers: ModelLayers | None = None
        self.result: CamResult | None = None
        self.task: Task | None = None
        self.attention_task: Task | None = None
        self._has_attention = False  # the run's model has attention modules
        self._pending: CamAsk | None = None  # asked while a map was being computed
        self._computing = False  # a map is being computed (its callback not yet run)
        # Loads the model and draws maps only while active: the Analysis dock turns this
        # off while it is hidden or on another tab, so labelling sees no map and pays for
        # no forward pass.
        self.active = True
        self._follow = FollowsCurrentModel()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one model, one hooked forward pass at a time
        self._build()

    # --- building ----------------------------------------------------------------------

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.addLayout(self._build_form())
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["layer", "stride", "channels"])
        self.tree.itemSelectionChanged.connect(self.refresh)
        lay.addWidget(self.tree, 1)
        lay.addLayout(self._build_view_row())
        self.status = QLabel("Choose a run; the map follows the image shown.")
        self.status.setWordWrap(True)
        self.attention = QLabel("")
        self.attention.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addWidget(self.attention)

    def _build_form(self) -> QFormLayout:
        self.runs = narrow(QComboBox())
        self.runs.currentIndexChanged.connect(lambda _i: self._run_changed())
        self.method = QComboBox()
        for m in PanelMethod:
            self.method.addItem(str(m), m)
        self.method.currentIndexChanged.connect(lambda _i: self._method_changed())
        self.rank = QSpinBox()
        self.rank.setRange(0, 99)
        self.rank.valueChanged.connect(lambda _v: self.refresh())
        self.rank_label = QLabel("prediction")
        self.follow = CheckBox("Follow the image")
        self.follow.setChecked(True)
        self.follow.toggled.connect(lambda on: on and self.refresh())
        method_row = QHBoxLayout()
        method_row.addWidget(self.method, 1)
        method_row.addWidget(self.rank_label)
        method_row.addWidget(self.rank)
        form = QFormLayout()
        form.addRow("Run", self.runs)
        form.addRow("Method", method_row)
        form.addRow("", self.follow)
        self._method_changed()
        return form

    def _build_view_row(self) -> QHBoxLayout:
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, OPACITY_STEPS)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.colormap = QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.colormap.currentTextChanged.connect(self._colormap_changed)
        self.compute_btn = QPushButton("Compute")
        self.compute_btn.clicked.connect(lambda: self.refresh(force=True))
        self.export_btn = QPushButton("Export PNG…")
        self.export_btn.setEnabled(False)
        self.export_btn.clicked.connect(self._export_interactive)
        row = QHBoxLayout()
        row.addWidget(QLabel("opacity"))
        row.addWidget(self.opacity, 1)
        row.addWidget(self.colormap)
        row.addWidget(self.compute_btn)
        row.addWidget(self.export_btn)
        return row

    # --- the window's hooks ------------------------------------------------------------

    def attach_canvas(self, canvas: Any) -> None:
        """Draw on `canvas`'s "heatmap" layer (it must have one)."""
        self.heatmap = canvas.layer("heatmap")
        self._opacity_changed(self.opacity.value())
        self._colormap_changed(self.colormap.currentText())

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.service = AttentionCamService(project.path) if project is not None else None
        self.layers, self.result, self.image_id = None, None, None
        self.tree.clear()
        self.reload_runs(force=True)

    def reload_runs(self, force: bool = False) -> None:
        """Refill the run combo, keeping the chosen run (or following the project's
        model, FollowsCurrentModel); load its layers when it changed."""
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
        if force or self.run_id != chosen:
            self._run_changed()

    def set_active(self, active: bool) -> None:
        """Start (the model loaded if it is not, the map of the image shown) or stop
        (the map off the canvas) following the image shown."""
        if active == self.active:
            return
        self.active = active
        if not active:
            if self.heatmap is not None:
                self.heatmap.clear_map()
        elif self.layers is None:
            self._run_changed()
        else:
            self.refresh()
            self._measure_attention()

    def show_image(self, image_id: int | None) -> None:
        """The window shows image `image_id` (None: none): its map, when following."""
        self.image_id = image_id
        self.result = None
        self.export_btn.setEnabled(False)
        if self.follow.isChecked():
            self.refresh()
        self._measure_attention()

    @property
    def run_id(self) -> int | None:
        data = self.runs.currentData()
        return int(data) if data is not None else None

    # --- choices -----------------------------------------------------------------------

    def _run_changed(self) -> None:
        self.layers = None
        self._has_attention = False
        self.tree.clear()
        self.attention.setText("")
        if self.run_id is None or self.service is None:
            self.status.setText("No run with weights yet: train one first.")
            return
        if not self.active:  # loaded when the panel is shown
            return
        run_id, service = self.run_id, self.service
        self.status.setText("Loading the model…")
        self.task = run_task(lambda p: service.layers(run_id, p), self._on_layers,
                             self._on_layers_failed, self.pool)  # fmt: skip

    def _on_layers(self, layers: ModelLayers) -> None:
        if layers.run_id != self.run_id or not self.active:
            return
        self.layers = layers
        self.attention.setText(layers.attention)
        self._has_attention = any(row.group == "attention" for row in layers.layers)
        self.tree.blockSignals(True)
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        for row in layers.layers:
            parent = groups.get(row.group)
            if parent is None:
                parent = groups[row.group] = QTreeWidgetItem(self.tree, [row.group])
                parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                parent.setExpanded(True)
            item = QTreeWidgetItem(parent, [row.id, str(row.stride), str(row.channels)])
            item.setData(0, Qt.ItemDataRole.UserRole, row.id)
            if row.id == layers.default:
                item.setSelected(True)
        self.tree.blockSignals(False)
        self.tree.resizeColumnToContents(0)
        self.status.setText("Model loaded.")
        self.refresh()
        self._measure_attention()

    def _on_layers_failed(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        self.status.setText(f"Cannot load the run's model: {text}")
        self.message.emit(f"Activation maps: {text}")

    def _method_changed(self) -> None:
        method = self.method.currentData()
        self.rank.setVisible(method in (PanelMethod.GRADCAM, PanelMethod.CHANNELS))
        self.rank_label.setVisible(self.rank.isVisible())
        self.rank_label.setText("channel rank" if method == PanelMethod.CHANNELS else "prediction")
        self.rank.setMaximum(GRID_CHANNELS - 1 if method == PanelMethod.CHANNELS else 99)
        self.refresh()

    @property
    def layer_id(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.ItemDataRole.UserRole) if items else None

    def select_layer(self, layer_id: str) -> None:
        """Choose the layer `layer_id` of the tree (for scripts and tests)."""
        for item in self.tree.findItems(
            layer_id, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
        ):
            self.tree.setCurrentItem(item)
            item.setSelected(True)
            return
        raise KeyError(f"no layer {layer_id!r} in the tree")

    def ask(self) -> CamAsk | None:
        """The map the controls ask for, or None when something is missing."""
        if self.run_id is None or self.image_id is None or self.layers is None:
            return None
        return CamAsk(self.run_id, self.image_id, self.layer_id, self.method.currentData(),
                      self.rank.value())  # fmt: skip

    # --- computing ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A map or the layer tree is being computed."""
        tasks = (self.task, self.attention_task)
        return self._computing or any(t is not None and not t.done for t in tasks)

    def _measure_attention(self) -> None:
        """The attention entropy line for the image shown, in the background (after the
        map: one worker). Models without attention keep the layer tree's line."""
        run_id, image_id, service = self.run_id, self.image_id, self.service
        if not (self.active and self._has_attention) or run_id is None or service is None:
            return
        if image_id is None:
            self.attention.setText("Show an image to measure the attention entropy per level.")
            return
        self.attention.setText("Measuring the attention entropy…")

        def done(line: str) -> None:
            if (self.run_id, self.image_id) == (run_id, image_id):
                self.attention.setText(line)

        def failed(exc: BaseException) -> None:
            if (self.run_id, self.image_id) == (run_id, image_id):
                text = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                self.attention.setText(f"No attention entropy: {text}")

        self.attention_task = run_task(lambda p: service.attention(run_id, image_id, p), done,
                                       failed, self.pool)  # fmt: skip

    def refresh(self, force: bool = False) -> None:
        """Compute the asked map in the background (the newest ask wins)."""
        if not self.active or not (force or self.follow.isChecked()) or self.service is None:
            return
        ask = self.ask()
        if ask is None:
            return
        if self._computing:
            self._pending = ask
            return
        service = self.service
        self._computing = True
        self.status.setText("Computing the map…")
        self.task = run_task(lambda p: service.compute(ask, p), self._on_map,
                             self._on_failed, self.pool)  # fmt: skip

    def _on_map(self, result: CamResult) -> None:
        self._computing = False
        pending, self._pending = self._pending, None
        current = self.ask() if self.active else None
        if result.ask == current:
            self.result = result
            shown = self.heatmap is not None and self.heatmap.set_map(
                result.ask.image_id, result.heat
            )
            self.export_btn.setEnabled(True)
            self.status.setText(result.title)
            if shown:
                self.map_shown.emit(result)
        elif pending is not None and pending == current:
            self.refresh(force=True)  # the user moved on while this one was computed

    def _on_failed(self, exc: BaseException) -> None:
        self._computing = False
        pending, self._pending = self._pending, None
        if pending is not None and pending == self.ask():
            self.refresh(force=True)
            return
        text = str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        self.status.setText(f"No map: {text}")
        self.message.emit(f"Activation map: {text}")
        if self.heatmap is not None:
            self.heatmap.clear_map()

    # --- view --------------------------------------------------------------------------

    def _opacity_changed(self, value: int) -> None:
        if self.heatmap is not None:
            self.heatmap.set_opacity(value / OPACITY_STEPS)

    def _colormap_changed(self, name: str) -> None:
        if self.heatmap is not None and name:
            self.heatmap.set_colormap(name)

    def export_png(self, path: Path | str) -> None:
        """Write the shown map over its image (displayed size) as a PNG; StudioError
        naming the file or what is missing."""
        if self.result is None or self.project is None:
            raise StudioError("no map to export: compute one first")
        image = self.project.image(self.result.ask.image_id)
        export_overlay(Path(path), Path(image.abs_path), self.result,
                       self.opacity.value() / OPACITY_STEPS, self.colormap.currentText())  # fmt: skip

    def _export_interactive(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", "cam.png", "PNG (*.png)")
        if path:
            try:
                self.export_png(path)
            except StudioError as exc:
                self.message.emit(str(exc))
            else:
                self.message.emit(f"Wrote {path}")

    def shutdown(self) -> None:
        """Let the worker finish (a forward pass cannot be interrupted)."""
        self._pending = None
        self.pool.waitForDone(10_000)

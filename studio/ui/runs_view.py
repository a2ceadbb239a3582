"""The list of a project's training runs: status, model, start, duration, best metric.

Filled from `RunRecord`s the panel reads off the GUI thread. Several runs can be selected
(their curves overlay); a run's config opens read-only; deleting asks first and removes
the run's files. Rows are updated in place, so a refresh every two seconds keeps the
selection and the scroll position.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.records import RunRecord

from .train_checks import format_duration, parse_time, run_duration

RunIdRole = Qt.ItemDataRole.UserRole
COLUMNS = ("Run", "Status", "Model", "Started", "Duration", "Best")
STATUS_COLOURS = {
    "running": "#1565c0",
    "queued": "#6a6a6a",
    "finished": "#2e7d32",
    "stopped": "#ef6c00",
    "failed": "#c62828",
}


def best_text(run: RunRecord) -> str:
    if run.best_metric is None:
        return "—"
    return f"{run.best_metric:.3f} {run.best_metric_name or ''}".strip()


def started_text(run: RunRecord) -> str:
    t = parse_time(run.created_at)
    return t.astimezone().strftime("%Y-%m-%d %H:%M") if t else run.created_at or "—"


class ConfigDialog(QDialog):
    """A run's config.json, read-only, in a fixed-width font."""

    def __init__(self, run: RunRecord, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Run {run.id} ({run.name}): config")
        self.resize(560, 640)
        path = run.dir / "config.json"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:  # deleted folder: the copy in the database is still there
            text = json.dumps(run.config, indent=2, sort_keys=True)
        self.text = QPlainTextEdit(text, readOnly=True)
        self.text.setFont(QFont("monospace"))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)


class RunsView(QWidget):
    """Emits `selection_changed(run ids)` and `delete_requested(run ids)` (after the user
    confirmed). The panel owns the project and does the deleting."""

    selection_changed = Signal(list)
    delete_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._runs: dict[int, RunRecord] = {}
        self._busy: set[int] = set()  # runs this window trains: not deletable
        self._dialogs: list[ConfigDialog] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_tree(), 1)
        layout.addLayout(self._build_buttons())

    def _build_tree(self) -> QTreeWidget:
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setToolTip("Select several runs (Ctrl/Shift+click) to overlay their curves")
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col in range(len(COLUMNS)):
            mode = (
                QHeaderView.ResizeMode.Stretch
                if col == 0
                else QHeaderView.ResizeMode.ResizeToContents
            )
            header.setSectionResizeMode(col, mode)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.tree.itemDoubleClicked.connect(lambda *_: self.show_config())
        return self.tree

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.config_button = QPushButton("Config…")
        self.config_button.setToolTip("The selected run's settings (config.json), read-only")
        self.config_button.clicked.connect(self.show_config)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected runs with their checkpoints")
        self.delete_button.clicked.connect(lambda: self.delete_selected(confirm=True))
        row.addWidget(self.config_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        self._update_buttons()
        return row

    # --- content ----------------------------------------------------------------------------

    def set_runs(
        self, runs: Sequence[RunRecord], current_model: int | None, busy: set[int] | None = None
    ) -> None:
        """Show `runs` (newest first), updating rows in place; the current model's row is bold."""
        self._busy = set(busy or ())
        self._runs = {r.id: r for r in runs}
        items = {
            self._item_id(self.tree.topLevelItem(i)): i
            for i in range(self.tree.topLevelItemCount())
        }
        for rid in [rid for rid in items if rid not in self._runs]:
            index = self.tree.indexOfTopLevelItem(self._find(rid))
            self.tree.takeTopLevelItem(index)
        blocked = self.tree.blockSignals(True)  # filling is not a selection change
        try:
            for pos, run in enumerate(sorted(runs, key=lambda r: -r.id)):
                item = self._find(run.id)
                if item is None:
                    item = QTreeWidgetItem()
                    item.setData(0, RunIdRole, run.id)
                    self.tree.insertTopLevelItem(pos, item)
                self._fill(item, run, run.id == current_model)
        finally:
            self.tree.blockSignals(blocked)
        self._update_buttons()

    def _fill(self, item: QTreeWidgetItem, run: RunRecord, current: bool) -> None:
        running = run.status == "running"
        duration = run_duration(run.created_at, run.finished_at, running)
        texts = (
            f"#{run.id} {run.name}",
            run.status + (f" · epoch {run.epoch}" if running else ""),
            run.model.split(":")[-1],
            started_text(run),
            format_duration(duration),
            best_text(run),
        )
        for col, text in enumerate(texts):
            if item.text(col) != text:
                item.setText(col, text)
        item.setForeground(1, QBrush(QColor(STATUS_COLOURS.get(run.status, "#333"))))
        font = item.font(0)
        if font.bold() != current:
            font.setBold(current)
            for col in range(len(COLUMNS)):
                item.setFont(col, font)
        tip = "The project's current model" if current else ""
        if run.error:
            tip = (tip + "\n" if tip else "") + run.error
        item.setToolTip(0, tip)
        item.setToolTip(1, run.error or run.status)

    @staticmethod
    def _item_id(item: QTreeWidgetItem | None) -> int | None:
        return None if item is None else item.data(0, RunIdRole)

    def _find(self, run_id: int) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if self._item_id(item) == run_id:
                return item
        return None

    def run(self, run_id: int) -> RunRecord | None:
        return self._runs.get(run_id)

    def runs(self) -> list[RunRecord]:
        return list(self._runs.values())

    # --- selection --------------------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        return [self._item_id(i) for i in self.tree.selectedItems()]

    def select_ids(self, run_ids: Sequence[int]) -> None:
        blocked = self.tree.blockSignals(True)
        try:
            self.tree.clearSelection()
            for rid in run_ids:
                item = self._find(rid)
                if item is not None:
                    item.setSelected(True)
                    self.tree.scrollToItem(item)
        finally:
            self.tree.blockSignals(blocked)
        self._on_selection()

    def _on_selection(self) -> None:
        self._update_buttons()
        self.selection_changed.emit(self.selected_ids())

    def _update_buttons(self) -> None:
        ids = self.selected_ids()
        self.config_button.setEnabled(len(ids) == 1)
        deletable = ids and all(
            rid not in self._busy and getattr(self._runs.get(rid), "status", "") != "running"
            for rid in ids
        )
        self.delete_button.setEnabled(bool(deletable))

    # --- actions ----------------------------------------------------------------------------

    def show_config(self) -> ConfigDialog | None:
        ids = self.selected_ids()
        run = self._runs.get(ids[0]) if len(ids) == 1 else None
        if run is None:
            return None
        dialog = ConfigDialog(run, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda *_: self._dialogs.remove(dialog))
        self._dialogs.append(dialog)
        dialog.show()  # not modal: training goes on being plotted behind it
        return dialog

    def delete_selected(self, confirm: bool = True) -> None:
        ids = [rid for rid in self.selected_ids() if rid not in self._busy]
        if not ids:
            return
        if confirm:
            names = ", ".join(f"#{rid} {self._runs[rid].name}" for rid in ids[:5])
            more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
            answer = QMessageBox.question(
                self,
                "Delete runs",
                f"Delete {names}{more} with their checkpoints and metrics? This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.delete_requested.emit(ids)

"""The list of a project's training runs (status, model, start, duration, best metric)
and the curves of the runs it shows.

Everything is read from the database in worker threads: the runs every two seconds (a
run started from the command line appears, and plots live, without this window owning
it) and a run's metrics when it is first shown. The run this window trains is fed from
its messages instead (`set_live`). Several runs can be selected (their curves overlay);
a run's config opens read-only; deleting asks first and removes the run's files. Rows
are updated in place, so the refresh keeps the selection and the scroll position.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
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

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.core.records import RunRecord
from studio.ui.common.concurrency import run_task
from studio.ui.training.metrics_csv import write_metrics_csv
from studio.ui.training.plots import RunCurves
from studio.ui.training.run_progress import format_duration

REFRESH_MS = 2000  # the runs, and the curves of shown runs another process trains
MAX_SHOWN = 10  # runs overlaid at most
RunIdRole = Qt.ItemDataRole.UserRole
COLUMNS = ("Run", "Status", "Model", "Started", "Duration", "Best")
HEADER_TIPS = {5: "Best validation metric (AP of boxes, or of masks for segmentation)"}
STATUS_COLOURS = {
    RunStatus.RUNNING: "#1565c0",
    RunStatus.QUEUED: "#6a6a6a",
    RunStatus.FINISHED: "#2e7d32",
    RunStatus.STOPPED: "#ef6c00",
    RunStatus.FAILED: "#c62828",
}


def parse_time(text: str | None) -> datetime | None:
    """A database timestamp (ISO 8601, UTC) as an aware datetime."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def run_duration(created: str | None, finished: str | None, running: bool) -> float | None:
    """Seconds from creation to the end (or to now while it runs)."""
    start = parse_time(created)
    end = datetime.now(UTC) if running else parse_time(finished)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def best_text(run: RunRecord) -> str:
    """The best validation metric; its name ("bbox/AP") is in the tooltip and the header's."""
    return "—" if run.best_metric is None else f"{run.best_metric:.3f}"


def started_text(run: RunRecord) -> str:
    """ "14:05" today, "03-21 14:05" this year, else the date: the column stays narrow."""
    t = parse_time(run.created_at)
    if t is None:
        return run.created_at or "—"
    t, now = t.astimezone(), datetime.now().astimezone()
    if t.date() == now.date():
        return t.strftime("%H:%M")
    return t.strftime("%m-%d %H:%M" if t.year == now.year else "%Y-%m-%d")


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
    """Runs of the project and the curves of the selected ones (or of the live run when
    none is selected): `shown_changed([(run id, legend label, RunCurves)])` for the plots.
    `current_model_changed(run id)` fires when the database says another process made a
    run the current model."""

    selection_changed = Signal(list)
    shown_changed = Signal(list)
    current_model_changed = Signal(int)
    refreshed = Signal()  # the runs were read again
    failed = Signal(str)  # a one-line message for the user

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self._gen = 0  # bumped by set_project: results read for another project are dropped
        self._runs: dict[int, RunRecord] = {}
        self._live_id: int | None = None
        self._live: RunCurves | None = None
        self._cache: dict[int, RunCurves] = {}
        self._loading: set[int] = set()
        self._refreshing = False
        self._current: int | None = None
        self._select_when_listed: int | None = None
        self._newest_when_listed = False  # see set_project
        self._seen = None
        self._dialogs: list[ConfigDialog] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_tree(), 1)
        layout.addLayout(self._build_buttons())
        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def _build_tree(self) -> QTreeWidget:
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        for col, tip in HEADER_TIPS.items():
            self.tree.headerItem().setToolTip(col, tip)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setToolTip("Select several runs (Ctrl/Shift+click) to overlay their curves")
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col in range(len(COLUMNS)):
            stretch = col == 0
            header.setSectionResizeMode(
                col,
                QHeaderView.ResizeMode.Stretch
                if stretch
                else QHeaderView.ResizeMode.ResizeToContents,
            )
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
        self.use_button = QPushButton("Use as model")
        self.use_button.setToolTip("Make the selected run the project's model (Predict, Pre-label)")
        self.use_button.clicked.connect(self.use_selected)
        for b in (self.config_button, self.delete_button, self.use_button):
            row.addWidget(b)
        row.addStretch(1)
        self._update_buttons()
        return row

    # --- the project --------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self._gen += 1
        self.project = project
        self._runs, self._cache, self._loading = {}, {}, set()
        self._live_id = self._live = self._current = self._select_when_listed = None
        self._refreshing = False
        self._newest_when_listed = True  # a project's first listing shows its newest run
        self._seen: tuple | None = None  # the runs and their states at the last listing
        self.tree.clear()
        self._update_buttons()
        self.shown_changed.emit([])
        if project is None:
            self._timer.stop()
            return
        self.refresh()
        self._timer.start()

    def set_live(self, run_id: int | None, curves: RunCurves | None = None) -> None:
        """The run this window trains and its curves (fed from its messages); None when
        it ended (its curves stay, as any run's)."""
        if self._live_id is not None and self._live is not None:
            self._cache[self._live_id] = self._live
        self._live_id, self._live = run_id, curves
        if run_id is not None:
            self._select_when_listed = run_id
        self.show_selected()

    def note_current_model(self, run_id: int) -> None:
        """The window made `run_id` the current model and said so already."""
        self._current = run_id

    def refresh(self) -> None:
        """Re-read the runs, and the curves of shown runs that another process trains, in
        a worker. Cheap queries; skipped while the previous refresh still runs."""
        if self.project is None or self._refreshing:
            return
        self._refreshing = True
        gen, project = self._gen, self.project
        # Decided here, not in the worker: the cache belongs to the GUI thread.
        maybe_external = [rid for rid in self.shown_ids() if rid != self._live_id]
        cached = {rid for rid in maybe_external if rid in self._cache}

        def work(_progress: Any) -> tuple[list[RunRecord], int | None, dict[int, RunCurves]]:
            runs = project.runs()
            status = {r.id: r.status for r in runs}
            curves = {
                rid: RunCurves.from_rows(project.metrics(rid))
                for rid in maybe_external
                if status.get(rid) == RunStatus.RUNNING or rid not in cached
            }
            return runs, project.current_model(), curves

        def done(result: tuple[list[RunRecord], int | None, dict[int, RunCurves]]) -> None:
            if gen == self._gen:
                self._refreshing = False
                self._on_refreshed(*result)

        def failed(exc: BaseException) -> None:
            if gen == self._gen:
                self._refreshing = False

        run_task(work, done, failed)

    def _on_refreshed(
        self, runs: list[RunRecord], current: int | None, curves: dict[int, RunCurves]
    ) -> None:
        changed = self._current is not None and current not in (None, self._current)
        self._current = current
        # Runs are made and ended by other processes and threads (the training child, the
        # checks' worker, `studio train` in a terminal), whose writes the window's project
        # does not hear: say so on its events, for Inspect and Analysis to list them.
        seen = (current, *((r.id, str(r.status)) for r in runs))
        if seen != self._seen and self.project is not None:  # the first listing too
            self.project.events.runs_changed.emit(None)
        self._seen = seen
        self.set_runs(runs, current)
        self._cache.update({rid: c for rid, c in curves.items() if rid != self._live_id})
        if changed:
            self.current_model_changed.emit(current)
        newest, self._newest_when_listed = self._newest_when_listed, False
        if self._select_when_listed in self._runs:
            rid, self._select_when_listed = self._select_when_listed, None
            self.select_ids([rid])  # shows it
        elif newest and runs and not self.selected_ids():
            self.select_ids([max(self._runs)])  # its curves, not empty plots
        elif curves:
            self.show_selected()
        self.refreshed.emit()

    # --- the table ----------------------------------------------------------------------------

    def set_runs(self, runs: Sequence[RunRecord], current_model: int | None) -> None:
        """Show `runs` (newest first), updating rows in place; the current model's row is bold."""
        self._runs = {r.id: r for r in runs}
        for i in reversed(range(self.tree.topLevelItemCount())):
            if self._item_id(self.tree.topLevelItem(i)) not in self._runs:
                self.tree.takeTopLevelItem(i)
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
        running = run.status == RunStatus.RUNNING
        duration = run_duration(run.created_at, run.finished_at, running)
        texts = (
            f"#{run.id} {run.name}",
            run.status + (f" · ep {run.epoch + 1}" if running else ""),
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
        item.setToolTip(3, run.created_at or "")
        item.setToolTip(5, f"best {run.best_metric_name}" if run.best_metric_name else "")

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

    # --- selection and curves -----------------------------------------------------------------

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
        self.show_selected()

    def shown_ids(self) -> list[int]:
        """The selected runs, or the live one when none is selected."""
        ids = self.selected_ids()
        if not ids and self._live_id is not None:
            ids = [self._live_id]
        return ids[:MAX_SHOWN]

    def curves(self, run_id: int) -> RunCurves | None:
        return self._live if run_id == self._live_id else self._cache.get(run_id)

    def show_selected(self) -> None:
        shown, missing = [], []
        for rid in self.shown_ids():
            curves, run = self.curves(rid), self._runs.get(rid)
            if curves is None:
                missing.append(rid)
            else:
                shown.append((rid, f"#{rid} {run.name if run else ''}".strip(), curves))
        self.shown_changed.emit(shown)
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
            if gen == self._gen:
                self._loading.difference_update(ids)
                self._cache.update(curves)
                self.show_selected()

        def failed(exc: BaseException) -> None:
            if gen == self._gen:
                self._loading.difference_update(ids)

        run_task(work, done, failed)

    def _update_buttons(self) -> None:
        ids = self.selected_ids()
        self.config_button.setEnabled(len(ids) == 1)
        self.delete_button.setEnabled(bool(ids) and all(self._deletable(rid) for rid in ids))
        run = self._runs.get(ids[0]) if len(ids) == 1 else None
        self.use_button.setEnabled(run is not None and run.status == RunStatus.FINISHED)

    def use_selected(self) -> None:
        """Make the selected (finished) run the project's model."""
        (run_id,) = self.selected_ids()
        if self.project is not None:
            self.project.set_current_model(run_id)
            self.note_current_model(run_id)  # said here: the refresh must not say it again
            self.current_model_changed.emit(run_id)
            self.refresh()

    def _deletable(self, run_id: int) -> bool:
        run = self._runs.get(run_id)
        return run_id != self._live_id and run is not None and run.status != RunStatus.RUNNING

    # --- actions ------------------------------------------------------------------------------

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
        """Delete the selected runs (not a running one) with their folders, asking first."""
        ids = [rid for rid in self.selected_ids() if self._deletable(rid)]
        if not ids or self.project is None:
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
        for rid in ids:
            try:
                self.project.delete_run(rid)  # a few files: quick enough for the GUI thread
            except StudioError as e:
                self.failed.emit(str(e))
            self._cache.pop(rid, None)
        self.refresh()

    def export_csv(self, path: Path) -> Any:
        """Write the metrics of the runs shown, from the database, to `path` in a worker.
        Returns the Task (its `finished` carries the number of rows)."""
        if self.project is None:
            return None
        project, ids = self.project, self.shown_ids()
        names = {rid: getattr(self._runs.get(rid), "name", "") for rid in ids}

        def work(_progress: Any) -> int:
            return write_metrics_csv(path, [(rid, names[rid], project.metrics(rid)) for rid in ids])

        return run_task(work, None, lambda exc: self.failed.emit(f"CSV export failed: {exc}"))

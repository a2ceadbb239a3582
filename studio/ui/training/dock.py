"""The training dock: one Train button, an Advanced section, Stop and Resume, progress,
live plots and the runs list.

Train picks the model, recipe and device for the project (`studio.ml.run.preflight`), checks
what cannot work, creates the run and starts it in a `TrainingProcess` child, all but the
start in a worker thread. The GUI thread only polls the child's queue (every 150 ms,
never waiting), appends to numpy buffers and redraws at most 5 times a second. The child
runs at a lower CPU priority (nice 10, set from here on each of its threads), so on a
2-core machine the window stays responsive while training takes every core.

Runs started elsewhere (the command line) are read from the database every 2 seconds,
off the GUI thread, so they appear and plot live too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.ml.train.messages import (
    EpochMetrics,
    Failed,
    Finished,
    Iteration,
    Message,
    Notice,
    Started,
    Stopped,
)
from studio.ui.common.concurrency import run_task
from studio.ui.common.errors import error_text
from studio.ui.training.plots import RunCurves, TrainPlots
from studio.ui.training.runs_list import RunsView, format_duration
from studio.ui.training.settings_form import AdvancedForm, panel_info

POLL_MS = 150  # the child's queue is read this often, without waiting
UI_MIN_INTERVAL_S = 0.2  # progress text at most 5 times a second
KILL_AFTER_S = 20.0  # Stop turns into Kill when the run has not stopped by then
SETTINGS_KEY = "train_settings"
RESUMABLE = ("stopped", "failed", "queued")
NOTICE_STYLE = {  # colour, sign
    "error": ("#c62828", "✖"),
    "warning": ("#a15c00", "⚠"),
    "info": ("#2e7d32", "✔"),
}


# The training process runs at this niceness: on a 2-core laptop a training run at the
# window's priority takes every core and the event loop stutters; at nice 10 the kernel
# gives the window the CPU as soon as it wakes (CFS weight 110 vs 1024).
TRAIN_NICENESS = 10


def lower_priority(pid: int, niceness: int = TRAIN_NICENESS) -> int:
    """Set every thread of process `pid` (Linux niceness is per thread) to `niceness`;
    threads and processes it starts later inherit it. Returns how many threads changed.
    Best-effort: no /proc, or a process already gone, changes nothing."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        tids = [pid]
    changed = 0
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                changed += 1
        except OSError:  # gone, or not ours
            pass
    return changed


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            out += [int(c) for c in text.split()]
    except (OSError, ValueError):
        pass
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_rss(pid: int | None) -> int | None:
    """Resident memory in bytes of `pid` and its children (data-loader workers), from
    /proc; None where /proc cannot tell (not Linux, process gone). A few small file reads."""
    if not pid or not os.path.isdir(f"/proc/{pid}"):
        return None
    total, seen, todo = 0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss(p)
        todo += _children(p)
    return total or None


def format_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class Eta:
    """Time left of a run, from the wall-clock pace of this session: it includes data
    loading and the evaluation after each epoch, which images/s does not."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.it0 = 0

    def start(self, iteration: int) -> None:
        self.t0, self.it0 = None, iteration

    def update(self, iteration: int, total: int | None, budget_left: float | None) -> float | None:
        now = time.monotonic()
        if self.t0 is None:  # the first step includes start-up: measure from it
            self.t0, self.it0 = now, iteration
            return budget_left
        done = iteration - self.it0
        eta = None
        if total and done > 0:
            eta = (now - self.t0) / done * max(0, total - iteration)
        if budget_left is not None:
            eta = budget_left if eta is None else min(eta, budget_left)
        return eta


class StallMeter(QObject):
    """The event loop's responsiveness: how late a 10 ms timer fires. `max_ms` is the
    longest stall since `start()` and `percentile(99)` the typical bad one (a histogram
    of 1 ms bins: bounded memory for runs of any length). `busy_max_ms` counts only the
    GUI thread's own CPU time in each stall: on a loaded machine a stall where it
    computed nothing was the kernel giving the CPU to another process. The panel runs it
    while it trains and shows it in the progress bar's tooltip."""

    INTERVAL_MS = 10

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self, interval=self.INTERVAL_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = self._last_cpu = 0.0
        self._hist = [0] * 1001  # lateness in whole ms; the last bin holds >= 1 s
        self.max_ms = self.busy_max_ms = 0.0
        self.samples = 0

    def start(self) -> None:
        self._hist = [0] * 1001
        self.max_ms = self.busy_max_ms = 0.0
        self.samples = 0
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        late = max(0.0, (now - self._last) * 1000 - self.INTERVAL_MS)
        busy = min(late, (cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu
        self.samples += 1
        self.max_ms = max(self.max_ms, late)
        self.busy_max_ms = max(self.busy_max_ms, busy)
        self._hist[min(int(late), 1000)] += 1

    def percentile(self, q: float) -> float:
        """Lateness in ms (to the 1 ms bin) that q percent of the ticks did not exceed."""
        need, seen = self.samples * q / 100, 0
        for ms, count in enumerate(self._hist):
            seen += count
            if seen >= need and seen:
                return float(ms)
        return 0.0

    def summary(self) -> str:
        return (
            f"event-loop stall: max {self.max_ms:.0f} ms (GUI thread busy at most "
            f"{self.busy_max_ms:.0f} ms of it), 99th percentile {self.percentile(99):.0f} ms, "
            f"{self.samples} ticks"
        )


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
        self._gen = 0  # bumped by set_project: results for another project are dropped
        self._tp: Any = None  # the TrainingProcess this window runs
        self._run_id: int | None = None
        self._live: RunCurves | None = None
        self._pending: list[Message] | None = None  # a resume's messages until its history loads
        self._last_iter: Iteration | None = None
        self._started: Started | None = None
        self._checking = False  # the pre-flight worker runs
        self._stop_asked = 0.0
        self._ended_at = 0.0
        self._ui_at = 0.0
        self._rss_at = 0.0
        self._rss: int | None = None
        self._budget: float | None = None  # seconds, a new run's time budget
        self._t0 = 0.0  # when the run's Started arrived
        self._notice_lines: list[tuple[str, str]] = []  # (text, level)
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
        layout = self._left_layout = QVBoxLayout(left)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self._build_buttons())
        layout.addWidget(self._build_progress())
        layout.addWidget(self._build_advanced())
        self.runs = RunsView()
        self.runs.selection_changed.connect(lambda _ids: self._update_buttons())
        self.runs.refreshed.connect(self._update_buttons)  # a run's status changed
        self.runs.current_model_changed.connect(self.current_model_changed)
        self.runs.failed.connect(lambda text: self._add_notice(text, "error"))
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
        box = self._advanced_box = QWidget()
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
        self.runs.shown_changed.connect(self.plots.show_runs)
        self.plots.png_requested.connect(self.export_png_interactive)
        self.plots.csv_requested.connect(self.export_csv_interactive)
        return self.plots

    def _build_timers(self) -> None:
        self._poll_timer = QTimer(self, interval=POLL_MS)
        self._poll_timer.timeout.connect(self._poll)
        self._save_timer = QTimer(self, interval=500, singleShot=True)
        self._save_timer.timeout.connect(self._save_settings)

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.advanced_area.setVisible(on)
        # Open, the settings share the height with the runs list; closed, the list has it.
        self._left_layout.setStretchFactor(self._advanced_box, 3 if on else 0)

    # --- project ----------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show `project`'s runs and remembered settings (None: nothing). A run this window
        trains for the previous project is asked to stop (it saves a checkpoint; Resume
        continues it)."""
        if self._tp is not None:
            self.shutdown()
        self._gen += 1
        self.project = project
        self.ml = None
        self._checking = False
        self._live = None
        self._run_id = None
        self._set_notices([])
        self.runs.set_project(project)
        self.form.set_info(None, {})
        if project is None:
            self.recipe_label.setText("Open a project to train.")
            self._update_buttons()
            return
        settings = project.get_setting(SETTINGS_KEY, {}) or {}
        self.recipe_label.setText("Looking at the project…")
        gen, path = self._gen, project.path
        run_task(
            lambda _p: panel_info(path),
            lambda info: self._on_ml_info(gen, info, settings),
            lambda exc: self._on_error(gen, "Training is not available", exc),
        )
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
        gpu = " (no GPU found)" if device == "cpu" and v["device"] == "auto" else ""
        scratch = v["weights"] == "none" and v["backbone_weights"] == "none"
        verb = "trains <b>{}</b> from scratch" if scratch else "fine-tunes <b>{}</b>"
        self.recipe_label.setText(
            f"Train {verb.format(model)} on the <b>{device}</b>{gpu}: {length}, batch "
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
        self._checking = True
        self._update_buttons()
        self.progress.setFormat("checking…")
        self._set_notices([])
        gen, path = self._gen, self.project.path

        def work(_progress: Any) -> tuple[Any, int | None]:
            from studio.ml.run import preflight
            from studio.ml.run import process as runner

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
        self._checking = False
        self._set_notices(report.warnings, errors=report.errors)
        if run_id is None:
            self.progress.setFormat("not started")
            self._update_buttons()
            return
        self._start_process(run_id, resume=False, budget=report.config.time_budget)

    def _on_start_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen:
            return
        self._checking = False
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

    def _start_process(self, run_id: int, resume: bool, budget: float | None = None) -> None:
        """Start the child. `budget`: the time budget of a new run, for the ETA (a resumed
        run's earlier sessions count against it too, which this window cannot know)."""
        from studio.ml.run.process import TrainingProcess  # imported by the worker already

        assert self.project is not None
        self._run_id, self._live = run_id, RunCurves()
        self._pending = [] if resume else None
        self._last_iter = self._started = None
        self._stop_asked = self._ended_at = 0.0
        self._rss, self._budget = None, budget
        tp = TrainingProcess(self.project.path, run_id, resume=resume)
        try:
            tp.start()
        except OSError as e:  # no process could be started (limits, memory)
            self._add_notice(f"The training process cannot start: {e}", "error")
            self.progress.setFormat("not started")
            self._update_buttons()
            return
        # Before the child imports torch and starts its threads: they inherit the niceness.
        lower_priority(tp.pid)
        self._tp = tp
        self.stall.start()
        self._poll_timer.start()
        self.progress.setRange(0, 0)  # busy until Started says how long
        self.progress.setFormat("starting…")
        self.runs.set_live(run_id, self._live)  # selected once it is listed
        self._update_buttons()
        self.runs.refresh()
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
        self.stall.stop()
        self.form.shutdown()
        self.runs.set_project(None)

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
        elif tp.finished is not None:
            self._ended_at = self._ended_at or now
            if now - self._ended_at > KILL_AFTER_S:  # said it ended but does not exit
                tp.kill()
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
            self.runs.refresh()  # the best metric
        elif isinstance(msg, Started):
            self._on_started(msg)
        elif isinstance(msg, Notice):
            self._add_notice(msg.text)
        elif isinstance(msg, Failed):
            self._add_notice(msg.error, "error")

    def _on_started(self, msg: Started) -> None:
        self._started, self._t0 = msg, time.monotonic()
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
        self.runs.refresh()

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
            if gen != self._gen or run_id != self._run_id or self._pending is None:
                return  # another project, another run, or it ended meanwhile
            pending, self._pending = self._pending, None
            self._live = curves
            for m in pending:
                self._handle(m)
            self.runs.set_live(run_id, curves)

        run_task(work, done, lambda exc: done(RunCurves()))

    def _end(self, msg: Message | None) -> None:
        run_id = self._run_id
        self._tp = None
        self._poll_timer.stop()
        self.stall.stop()
        if self._pending is not None:  # ended before the history came: keep what arrived
            pending, self._pending = self._pending, None
            for m in pending:
                self._handle(m)
        self.runs.set_live(None)  # its curves stay shown, as any run's
        status = "failed"
        if isinstance(msg, Finished):
            status = "finished"
            best = (
                f"best {msg.best_metric_name} {msg.best_metric:.3f}"
                if msg.best_metric is not None
                else "no validation"
            )
            self.progress.setFormat(f"finished after {msg.epoch} epochs ({best})")
            self._add_notice(
                f"Run {run_id} finished: its best model is now the project's model.", "info"
            )
        elif isinstance(msg, Stopped):
            status = "stopped"
            self.progress.setFormat(f"stopped at epoch {msg.epoch + 1}: Resume continues it")
        else:
            self.progress.setFormat("failed")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setToolTip(f"During the run, {self.stall.summary()}")
        self._stop_asked = 0.0
        self.stop_button.setText("Stop")
        self._update_buttons()
        if run_id is not None and status == "finished":
            self.runs.note_current_model(run_id)  # said here: the refresh must not say it again
        self.runs.refresh()
        if run_id is not None:
            self.run_ended.emit(run_id, status)
            if status == "finished":
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
        left = None if self._budget is None else self._budget - (time.monotonic() - self._t0)
        eta = self.eta.update(m.iteration, total or None, left)
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
        self._notice_lines = [(t, "error") for t in errors or []]
        self._notice_lines += [(t, "warning") for t in warnings]
        self._render_notices()

    def _add_notice(self, text: str, level: str = "warning") -> None:
        if (text, level) not in self._notice_lines:
            self._notice_lines.append((text, level))
            self._render_notices()

    def _render_notices(self) -> None:
        lines = [
            f'<span style="color:{NOTICE_STYLE[level][0]}">{NOTICE_STYLE[level][1]} '
            f"{_html(text)}</span>"
            for text, level in self._notice_lines[-8:]
        ]
        self.notices.setText("<br>".join(lines))
        self.notices.setVisible(bool(lines))

    def notice_texts(self) -> list[str]:
        return [t for t, _ in self._notice_lines]

    def _update_buttons(self) -> None:
        has = self.project is not None
        training = self._tp is not None
        self.train_button.setEnabled(has and not training and not self._checking)
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
        """The metrics of the runs shown, from the database, as CSV (in a worker)."""
        return self.runs.export_csv(path)


_ORPHANS: list[Any] = []  # runs asked to stop at shutdown: their handles live until exit


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""The training dock: one Train button, an Advanced section, Stop and Resume, progress,
live plots and the runs list.

The dock is a view of a `TrainingSession` (`studio.ml.run.session`, Qt-free), which owns
the training process and its states; the dock forwards the buttons to it and shows what it
says. Train runs the pre-flight checks and creates the run in a worker thread
(`check_and_create_run` through `run_task`), then the session starts the child. The GUI
thread only calls `session.poll()` every 150 ms (it never waits), appends to numpy buffers
and redraws at most 5 times a second. The child runs at nice 10 (set by the session on
each of its threads): on 2 cores the window stays responsive while training takes both.
Runs started elsewhere (the command line) are read from the database every 2 seconds,
off the GUI thread, so they appear and plot live too. The models and device are read
once the panel shows: a window used only for labelling never imports torch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.core.records import RunRecord
from studio.ml.run.recorder import finished_text
from studio.ml.run.session import (
    NoticeLevel,
    SessionState,
    TrainingSession,
    can_resume,
    check_and_create_run,
)
from studio.ml.train.messages import EpochMetrics, Iteration, Message, Started
from studio.ui.common.concurrency import run_task
from studio.ui.common.errors import error_text
from studio.ui.common.scrolled import scrolled
from studio.ui.training.choice_lines import ChoiceLines
from studio.ui.training.live_curves import LiveCurves
from studio.ui.training.ml_info import panel_info
from studio.ui.training.notices import NoticeList
from studio.ui.training.plots import RunCurves, TrainPlots
from studio.ui.training.run_progress import Eta, RunProgress
from studio.ui.training.runs_list import RunsView
from studio.ui.training.settings_form import AdvancedForm
from studio.ui.training.stall_meter import StallMeter
from studio.ui.training.weights_folder import WEIGHTS_DIR_KEY

if TYPE_CHECKING:
    from studio.ml.run.preflight import PanelInfo, Preflight

POLL_MS = 150  # the child's queue is read this often, without waiting
UI_MIN_INTERVAL_S = 0.2  # progress text at most 5 times a second
SETTINGS_KEY = "train_settings"
# What the progress bar says in a state, and whether its bar then has no end.
STATE_WORDS = {
    SessionState.CHECKING: ("checking…", False),
    SessionState.NOT_STARTED: ("not started", False),
    SessionState.STARTING: ("starting…", True),  # until Started says how long
    SessionState.STOPPING: ("stopping after this iteration…", False),
}
KILL_OFFERED = (SessionState.STOP_OVERDUE, SessionState.KILLING)


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
        self.ml: PanelInfo | None = None  # read by a worker once the project opens
        self._gen = 0  # bumped by set_project: results for another project are dropped
        self._ml_asked = 0  # the newest panel_info asked for; older answers are dropped
        self._ml_pending = False  # torch: 750 MB and seconds of held GIL at every open
        self.visibilityChanged.connect(self._on_visible)
        self.session = TrainingSession()
        self.live: LiveCurves | None = None  # the curves of the run this window trains
        self._shown_at = 0.0  # when the progress was last shown
        self.eta = Eta()
        self.stall = StallMeter(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scrolled(self._build_left()))  # a short screen scrolls it
        splitter.addWidget(self._build_plots())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([460, 700])
        self.setWidget(splitter)
        self._build_timers()
        self._connect_session()
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
        self.runs.failed.connect(lambda text: self.notices.add(text, NoticeLevel.ERROR))
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
        self.run_progress = RunProgress()
        self.progress, self.stats_label = self.run_progress.bar, self.run_progress.stats
        self.choice = ChoiceLines()  # why one click chooses what it does
        self.notices = NoticeList()
        for w in (self.recipe_label, self.choice, self.run_progress, self.notices):
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
        self.form.weights_folder.folder_changed.connect(self._on_weights_folder)
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
        self._poll_timer.timeout.connect(self._tick)
        self._save_timer = QTimer(self, interval=500, singleShot=True)
        self._save_timer.timeout.connect(self._save_settings)

    def _connect_session(self) -> None:
        s = self.session
        s.state_changed.connect(self._on_state)
        s.started.connect(self._on_started)
        s.metrics.connect(self._on_metrics)
        s.notice.connect(self.notices.add)
        s.ended.connect(self._on_ended)

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
        if self.session.is_training:
            self.shutdown()
        else:
            self.session.shutdown()  # a check under way is forgotten: its result is dropped
        self._gen += 1
        self.project = project
        self.ml = None
        self.live = None
        self.notices.replace([])
        self.choice.clear()
        self.runs.set_project(project)
        self.form.set_info(None, {})
        self.form.weights_folder.set_folder(project and project.get_setting(WEIGHTS_DIR_KEY))
        if project is None:
            self.recipe_label.setText("Open a project to train.")
            self._update_buttons()
            return
        self.recipe_label.setText("Looking at the project…")
        self._ml_pending = True
        self._on_visible(self.isVisible())
        self._update_buttons()

    def _on_visible(self, visible: bool) -> None:
        if visible and self._ml_pending and self.project is not None:
            self._ml_pending = False
            self._ask_ml()

    def _ask_ml(self) -> None:
        """Read the models, the device and what "auto" means here, in a worker; again
        when the weights folder changes what one click chooses."""
        assert self.project is not None
        self._ml_asked += 1
        gen, asked, path = self._gen, self._ml_asked, self.project.path
        run_task(
            lambda _p: panel_info(path),
            lambda info: self._on_ml_info(gen, asked, info),
            lambda exc: self._on_error(gen, "Training is not available", exc),
        )

    def _on_ml_info(self, gen: int, asked: int, info: PanelInfo) -> None:
        if gen != self._gen or asked != self._ml_asked:
            return
        # The user's settings as they are now (a recipe that changes keeps them).
        settings = self.form.overrides() if self.ml is not None else self._stored_settings()
        self.ml = info
        self.form.set_info(info, settings)
        self._update_recipe_label()
        self._update_buttons()
        self._explain()

    def _on_weights_folder(self, folder: str) -> None:
        """A new weights folder (valid; "" for none): saved in the project, and what one
        click chooses is asked again (a pretrained backbone may now be here)."""
        if self.project is None:
            return
        if folder:
            self.project.set_setting(WEIGHTS_DIR_KEY, folder)
        else:
            self.project.delete_setting(WEIGHTS_DIR_KEY)
        self._ask_ml()

    def _explain(self) -> None:
        if self.project is not None and self.ml is not None:
            self.choice.refresh(self.project.path, self.form.overrides())

    def _on_error(self, gen: int, what: str, exc: BaseException) -> None:
        if gen == self._gen:
            self.notices.replace([], errors=[f"{what}: {error_text(exc)}"])

    def _on_form_changed(self) -> None:
        self._update_recipe_label()
        self._save_timer.start()

    def _save_settings(self) -> None:
        if self.project is not None and self.ml is not None:
            self.project.set_setting(SETTINGS_KEY, self.form.overrides())
            self._explain()

    def _update_recipe_label(self) -> None:
        if self.ml is not None:
            self.recipe_label.setText(self.form.recipe_text())

    def _stored_settings(self) -> dict[str, Any]:
        assert self.project is not None
        return dict(self.project.get_setting(SETTINGS_KEY, {}) or {})

    # --- starting and stopping ---------------------------------------------------------------

    @property
    def is_training(self) -> bool:
        return self.session.is_training

    def train(self) -> None:
        """Check what cannot work, create a run with the recipe (and the Advanced settings)
        and start it. The checks and the run's folder are made in a worker thread."""
        if self.project is None or not self.session.can_start:
            return
        self._save_timer.stop()
        settings = self.form.overrides() if self.ml is not None else self._stored_settings()
        self.project.set_setting(SETTINGS_KEY, settings)
        self._explain()  # the sentence of the settings trained (an edit's may not be shown yet)
        self.notices.replace([])
        self.session.begin_check()
        gen, path = self._gen, self.project.path
        run_task(
            lambda _progress: check_and_create_run(path, settings),
            lambda res: self._on_checked(gen, *res),
            lambda exc: self._on_start_failed(gen, exc),
        )

    def _on_checked(self, gen: int, report: Preflight, run_id: int | None) -> None:
        if gen != self._gen or self.session.state != SessionState.CHECKING:
            return
        self.notices.replace(report.warnings, errors=report.errors)
        if run_id is None:
            self.session.check_failed()
            return
        self._start(run_id, resume=False, budget=report.config.time_budget)

    def _on_start_failed(self, gen: int, exc: BaseException) -> None:
        if gen != self._gen or self.session.state != SessionState.CHECKING:
            return
        self.notices.replace([], errors=[f"Training cannot start: {error_text(exc)}"])
        self.session.check_failed()

    def resume(self) -> None:
        """Continue the selected stopped or failed run from its last checkpoint."""
        run = self._resumable()
        if run is None or not self.session.can_start:
            return
        self.notices.replace([])
        self._start(run.id, resume=True, budget=run.config.get("time_budget"))

    def _resumable(self) -> RunRecord | None:
        ids = self.runs.selected_ids()
        run = self.runs.run(ids[0]) if len(ids) == 1 else None
        return run if run is not None and can_resume(run.status, run.dir) else None

    def _start(self, run_id: int, resume: bool, budget: float | None = None) -> None:
        """Start the child; `budget`: the run's time budget in seconds, for the ETA."""
        assert self.project is not None
        self.live = LiveCurves(run_id, resume)
        if not self.session.start(self.project.path, run_id, resume=resume, budget=budget):
            return  # the session said why
        self.stall.start()
        self._poll_timer.start()
        self.runs.set_live(run_id, self.live.curves)  # selected once it is listed
        self.runs.refresh()
        self.run_started.emit(run_id)

    def stop(self) -> None:
        """Ask the run to stop (checkpoint first); a press once the stop is overdue
        (`session.KILL_AFTER_S`) kills it."""
        if self.session.is_training:
            self.session.stop()

    def shutdown(self) -> None:
        """For the window's close: ask a run to stop (it checkpoints; it is waited for at
        exit, about one iteration) and stop the timers. Never blocks."""
        self.session.shutdown()
        self._poll_timer.stop()
        self.stall.stop()
        self.form.shutdown()
        self.runs.set_project(None)

    # --- what the session says -----------------------------------------------------------------

    def _tick(self) -> None:
        self.session.poll()
        now = time.monotonic()
        if self.session.is_training and now - self._shown_at > UI_MIN_INTERVAL_S:
            self._shown_at = now
            self._show_progress()

    def _on_state(self, state: SessionState) -> None:
        if state in STATE_WORDS:
            self.run_progress.show_words(*STATE_WORDS[state])
        self.stop_button.setText("Kill" if state in KILL_OFFERED else "Stop")
        self._update_buttons()

    def _on_metrics(self, msg: Iteration | EpochMetrics) -> None:
        if self.live is None or not self.live.add(msg):
            return  # a resume's messages wait for its history
        self.plots.touch()
        if isinstance(msg, EpochMetrics):
            self.runs.refresh()  # the best metric

    def _on_started(self, msg: Started) -> None:
        self.eta.start(msg.iteration)
        self.run_progress.show_started(msg)
        self.recipe_label.setText(
            f"Training <b>{msg.model.split(':')[-1]}</b> ({msg.task.replace('_', ' ')}) on the "
            f"<b>{msg.device}</b>: {msg.num_train} training images, {msg.num_val} validation."
        )
        if self.live is not None and self.live.waiting_for_history:
            self._load_history(self.live, msg)
        self.runs.refresh()

    def _load_history(self, live: LiveCurves, started: Started) -> None:
        """A resumed run: its curves so far from the database, then what arrived since."""
        gen, project, run_id = self._gen, self.project, live.run_id
        assert project is not None

        def work(_progress: Any) -> RunCurves:
            rows = [
                r
                for r in project.metrics(run_id)
                if r[0] == "iter" or r[1] < started.epoch  # epochs the resume trains again
            ]
            return RunCurves.from_rows(rows, upto_step=started.iteration)

        def done(curves: RunCurves) -> None:
            if gen != self._gen or live is not self.live or not live.waiting_for_history:
                return  # another project, another run, or it ended meanwhile
            live.set_history(curves)
            self.plots.touch()
            self.runs.set_live(run_id, curves)

        run_task(work, done, lambda exc: done(RunCurves()))

    def _on_ended(self, run_id: int, status: str, msg: Message | None) -> None:
        self._poll_timer.stop()
        self.stall.stop()
        if self.live is not None and self.live.waiting_for_history:
            self.live.release_pending()  # ended before the history came: keep what arrived
            self.plots.touch()
        self.runs.set_live(None)  # its curves stay shown, as any run's
        self.run_progress.show_end(msg, self.stall.summary())
        current = self.project.current_model() if self.project is not None else None
        finished = status == RunStatus.FINISHED and current == run_id
        if status == RunStatus.FINISHED:
            self.notices.add(finished_text(run_id, current), NoticeLevel.INFO)
        if finished:
            self.runs.note_current_model(run_id)  # said here: the refresh must not say it again
        self._update_buttons()
        self.runs.refresh()
        self.run_ended.emit(run_id, str(status))
        if finished:
            self.current_model_changed.emit(run_id)

    def _show_progress(self) -> None:
        run = self.session.run
        if run is None:
            return
        m, s = run.last_iteration, run.started
        if m is None or s is None or self.session.state != SessionState.RUNNING:
            self.run_progress.show_memory(run.memory)
            return
        left = run.budget_left(time.monotonic())
        self.run_progress.show_iteration(m, s, run.memory, self.eta, left, run.budget)

    def notice_texts(self) -> list[str]:
        return self.notices.texts()

    def _update_buttons(self) -> None:
        has = self.project is not None
        s = self.session
        self.train_button.setEnabled(has and s.can_start)
        self.stop_button.setEnabled(s.can_stop)
        # Not while checking either: the checked run would start beside the resumed one.
        self.resume_button.setEnabled(has and s.can_start and self._resumable() is not None)
        # Not before the recipe is known: it is filled in then, over what was typed.
        self.form.setEnabled(has and self.ml is not None and not s.is_training)

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

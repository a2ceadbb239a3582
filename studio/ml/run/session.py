"""One training run watched from the window, as an explicit state machine without Qt.

`TrainingSession` owns the training process of the run the window trains (a
`TrainingProcess`), reads its messages when `poll()` is called (the window calls it from
a timer on its GUI thread: it never waits), and turns them into a few notifications
(psygnal signals, so a Qt-free test can watch them too). Its states:

    IDLE / NOT_STARTED / FINISHED / STOPPED / FAILED   nothing runs: Train and Resume may
        |                                             start one
        | begin_check()            start()
        v                             |
    CHECKING --- start() ----------> STARTING --Started--> RUNNING
        |                                |                    |
        check_failed() -> NOT_STARTED    +------ stop() ------+--> STOPPING
                                                                     |  KILL_AFTER_S
                                                                     v
                                             KILLING <-- stop() -- STOP_OVERDUE

and from every state with a process, the process's exit ends the run (FINISHED, STOPPED
or FAILED, by its last message) and `shutdown()` leaves it to stop on its own (IDLE);
a `start()` whose process cannot start goes to NOT_STARTED. A transition not drawn here raises `SessionError`.

A run asked to stop at shutdown still has to save its checkpoint: its handle (and the
queue the child writes into) is kept in `left_running` and, at the interpreter's exit,
`wait_for_left_running` reads its messages until it has exited.
"""

from __future__ import annotations

import atexit
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from psygnal import Signal

from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.ml.run.procinfo import lower_priority, process_rss
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

if TYPE_CHECKING:
    from studio.ml.run.preflight import Preflight

KILL_AFTER_S = 20.0  # a stop that has not ended the run by then may be turned into a kill
MEMORY_EVERY_S = 1.0  # the child's memory is read this often (a few ms with psutil)
RESUMABLE = frozenset({RunStatus.STOPPED, RunStatus.FAILED, RunStatus.QUEUED})
LAST_CHECKPOINT = "last.pt"  # train.checkpoint.LAST, named here without importing torch


def can_resume(status: str, run_dir: Path) -> bool:
    """Whether Resume may be offered for a run: a resumable status AND a whole checkpoint
    on disk (a run that failed or was killed before its first save has nothing to
    continue; a checkpoint cut short, whose zip directory is gone, failed every Resume)."""
    path = Path(run_dir) / LAST_CHECKPOINT
    return status in RESUMABLE and path.is_file() and zipfile.is_zipfile(path)


class SessionState(StrEnum):
    IDLE = "idle"  # nothing started since the project opened (or since shutdown)
    CHECKING = "checking"  # pre-flight checks and the run's creation run in the background
    NOT_STARTED = "not_started"  # the checks, or starting the process, refused
    STARTING = "starting"  # the child runs; its Started message has not come yet
    RUNNING = "running"
    STOPPING = "stopping"  # asked to save a checkpoint and stop after this iteration
    STOP_OVERDUE = "stop_overdue"  # asked KILL_AFTER_S ago and still running: Kill is offered
    KILLING = "killing"  # SIGKILL sent; the exit has not been seen yet
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


RESTING = frozenset(
    {
        SessionState.IDLE,
        SessionState.NOT_STARTED,
        SessionState.FINISHED,
        SessionState.STOPPED,
        SessionState.FAILED,
    }
)
WITH_PROCESS = frozenset(
    {
        SessionState.STARTING,
        SessionState.RUNNING,
        SessionState.STOPPING,
        SessionState.STOP_OVERDUE,
        SessionState.KILLING,
    }
)
_ENDS = {
    RunStatus.FINISHED: SessionState.FINISHED,
    RunStatus.STOPPED: SessionState.STOPPED,
    RunStatus.FAILED: SessionState.FAILED,
}
_S = SessionState
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    **{s: frozenset({_S.CHECKING, _S.STARTING, _S.NOT_STARTED, _S.IDLE}) for s in RESTING},
    _S.CHECKING: frozenset({_S.STARTING, _S.NOT_STARTED, _S.IDLE}),
    _S.STARTING: frozenset({_S.RUNNING, _S.STOPPING, *_ENDS.values(), _S.IDLE}),
    _S.RUNNING: frozenset({_S.STOPPING, *_ENDS.values(), _S.IDLE}),
    _S.STOPPING: frozenset({_S.STOP_OVERDUE, *_ENDS.values(), _S.IDLE}),
    _S.STOP_OVERDUE: frozenset({_S.KILLING, *_ENDS.values(), _S.IDLE}),
    _S.KILLING: frozenset({*_ENDS.values(), _S.IDLE}),
}


class NoticeLevel(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class SessionError(RuntimeError):
    """A transition the state machine does not have (a programming error)."""


class RunProcess(Protocol):
    """What the session needs of a training process (`TrainingProcess` has it)."""

    finished: Message | None

    @property
    def pid(self) -> int | None: ...
    def start(self) -> None: ...
    def is_alive(self) -> bool: ...
    def poll(self, timeout: float = 0.0) -> list[Message]: ...
    def request_stop(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> Message: ...
    def close(self) -> None: ...


ProcessFactory = Callable[[Path, int, bool], RunProcess]


def spawn_training_process(project_dir: Path, run_id: int, resume: bool) -> RunProcess:
    """The real child: `TrainingProcess` (imported here, as it imports torch)."""
    from studio.ml.run.process import TrainingProcess

    return TrainingProcess(project_dir, run_id, resume=resume)


@dataclass
class LiveRun:
    """What the session knows of the run it started last. Times are `clock()` seconds."""

    run_id: int
    resume: bool
    process: RunProcess
    budget: float | None = None  # seconds, the run's time budget (None: none or unknown)
    started: Started | None = None
    started_at: float = 0.0  # when Started arrived, less the run's earlier sessions
    last_iteration: Iteration | None = None
    memory: int | None = None  # resident bytes of the child and its workers
    memory_at: float = field(default=-1e18)
    stop_asked_at: float = 0.0
    exit_seen_at: float = 0.0  # when its terminal message came while it still ran

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def budget_left(self, now: float) -> float | None:
        """Seconds of the time budget left (None without one)."""
        return None if self.budget is None else self.budget - (now - self.started_at)


class TrainingSession:
    """The training run the window trains: start, watch, stop, kill, leave at shutdown.

    Signals (emitted on the thread that calls the methods, `poll()` included):
    `state_changed(SessionState)`, `started(Started)`, `metrics(Iteration | EpochMetrics)`,
    `notice(text, NoticeLevel)`, and `ended(run_id, RunStatus, terminal message or None)`
    once the child has exited."""

    state_changed = Signal(object)
    started = Signal(object)
    metrics = Signal(object)
    notice = Signal(str, str)
    ended = Signal(int, str, object)

    def __init__(
        self,
        *,
        spawn: ProcessFactory = spawn_training_process,
        clock: Callable[[], float] = time.monotonic,
        read_memory: Callable[[int | None], int | None] = process_rss,
        renice: Callable[[int], Any] = lower_priority,
        kill_after_s: float = KILL_AFTER_S,
    ):
        self._spawn, self._clock = spawn, clock
        self._read_memory, self._renice = read_memory, renice
        self.kill_after_s = kill_after_s
        self.state = SessionState.IDLE
        self.run: LiveRun | None = None  # the last run started (kept after it ended)
        self.left_running: list[RunProcess] = []  # asked to stop at shutdown
        self._exit_hook = False

    # --- state ----------------------------------------------------------------------------

    @property
    def is_training(self) -> bool:
        """A child process of this session runs (or has not been seen to exit yet)."""
        return self.state in WITH_PROCESS

    @property
    def can_start(self) -> bool:
        return self.state in RESTING

    @property
    def can_stop(self) -> bool:
        """Stop (or Kill) does something now: not while a stop is still being waited for."""
        return self.state in (_S.STARTING, _S.RUNNING, _S.STOP_OVERDUE, _S.KILLING)

    @property
    def process(self) -> RunProcess | None:
        return self.run.process if self.run is not None and self.is_training else None

    @property
    def pid(self) -> int | None:
        return self.run.pid if self.run is not None else None

    def _go(self, new: SessionState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise SessionError(f"a training session cannot go from {self.state} to {new}")
        self.state = new
        self.state_changed.emit(new)

    # --- starting -------------------------------------------------------------------------

    def begin_check(self) -> None:
        """The pre-flight checks (`check_and_create_run`) started in the background."""
        self._go(_S.CHECKING)

    def check_failed(self) -> None:
        """The checks refused the run, or could not run: nothing was started."""
        if self.state != _S.CHECKING:
            raise SessionError(f"no check to fail while {self.state}")
        self._go(_S.NOT_STARTED)

    def start(
        self, project_dir: Path, run_id: int, *, resume: bool = False, budget: float | None = None
    ) -> bool:
        """Start run `run_id` of the project at `project_dir` in a child process. `budget`:
        the run's time budget in seconds, for the time left (a resumed run's earlier
        sessions count against it: `Started.elapsed`). False, with an error notice,
        where no process could be started (limits, memory)."""
        if not (self.can_start or self.state == _S.CHECKING):
            raise SessionError(f"a training session cannot start a run while {self.state}")
        process = self._spawn(Path(project_dir), run_id, resume)
        try:
            process.start()
        except OSError as e:
            self._go(_S.NOT_STARTED)
            self.notice.emit(f"The training process cannot start: {e}", NoticeLevel.ERROR)
            return False
        # Before the child imports torch and starts its threads: they inherit the niceness.
        self._renice_child(process)
        self.run = LiveRun(run_id, resume, process, budget=budget)
        self._go(_S.STARTING)
        return True

    def _renice_child(self, process: RunProcess) -> None:
        if process.pid:
            self._renice(process.pid)

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the run to save a checkpoint and stop after this iteration; pressed again
        once the stop is overdue (KILL_AFTER_S), kill it. Repeating a pending stop does
        nothing."""
        run = self.run
        if run is None or not self.is_training:
            raise SessionError(f"nothing to stop while {self.state}")
        self._check_overdue(self._clock())
        if self.state in (_S.STOP_OVERDUE, _S.KILLING):
            run.process.kill()
            if self.state == _S.STOP_OVERDUE:
                self._go(_S.KILLING)
        elif self.state in (_S.STARTING, _S.RUNNING):
            run.process.request_stop()
            run.stop_asked_at = self._clock()
            self._go(_S.STOPPING)

    def _check_overdue(self, now: float) -> None:
        run = self.run
        if self.state == _S.STOPPING and run and now - run.stop_asked_at > self.kill_after_s:
            self._go(_S.STOP_OVERDUE)

    def shutdown(self) -> None:
        """For the window's close or another project: a run of this session is asked to
        stop (it checkpoints; Resume continues it) and left to exit on its own, kept in
        `left_running`. Never blocks."""
        process = self.process
        if process is not None:
            process.request_stop()
            self.left_running.append(process)
            if not self._exit_hook:
                self._exit_hook = True
                atexit.register(self.wait_for_left_running)
        if self.state != _S.IDLE:
            self._go(_S.IDLE)

    def wait_for_left_running(self) -> None:
        """Read the messages of the runs left at shutdown until each has exited (Python
        would wait for the non-daemonic children anyway; reading keeps their queue from
        filling up), then release them. Called at exit; blocks."""
        while self.left_running:
            process = self.left_running.pop()
            try:
                process.wait()
            except Exception:  # noqa: BLE001 - at exit there is nobody left to tell
                pass
            finally:
                process.close()

    # --- watching -------------------------------------------------------------------------

    def poll(self) -> None:
        """Handle what the child sent since the last call, without waiting; notice its
        exit. Cheap: call it every ~150 ms while `is_training`."""
        run = self.run
        if run is None or not self.is_training:
            return
        process = run.process
        for msg in process.poll(0):
            self._handle(run, msg)
        now = self._clock()
        if now - run.memory_at > MEMORY_EVERY_S:
            run.memory_at = now
            run.memory = self._read_memory(run.pid)
        if process.finished is not None and not process.is_alive():
            process.close()  # the child has exited: close() does not wait
            self._end(run, process.finished)
        elif process.finished is not None:
            run.exit_seen_at = run.exit_seen_at or now
            if now - run.exit_seen_at > self.kill_after_s:  # said it ended but does not exit
                process.kill()
        else:
            self._check_overdue(now)

    def _handle(self, run: LiveRun, msg: Message) -> None:
        if isinstance(msg, Iteration):
            run.last_iteration = msg
            self.metrics.emit(msg)
        elif isinstance(msg, EpochMetrics):
            self.metrics.emit(msg)
        elif isinstance(msg, Started):
            # A resumed run's budget counts the time its earlier sessions used.
            run.started, run.started_at = msg, self._clock() - msg.elapsed
            self._renice_child(run.process)  # threads started before the first renice
            for text in msg.warnings:
                self.notice.emit(text, NoticeLevel.WARNING)
            if self.state == _S.STARTING:
                self._go(_S.RUNNING)
            self.started.emit(msg)
        elif isinstance(msg, Notice):
            self.notice.emit(msg.text, NoticeLevel.WARNING)
        elif isinstance(msg, Failed):
            self.notice.emit(msg.error, NoticeLevel.ERROR)

    def _end(self, run: LiveRun, terminal: Message | None) -> None:
        if isinstance(terminal, Finished):
            status = RunStatus.FINISHED
        elif isinstance(terminal, Stopped):
            status = RunStatus.STOPPED
        else:
            status = RunStatus.FAILED
        self._go(_ENDS[status])
        self.ended.emit(run.run_id, status, terminal)


def check_and_create_run(
    project_dir: Path, settings: dict[str, Any]
) -> tuple[Preflight, int | None]:
    """For a worker thread: the pre-flight checks of the remembered `settings`, and when
    nothing refuses, the new run (its folder and database row). Returns the
    `preflight.Preflight` report and the run's id (None when refused). Imports torch."""
    from studio.ml.run import preflight
    from studio.ml.run.process import create_run

    with Project.open(project_dir) as p:
        cfg, problems = preflight.config_from_settings(p, settings)
        report = preflight.check(p, cfg)
        report.problems[:0] = problems
        if not report.ok:
            return report, None
        return report, create_run(p, report.config).id

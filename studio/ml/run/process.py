"""Running training beside the window: in this process, or in a spawned child process.

* `execute_run` trains a run in the current process and records it in the project
  database through `RunRecorder` (status, pid, iteration and epoch metrics, best metric,
  current model). The CLI uses it directly.
* `TrainingProcess` runs `execute_run` in a ``spawn``-ed process and hands its messages
  to the parent through a queue; the window polls it. Stopping is cooperative (an
  Event the engine checks before every batch); a child that dies (SIGKILL, OOM killer)
  is noticed through its exit code, so the parent never waits forever.

Creating runs is in runs.py, pid files and `reconcile_runs` in pidfile.py; their names
stay importable from here.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.ml.data.snapshot import write_snapshot
from studio.ml.run.pidfile import (
    INTERRUPTED,
    PID_FILE,
    claim_run,
    read_pid_file,
    reconcile_runs,
    remove_pid_file,
    write_pid_file,
)
from studio.ml.run.procinfo import pid_alive
from studio.ml.run.recorder import RunRecorder
from studio.ml.run.runs import create_run
from studio.ml.train.build import model_task
from studio.ml.train.checkpoint import LAST
from studio.ml.train.config import CONFIG_NAME, TrainConfig
from studio.ml.train.messages import TERMINAL, Failed, Message
from studio.ml.train.trainer import TrainResult, train_run

__all__ = [
    "INTERRUPTED",
    "PID_FILE",
    "WEIGHTS_DIR_SETTING",
    "RunRecorder",
    "claim_run",
    "TrainingProcess",
    "create_run",
    "error_text",
    "execute_run",
    "model_task",
    "pid_alive",
    "read_pid_file",
    "reconcile_runs",
    "remove_pid_file",
    "use_weights_setting",
    "write_pid_file",
    "write_snapshot",
]


# --- running ---------------------------------------------------------------------------

WEIGHTS_DIR_SETTING = "weights_dir"  # project setting: a folder of torchvision's weights files


def use_weights_setting(project: Project) -> None:
    """Search the project's "weights folder" setting for pretrained files in this process
    (before $STUDIO_WEIGHTS_DIR and torch's cache; see models.weights.weights_dirs)."""
    from studio.ml.models.weights import set_weights_dirs

    folder = project.get_setting(WEIGHTS_DIR_SETTING)
    set_weights_dirs([str(folder)] if folder else [])


def execute_run(
    project: Project,
    run_id: int,
    *,
    resume: bool = False,
    emit: Callable[[Message], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    record: bool = True,
) -> TrainResult:
    """Train run `run_id` in this process, recording it in the database (when `record`).

    Writes the pid file while training. On an exception the run is recorded as failed
    and the exception propagates."""
    run = project.run(run_id)
    recorder = RunRecorder(project, run_id, _flush_every(run.dir)) if record else None

    def fanout(msg: Message) -> None:
        if recorder is not None:
            recorder(msg)
        if emit is not None:
            emit(msg)

    use_weights_setting(project)
    # Refused (nothing recorded) while another process trains it.
    claim = claim_run(run.dir) if record else None
    try:
        return train_run(
            run.dir, run_id=run_id, resume=resume, emit=fanout, should_stop=should_stop
        )
    except BaseException as e:
        if recorder is not None:
            try:
                recorder(Failed(error_text(e), traceback.format_exc()))
            except Exception:  # the database may be what failed; the error goes up anyway
                pass
        raise
    finally:
        if claim is not None:
            remove_pid_file(run.dir)
            claim.release()


def _flush_every(run_dir: Path) -> int:
    try:
        return TrainConfig.load(run_dir / CONFIG_NAME).db_flush_every
    except StudioError:
        return 20


def error_text(e: BaseException) -> str:
    """One line for the user: StudioError messages as they are, others with their type."""
    if isinstance(e, StudioError):
        return str(e)
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _child_main(project_dir: str, run_id: int, resume: bool, queue: Any, stop: Any) -> None:
    """Entry point of the training process (spawned: imports start fresh)."""
    # A polite kill (SIGTERM) stops like the stop button: checkpoint, then exit.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Project.open(project_dir) as project:
            execute_run(project, run_id, resume=resume, emit=queue.put, should_stop=stop.is_set)
    except BaseException as e:
        queue.put(Failed(error_text(e), traceback.format_exc()))
    finally:
        queue.close()
        queue.join_thread()  # flush the feeder thread before the process exits


class TrainingProcess:
    """One training run in a spawned child process.

    Usage: ``tp = TrainingProcess(project_dir, run_id); tp.start()`` then call
    ``tp.poll()`` (non-blocking, e.g. from a Qt timer) or iterate ``tp.messages()``;
    ``tp.request_stop()`` asks for a checkpoint and a clean stop within one iteration.
    If the child dies without a final message, `poll` reports a `Failed` message and
    marks the run failed in the database.
    """

    def __init__(self, project_dir: Path | str, run_id: int, *, resume: bool = False):
        self.project_dir = Path(project_dir)
        self.run_id = run_id
        self.resume = resume
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=_child_main,
            args=(str(self.project_dir), run_id, resume, self._queue, self._stop),
            name=f"studio-train-{run_id}",
            # Not daemonic: a daemonic process may not start DataLoader workers. The
            # owner calls close() (or request_stop and wait) before it exits.
            daemon=False,
        )
        self.finished: Message | None = None  # the terminal message, once seen

    def start(self) -> None:
        self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def request_stop(self) -> None:
        """Ask the run to stop after the current iteration (it saves last.pt first)."""
        self._stop.set()

    def kill(self) -> None:
        """SIGKILL the child (no checkpoint): for a hung run. last.pt of the last epoch
        stays, and `poll` reports the run as failed."""
        if self._process.is_alive():
            self._process.kill()

    def poll(self, timeout: float = 0.0) -> list[Message]:
        """Messages that arrived, waiting up to `timeout` seconds for the first one."""
        out: list[Message] = []
        if self.finished is not None or self._process.pid is None:  # over, or not started
            return out
        try:
            out.append(
                self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            )
            while True:
                out.append(self._queue.get_nowait())
        except queue_mod.Empty:
            pass
        for m in out:
            if isinstance(m, TERMINAL):
                self.finished = m
        if self.finished is None and not out and not self._process.is_alive():
            # The last message may still be in the pipe behind the exit: look once more.
            try:
                last = self._queue.get(timeout=0.5)
            except queue_mod.Empty:
                last = None
            if last is not None:
                if isinstance(last, TERMINAL):
                    self.finished = last
                return [last]
            # Dead without a final message: killed, or crashed below Python.
            self._process.join(1)
            self._mark_interrupted()
            code = self._process.exitcode
            self.finished = Failed(
                f"the training process died unexpectedly (exit code {code})" + self._resume_hint()
            )
            out.append(self.finished)
        return out

    def _resume_hint(self) -> str:
        """What Resume would do, said only where a checkpoint exists to resume from."""
        try:
            with Project.open(self.project_dir) as p:
                has = (p.run(self.run_id).dir / LAST).is_file()
        except StudioError:
            has = False
        return "; resume continues from the last checkpoint" if has else "; no checkpoint was saved"

    def _mark_interrupted(self) -> None:
        try:
            with Project.open(self.project_dir) as p:
                if p.run(self.run_id).status in (RunStatus.RUNNING, RunStatus.QUEUED):
                    p.update_run(self.run_id, status=RunStatus.FAILED, error=INTERRUPTED)
                remove_pid_file(p.run(self.run_id).dir)
        except StudioError:
            pass

    def messages(self, timeout: float | None = None) -> Iterator[Message]:
        """Yield messages until the terminal one (Finished, Stopped or Failed), or until
        `timeout` seconds pass (then raises TimeoutError)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.finished is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"training run {self.run_id} still running after {timeout} s")
            yield from self.poll(timeout=0.2)

    def wait(self, timeout: float | None = None) -> Message:
        """Consume messages until the terminal one and return it."""
        for _ in self.messages(timeout):
            pass
        assert self.finished is not None
        self._process.join(10)
        return self.finished

    def close(self) -> None:
        """Release the queue and the process handle (after the end, or kills the child)."""
        if self._process.is_alive():
            self.kill()
        self._process.join(5)
        self._queue.close()
        self._queue.cancel_join_thread()

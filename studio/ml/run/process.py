"""Running training beside the window: run folders, a spawned process, the database record.

* `create_run` freezes the project's labels into a new run folder (``dataset.json``,
  ``config.json``) and its database row.
* `execute_run` trains a run in the current process and records it in the project
  database through `RunRecorder` (status, pid, iteration and epoch metrics, best metric,
  current model). The CLI uses it directly.
* `TrainingProcess` runs `execute_run` in a ``spawn``-ed process and hands its messages
  to the parent through a queue; the window polls it. Stopping is cooperative (an
  Event the engine checks before every batch); a child that dies (SIGKILL, OOM killer)
  is noticed through its exit code, so the parent never waits forever.
* `reconcile_runs` marks as failed the runs recorded as running whose process is gone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import RunRecord
from studio.ml.data.dataset import SNAPSHOT_NAME
from studio.ml.models import get_spec
from studio.ml.train.config import CONFIG_NAME, TrainConfig
from studio.ml.train.messages import (
    TERMINAL,
    EpochMetrics,
    Failed,
    Finished,
    Iteration,
    Message,
    Notice,
    Started,
    Stopped,
)
from studio.ml.train.trainer import TrainResult, train_run

PID_FILE = "train.pid"
INTERRUPTED = "interrupted: the training process ended without finishing (killed or crashed)"


# --- creating runs ---------------------------------------------------------------------


def write_snapshot(project: Project, out_json: Path) -> dict[str, Any]:
    """Freeze the project's classes, images and labels as COCO (see data.py) at `out_json`,
    with each image's "studio_split" and "studio_status"."""
    data = project.write_coco_snapshot(out_json)
    # The status tells a negative sample (done, no shapes) from an unlabelled image.
    status = {im.id: im.status for im in project.images()}
    for im in data["images"]:
        im.setdefault("studio_status", status.get(im["id"], "done"))
    tmp = out_json.with_name(out_json.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, out_json)
    return data


def model_task(model: str, fallback: str = "") -> str:
    """The task of a registry model name ("" for a custom factory without `fallback`)."""
    if ":" in model:
        return fallback
    return get_spec(model).task


def create_run(project: Project, cfg: TrainConfig, name: str | None = None) -> RunRecord:
    """A new run: database row (status "queued"), folder with dataset.json (frozen labels)
    and config.json. Raises StudioError for a config that cannot work."""
    cfg.validate()
    if not cfg.model:
        raise StudioError("no model chosen for the run")
    task = model_task(cfg.model, cfg.task)
    if task and not cfg.task:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "task": task})
    if not project.classes():
        raise StudioError("the project has no classes: add classes and label images first")
    name = name or f"{cfg.model.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = project.create_run(name, cfg.model, cfg.task or task, cfg.to_dict())
    write_snapshot(project, run.dir / SNAPSHOT_NAME)
    cfg.save(run.dir / CONFIG_NAME)
    return run


# --- recording into the database -------------------------------------------------------


class RunRecorder:
    """Writes a run's messages into the project database.

    Iteration metrics are buffered and written every `flush_every` iterations (and at
    every epoch end and terminal message), so a fast loop does not pay a SQLite
    transaction per step. Status changes are written at once.
    """

    def __init__(self, project: Project, run_id: int, flush_every: int = 20):
        self.project = project
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self._rows: list[tuple[str, int, int, str, float]] = []
        self._pending_iters = 0

    def __call__(self, msg: Message) -> None:
        p, rid = self.project, self.run_id
        if isinstance(msg, Started):
            run = p.run(rid)
            config = dict(run.config)
            config.update(
                pid=os.getpid(),
                host=socket.gethostname(),
                num_train=msg.num_train,
                num_val=msg.num_val,
                warnings=list(msg.warnings),
                data_report=dict(msg.data_report),
                device=msg.device,
            )
            p.update_run(rid, status="running", epoch=msg.epoch, config=config)
        elif isinstance(msg, Iteration):
            step, ep = msg.iteration, msg.epoch
            self._rows += [("iter", step, ep, k, float(v)) for k, v in msg.losses.items()]
            self._rows += [("iter", step, ep, "lr", msg.lr)]
            self._rows += [("iter", step, ep, "images_per_s", msg.images_per_s)]
            self._pending_iters += 1
            if self._pending_iters >= self.flush_every:
                self.flush()
        elif isinstance(msg, EpochMetrics):
            self._rows += [("epoch", msg.epoch, msg.epoch, k, v) for k, v in msg.metrics.items()]
            self.flush()
            run = p.run(rid)
            best = run.best_metric
            name = run.best_metric_name
            if msg.is_best and msg.best_metric_name:
                best = msg.metrics.get(msg.best_metric_name)
                name = msg.best_metric_name
            p.update_run(rid, epoch=msg.epoch + 1, best_metric=best, best_metric_name=name)
        elif isinstance(msg, Notice):
            run = p.run(rid)
            config = dict(run.config)
            notices = list(config.get("notices", []))[-49:]  # keep the last 50
            config["notices"] = notices + [msg.text]
            p.update_run(rid, config=config)
        elif isinstance(msg, Finished):
            self.flush()
            p.update_run(
                rid,
                status="finished",
                epoch=msg.epoch,
                best_metric=msg.best_metric,
                best_metric_name=msg.best_metric_name,
            )
            p.set_current_model(rid)
        elif isinstance(msg, Stopped):
            self.flush()
            p.update_run(rid, status="stopped", epoch=msg.epoch)
        elif isinstance(msg, Failed):
            self.flush()
            p.update_run(rid, status="failed", error=msg.error)

    def flush(self) -> None:
        if self._rows:
            self.project.add_metrics(self.run_id, self._rows)
        self._rows = []
        self._pending_iters = 0


# --- pid files and reconciliation ------------------------------------------------------


def _process_start_time(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[0]


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process `pid` exists (and is not a zombie), and, when `start_time` is
    given and /proc can tell, is the same process that wrote the pid file."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    if _process_state(pid) in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    if start_time is not None:
        now = _process_start_time(pid)
        if now is not None and now != start_time:
            return False
    return True


def write_pid_file(run_dir: Path) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "start_time": _process_start_time(os.getpid()),
    }
    tmp = run_dir / (PID_FILE + ".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, run_dir / PID_FILE)


def read_pid_file(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / PID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_pid_file(run_dir: Path) -> None:
    try:
        (run_dir / PID_FILE).unlink()
    except OSError:
        pass


def reconcile_runs(project: Project) -> list[int]:
    """Mark runs recorded as running (or queued with a process) whose training process
    no longer exists on this machine as failed ("interrupted ..."). Returns their ids.

    A run started on another machine (a shared folder) is left alone: its pid means
    nothing here. Resume works for such runs from their last.pt."""
    host = socket.gethostname()
    fixed = []
    for run in project.runs():
        if run.status not in ("running", "queued"):
            continue
        info = read_pid_file(run.dir)
        if info is None:
            pid = run.config.get("pid")
            if pid is None:
                continue  # queued, never started: nothing to reconcile
            info = {"pid": pid, "host": run.config.get("host")}
        if info.get("host") not in (None, host):
            continue
        if pid_alive(int(info.get("pid") or 0), info.get("start_time")):
            continue
        project.update_run(run.id, status="failed", error=INTERRUPTED)
        remove_pid_file(run.dir)
        fixed.append(run.id)
    return fixed


# --- running ---------------------------------------------------------------------------


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

    if record:
        write_pid_file(run.dir)
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
        if record:
            remove_pid_file(run.dir)


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
                f"the training process died unexpectedly (exit code {code}); "
                "resume continues from the last checkpoint"
            )
            out.append(self.finished)
        return out

    def _mark_interrupted(self) -> None:
        try:
            with Project.open(self.project_dir) as p:
                if p.run(self.run_id).status in ("running", "queued"):
                    p.update_run(self.run_id, status="failed", error=INTERRUPTED)
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

"""Recording a run in the project database from its messages.

The training process hands every message (messages.py) to a `RunRecorder`, which keeps
the run's row (status, epoch, best metric, pid and host, notices), its metrics and the
project's current model up to date.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
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

T = TypeVar("T")
# How long a status write waits out other processes' write locks (on top of SQLite's own
# busy timeout per attempt) before the error is let through, in seconds.
STATUS_RETRY_S = 120.0
# Metric rows kept while the database is locked; beyond this the oldest iteration rows go
# (epoch rows are always kept: they are what the run is judged by).
MAX_BUFFERED_ROWS = 200_000


def is_busy(e: BaseException) -> bool:
    """True for SQLite's "database is locked" / "database is busy": another process holds
    the write lock longer than the busy timeout. Worth retrying; anything else is not."""
    text = str(getattr(e, "orig", e)).lower()
    return isinstance(e, OperationalError) and ("locked" in text or "busy" in text)


def retry_busy(write: Callable[[], T], patience_s: float = STATUS_RETRY_S) -> T:
    """Run `write`, retrying with growing pauses while the database is busy."""
    deadline = time.monotonic() + patience_s
    pause = 0.05
    while True:
        try:
            return write()
        except OperationalError as e:
            if not is_busy(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def becomes_current(project: Project, msg: Finished) -> bool:
    """Whether a finished run becomes the project's model (what predict, prelabel and
    Inspect use): not when it trained no step, nor when the current model scored better
    on the same metric, nor when it has no score and the current one has."""
    if msg.iterations == 0:
        return False
    current = project.current_model()
    if current is None:
        return True
    try:
        old = project.run(current)
    except StudioError:  # deleted meanwhile
        return True
    if old.best_metric is None:
        return True
    if msg.best_metric is None:
        return False
    return msg.best_metric_name != old.best_metric_name or msg.best_metric >= old.best_metric


def finished_text(
    run_id: int, current: int | None, how: str = "`Use as model` in the runs list"
) -> str:
    """What to say of a finished run: whether it became the project's model (`how`: what
    makes it the model, in the window or on the command line)."""
    if current == run_id:
        return f"Run {run_id} finished: its best model is now the project's model."
    if current is None:
        return f"Run {run_id} finished without training a step: no project model from it."
    return (
        f"Run {run_id} finished; run {current} stays the project's model (the new run "
        f"trained no step, scored lower, or has no score to compare); {how} makes it the "
        "model."
    )


class RunRecorder:
    """Writes a run's messages into the project database.

    Iteration metrics are buffered and written every `flush_every` iterations (and at
    every epoch end and terminal message), so a fast loop does not pay a SQLite
    transaction per step. Status changes are written at once. Another process holding
    the project's write lock (an import, split edits) never ends the run: a metrics
    write that finds the database locked keeps its rows for the next flush, and status
    writes retry (`retry_busy`).
    """

    def __init__(self, project: Project, run_id: int, flush_every: int = 20):
        self.project = project
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self._rows: list[tuple[str, int, int, str, float]] = []
        self._pending_iters = 0

    def _update_run(self, **fields: object) -> None:
        retry_busy(lambda: self.project.update_run(self.run_id, **fields))

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
            # A resumed run's old error ("interrupted: ...") no longer holds.
            self._update_run(status=RunStatus.RUNNING, epoch=msg.epoch, config=config, error="")
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
            self._update_run(epoch=msg.epoch + 1, best_metric=best, best_metric_name=name)
        elif isinstance(msg, Notice):
            run = p.run(rid)
            config = dict(run.config)
            notices = list(config.get("notices", []))[-49:]  # keep the last 50
            config["notices"] = notices + [msg.text]
            self._update_run(config=config)
        elif isinstance(msg, Finished):
            self.flush(wait=True)
            self._update_run(
                status=RunStatus.FINISHED,
                epoch=msg.epoch,
                best_metric=msg.best_metric,
                best_metric_name=msg.best_metric_name,
            )
            if becomes_current(p, msg):
                retry_busy(lambda: p.set_current_model(rid))
        elif isinstance(msg, Stopped):
            self.flush(wait=True)
            self._update_run(status=RunStatus.STOPPED, epoch=msg.epoch)
        elif isinstance(msg, Failed):
            self.flush(wait=True)
            self._update_run(status=RunStatus.FAILED, error=msg.error)

    def flush(self, wait: bool = False) -> None:
        """Write the buffered metric rows. If the database is locked they stay buffered
        for the next flush (or, with `wait`, the write is retried until it lands)."""
        if self._rows:
            rows = self._rows
            try:
                if wait:
                    retry_busy(lambda: self.project.add_metrics(self.run_id, rows))
                else:
                    self.project.add_metrics(self.run_id, rows)
            except OperationalError as e:
                if wait or not is_busy(e):
                    raise
                self._trim()
                return
        self._rows = []
        self._pending_iters = 0

    def _trim(self) -> None:
        if len(self._rows) > MAX_BUFFERED_ROWS:
            excess = len(self._rows) - MAX_BUFFERED_ROWS
            kept = [r for r in self._rows if r[0] == "epoch"]
            iters = [r for r in self._rows if r[0] != "epoch"][excess:]
            self._rows = kept + iters

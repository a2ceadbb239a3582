"""Recording a run in the project database from its messages.

The training process hands every message (messages.py) to a `RunRecorder`, which keeps
the run's row (status, epoch, best metric, pid and host, notices), its metrics and the
project's current model up to date.
"""

from __future__ import annotations

import os
import socket

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
            p.update_run(rid, status=RunStatus.RUNNING, epoch=msg.epoch, config=config)
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
                status=RunStatus.FINISHED,
                epoch=msg.epoch,
                best_metric=msg.best_metric,
                best_metric_name=msg.best_metric_name,
            )
            p.set_current_model(rid)
        elif isinstance(msg, Stopped):
            self.flush()
            p.update_run(rid, status=RunStatus.STOPPED, epoch=msg.epoch)
        elif isinstance(msg, Failed):
            self.flush()
            p.update_run(rid, status=RunStatus.FAILED, error=msg.error)

    def flush(self) -> None:
        if self._rows:
            self.project.add_metrics(self.run_id, self._rows)
        self._rows = []
        self._pending_iters = 0

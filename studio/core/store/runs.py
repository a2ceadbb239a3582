"""Training runs and their metrics (the runs and metrics tables)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.events import ProjectEvents
from studio.core.kinds import RunStatus
from studio.core.records import RunRecord
from studio.core.store.folder import ProjectFolder
from studio.core.store.settings import SettingsRepo

# A metric row: (kind "iter" | "epoch", step, epoch, name, value).
MetricRow = tuple[str, int, int, str, float]
# The setting that names the run whose model is in use.
CURRENT_MODEL = "current_model"
_ENDED = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED)


class RunRepo:
    """Reads and writes runs and metrics, and emits `runs_changed` (a run id, or None
    when the list of runs changed)."""

    def __init__(
        self, engine: Engine, events: ProjectEvents, folder: ProjectFolder, settings: SettingsRepo
    ):
        self.engine = engine
        self.events = events
        self.folder = folder
        self.settings = settings

    def _record(self, r: S.Run) -> RunRecord:
        return RunRecord(
            id=r.id, name=r.name, model=r.model, task=r.task, status=r.status, epoch=r.epoch,
            best_metric=r.best_metric, best_metric_name=r.best_metric_name,
            config=json.loads(r.config or "{}"), created_at=r.created_at,
            finished_at=r.finished_at, error=r.error, dir=self.folder.abs_path(r.dir),
        )  # fmt: skip

    def create(self, name: str, model: str, task: str, config: dict) -> RunRecord:
        """A new queued run with its folder under runs/ ("0007-name")."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60] or "run"
        with Session(self.engine) as s, s.begin():
            run = S.Run(name=name, model=model, task=task, status=RunStatus.QUEUED.value,
                        config=json.dumps(config), dir="")  # fmt: skip
            s.add(run)
            s.flush()
            run_id = run.id
            run_dir = self.folder.runs_dir / f"{run_id:04d}-{safe}"
            run.dir = self.folder.stored_path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.events.runs_changed.emit(None)
        return self.get(run_id)

    def get(self, run_id: int) -> RunRecord:
        with Session(self.engine) as s:
            r = s.get(S.Run, run_id)
            if r is None:
                raise StudioError(f"run {run_id} does not exist in {self.folder.path}")
            return self._record(r)

    def list(self) -> list[RunRecord]:
        with Session(self.engine) as s:
            return [self._record(r) for r in s.scalars(select(S.Run).order_by(S.Run.id))]

    def update(self, run_id: int, config: dict | None = None, **fields: Any) -> None:
        """Set the given run columns (None values are left alone; error="" clears the
        error); a status that ends the run also stamps finished_at."""
        values = {k: v for k, v in fields.items() if v is not None}
        if values.get("error") == "":
            values["error"] = None
        if values.get("status") in _ENDED:
            values["finished_at"] = S.utcnow()
        if "status" in values:
            values["status"] = str(values["status"])
        if config is not None:
            values["config"] = json.dumps(config)
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(S.Run).where(S.Run.id == run_id).values(**values))
            self.events.runs_changed.emit(run_id)

    def delete(self, run_id: int) -> None:
        """Delete a run with its metrics, predictions and folder."""
        run = self.get(run_id)
        with self.engine.begin() as conn:
            conn.execute(delete(S.Run).where(S.Run.id == run_id))
        if self.settings.get(CURRENT_MODEL) == run_id:
            self.settings.set(CURRENT_MODEL, None)
        runs_dir = self.folder.runs_dir.resolve()
        if run.dir.is_dir() and run.dir.resolve().is_relative_to(runs_dir):
            shutil.rmtree(run.dir, ignore_errors=True)
        self.events.runs_changed.emit(None)

    def add_metrics(self, run_id: int, rows: Sequence[MetricRow]) -> None:
        """Bulk-insert (kind "iter"|"epoch", step, epoch, name, value) rows."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(S.Metric),
                [{"run_id": run_id, "kind": k, "step": st, "epoch": ep, "name": n, "value": float(v)}
                 for k, st, ep, n, v in rows],
            )  # fmt: skip
        self.events.runs_changed.emit(run_id)

    def metrics(self, run_id: int, kind: str | None = None) -> list[MetricRow]:
        """A run's metric rows in the order they were written, optionally of one kind."""
        q = select(S.Metric.kind, S.Metric.step, S.Metric.epoch, S.Metric.name, S.Metric.value)
        q = q.where(S.Metric.run_id == run_id).order_by(S.Metric.id)
        if kind is not None:
            q = q.where(S.Metric.kind == kind)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def set_current_model(self, run_id: int | None) -> None:
        """Name the run whose model the window predicts with (None: no model)."""
        self.settings.set(CURRENT_MODEL, run_id)
        self.events.runs_changed.emit(run_id)

    def current_model(self) -> int | None:
        return self.settings.get(CURRENT_MODEL)

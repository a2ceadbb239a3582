"""A project's training runs: creating one, finding one, its checkpoints, listing them.

A run is a database row plus a folder (`RunRecord.dir`) that holds everything training
reads and writes: ``config.json``, the frozen ``dataset.json``, ``last.pt`` / ``best.pt``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.kinds import Split
from studio.core.project import Project
from studio.core.records import ExportSnapshot, RunRecord
from studio.ml.data.snapshot import SNAPSHOT_NAME, Snapshot, write_snapshot
from studio.ml.run.pidfile import reconcile_runs
from studio.ml.train.build import model_task
from studio.ml.train.checkpoint import BEST, LAST
from studio.ml.train.config import CONFIG_NAME, TrainConfig

# Settings a resumed run may change; the rest would make the checkpoint inconsistent.
RESUMABLE = ("epochs", "time_budget", "device", "workers", "patience")


def create_run(project: Project, cfg: TrainConfig, name: str | None = None) -> RunRecord:
    """A new run: database row (status "queued"), folder with dataset.json (frozen labels)
    and config.json. Raises StudioError for a config that cannot work."""
    cfg.validate()
    if not cfg.model:
        raise StudioError("no model chosen for the run")
    task = model_task(cfg.model, cfg.task)
    if task and not cfg.task:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "task": str(task)})
    if not project.classes():
        raise StudioError("the project has no classes: add classes and label images first")
    name = name or f"{cfg.model.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = project.create_run(name, cfg.model, str(cfg.task or task), cfg.to_dict())
    write_snapshot(project, run.dir / SNAPSHOT_NAME)
    cfg.save(run.dir / CONFIG_NAME)
    return run


def find_run(project: Project, run: int | str) -> RunRecord:
    """A run by id (int or digits) or by name (the latest of that name)."""
    if isinstance(run, int) or str(run).isdigit():
        return project.run(int(run))
    matches = [r for r in project.runs() if r.name == run]
    if not matches:
        raise StudioError(f"no run named {run!r} in {project.path}; `studio runs` lists them")
    return matches[-1]


def run_checkpoint(run: RunRecord, which: str = "best") -> Path:
    """The run's best.pt ("best"; last.pt while it has none) or last.pt ("last")."""
    path = run.dir / (BEST if which == "best" else LAST)
    if which == "best" and not path.is_file():
        path = run.dir / LAST  # stopped before the first validation: the latest weights
    if not path.is_file():
        raise StudioError(f"run {run.id} ({run.name}) has no checkpoint yet")
    return path


def update_resumed_config(run: RunRecord, changes: dict[str, Any]) -> None:
    """Write the settings a resume changes (None values: unchanged) into config.json."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return
    path = run.dir / CONFIG_NAME
    cfg = TrainConfig.load(path)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), **changes})
    cfg.validate()
    cfg.save(path)


def runs_list(project_dir: Path | str) -> list[dict[str, Any]]:
    """Every run, oldest first: id, name, status, model, task, epoch, best metric, created,
    finished, error. Runs whose process died are reconciled (marked failed) first."""
    with Project.open(project_dir) as p:
        reconcile_runs(p)
        current = p.current_model()
        return [
            {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "model": r.model,
                "task": r.task,
                "epoch": r.epoch,
                "best_metric": r.best_metric,
                "best_metric_name": r.best_metric_name,
                "created": r.created_at,
                "finished": r.finished_at,
                "error": r.error,
                "current": r.id == current,
                "dir": str(r.dir),
            }
            for r in p.runs()
        ]


def held_out_ids(run: RunRecord) -> list[int]:
    """The images `run` validated on: its val split, or, where that was empty, the
    seeded share of its train images it held out (`TrainConfig.val_fraction`). Kept
    per file version: Inspect asks at every recount, and reading a 30 MB dataset.json
    took a second."""
    files = (run.dir / SNAPSHOT_NAME, run.dir / CONFIG_NAME)
    try:
        key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return []
    if key not in _HELD:
        try:
            snap, cfg = Snapshot.load(files[0]), TrainConfig.load(files[1])
        except StudioError:
            return []
        if len(_HELD) >= 8:
            _HELD.clear()
        _HELD[key] = snap.train_val_ids(cfg.val_fraction, cfg.seed)[1]
    return list(_HELD[key])


_HELD: dict[tuple, list[int]] = {}


def split_snapshot(project: Project, run: RunRecord, split: str | None) -> ExportSnapshot:
    """The project's images of `split` (None: all) with their labels as they are now;
    for "val" in a project without val images, the images `run` held out, as `studio
    eval` scores them (the analysis refused, and offered only images it trained on)."""
    snap = project.snapshot(split)
    if split != Split.VAL or snap.images:
        return snap
    held = set(held_out_ids(run))
    if held:
        snap = project.snapshot(None)
        snap.images[:] = [im for im in snap.images if im.id in held]
        snap.annotations[:] = [a for a in snap.annotations if a.image_id in held]
    return snap

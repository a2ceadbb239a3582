"""Training in this process: `studio train`, and each rank under torchrun.

``torchrun --nproc_per_node N -m studio train ...`` starts N processes that all call
`train`: rank 0 creates (or resumes) and records the run, the others train their shard
and only rank 0 writes the database. The window uses `process.TrainingProcess` instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch.distributed as dist

from studio.core.errors import StudioError
from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.core.records import RunRecord
from studio.ml.run.pidfile import claim_run, reconcile_runs
from studio.ml.run.preflight import budget_problems, config_from_settings, weights_problems
from studio.ml.run.process import execute_run, use_weights_setting
from studio.ml.run.recipe import explain_choice, weights_note
from studio.ml.run.runs import RESUMABLE, create_run, find_run, update_resumed_config
from studio.ml.train.distributed import setup_distributed
from studio.ml.train.messages import Message
from studio.ml.train.state import TrainResult
from studio.ml.train.trainer import train_run


@contextmanager
def graceful_interrupts() -> Iterator[threading.Event]:
    """First Ctrl-C / SIGTERM: stop after the current iteration with a checkpoint; a
    second Ctrl-C interrupts at once. Only in the main thread (signals need it)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def train(
    project_dir: Path | str,
    model: str | None = None,
    epochs: int | None = None,
    time_budget: float | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    weights: str | None = None,
    backbone_weights: str | None = None,
    device: str = "auto",
    resume: int | str | None = None,
    workers: int | None = None,
    progress: Callable[[Message], None] | None = None,
    *,
    name: str | None = None,
    model_options: dict[str, Any] | None = None,
    explain: Callable[[str], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Train a new run (or resume run `resume`, by id or name) in this process.

    The run's config is the one-click recipe for the project and device with the given
    settings on top, as the window's Train makes it (`preflight.config_from_settings`):
    arguments left at None are the recipe's. Other `TrainConfig` fields (lr, optimizer,
    patience, ...) go in `settings`. `progress` gets every message; `explain` the recipe's
    one-line reason. Under torchrun every rank calls this; rank 0 records the run. Returns
    {"run_id", "status", "epoch", "reason", "checkpoint", "run_dir", "best_metric", ...}.
    """
    given = {
        "model": model,
        "batch_size": batch_size,
        "image_size": image_size,
        "weights": weights,
        "backbone_weights": backbone_weights,
        "workers": workers,
        "model_options": dict(model_options) if model_options else None,
    }
    chosen = _chosen(given, settings, device, epochs, time_budget)
    d = setup_distributed(device)
    try:
        payload: list[Any] = [None, None]
        if d.is_main:
            with Project.open(project_dir) as p:
                reconcile_runs(p)
                use_weights_setting(p)
                if resume is not None:
                    run = _resumed_run(p, resume, epochs, time_budget, device, workers, settings)
                else:
                    run = _new_run(p, chosen, device, name, explain)
            payload = [run.id, str(run.dir)]
        if d.distributed:
            dist.broadcast_object_list(payload, src=0)
        run_id, run_dir = int(payload[0]), Path(payload[1])
        result = _train_here(project_dir, run_id, run_dir, resume is not None, progress, d.is_main)
        return _summary(run_id, run_dir, result)
    finally:
        d.close()


def _new_run(
    p: Project,
    chosen: dict[str, Any],
    device: str,
    name: str | None,
    explain: Callable[[str], None] | None,
) -> RunRecord:
    """The run one click would make with `chosen` over the recipe, once it can start."""
    cfg, _ = config_from_settings(p, chosen, None if device == "auto" else device)
    _refuse_what_cannot_start(cfg)
    _refuse_what_the_data_cannot_train(p, cfg)
    if explain is not None:
        _explain(p, cfg, explain, auto_model=not chosen.get("model"))
        for problem in budget_problems(cfg):
            explain(f"warning: {problem.text}")
    return create_run(p, cfg, name)


def _refuse_what_cannot_start(cfg: Any) -> None:
    """A weights file that is not there, or a model or part that does not exist, is
    said before a run is made (each used to leave a failed run and its dataset behind).
    Weights that are merely not cached are the run's to fall back from."""
    from studio.ml.models import get_spec
    from studio.ml.models.composable import check_names

    cfg.validate()
    if ":" not in cfg.model:  # a factory of one's own ("module:function") checks itself
        spec = get_spec(cfg.model)
        if spec.family == "composable":
            check_names({**spec.options, **cfg.model_options})
    errors = [pr.text for pr in weights_problems(cfg, lambda: True)[1] if pr.level == "error"]
    if errors:
        raise StudioError(errors[0].rstrip("."))


def _refuse_what_the_data_cannot_train(p: Project, cfg: Any) -> None:
    """The window's checks of the data and device (no classes, no labelled training
    image, ...), before a run exists: each left a failed run and its dataset behind."""
    from studio.ml.run.preflight import data_problems, device_problems

    errors = [pr.text for pr in data_problems(p, cfg) + device_problems(cfg.device)
              if pr.level == "error"]  # fmt: skip
    if errors:
        raise StudioError(errors[0].rstrip("."))


def _explain(p: Project, cfg: Any, explain: Callable[[str], None], auto_model: bool) -> None:
    """What one click chose, and why, in one line; and a warning when the model was
    chosen for having no ImageNet file to start from."""
    explain(explain_choice(p, cfg))
    note = weights_note(cfg.model) if auto_model else None
    if note:
        explain(f"warning: {note}")


def _chosen(
    given: dict[str, Any],
    settings: dict[str, Any],
    device: str,
    epochs: int | None,
    time_budget: float | None,
) -> dict[str, Any]:
    """The settings put over the recipe: the arguments given (not None) and `settings`."""
    chosen = {**{k: v for k, v in given.items() if v is not None}, **settings, "device": device}
    if epochs is not None or time_budget is not None:
        # Either alone means only it: the recipe's other length must not cut it short.
        chosen["epochs"], chosen["time_budget"] = epochs, time_budget
    return chosen


def _resumed_run(
    p: Project,
    resume: int | str,
    epochs: int | None,
    time_budget: float | None,
    device: str,
    workers: int | None,
    settings: dict[str, Any],
) -> RunRecord:
    """Run `resume` with the settings a resume may change written into its config."""
    run = find_run(p, resume)
    if run.status == RunStatus.RUNNING:
        raise StudioError(f"run {run.id} ({run.name}) is being trained by another process")
    claim_run(run.dir).release()  # refused now, before its config is rewritten, if held
    changes = {
        "epochs": epochs,
        "time_budget": time_budget,
        "device": device if device != "auto" else None,
        "workers": workers,
        **{k: v for k, v in settings.items() if k in RESUMABLE},
    }
    update_resumed_config(run, changes)
    return run


def _train_here(
    project_dir: Path | str,
    run_id: int,
    run_dir: Path,
    resume: bool,
    progress: Callable[[Message], None] | None,
    is_main: bool,
) -> TrainResult:
    """Train (rank 0 recording the run in the database) until done or Ctrl-C."""
    with graceful_interrupts() as stop:
        if not is_main:
            return train_run(run_dir, run_id=run_id, resume=resume, should_stop=stop.is_set)
        with Project.open(project_dir) as p:
            return execute_run(p, run_id, resume=resume, emit=progress, should_stop=stop.is_set)


def _summary(run_id: int, run_dir: Path, result: TrainResult) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "status": str(result.status),
        "epoch": result.epoch,
        "iteration": result.iteration,
        "best_metric": result.best_metric,
        "best_metric_name": result.best_metric_name,
        "reason": str(result.reason),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
    }

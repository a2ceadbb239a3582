"""Typed messages a training run sends to whoever watches it.

The trainer calls an `emit(message)` callback with these (callbacks.ProgressMessages);
run/process.py forwards them over a multiprocessing queue from the training process to
the window, the CLI renders them as a progress bar, and `run.recorder.RunRecorder`
writes them to the project database. They are
plain frozen dataclasses of built-in types, so they pickle across processes and turn
into JSON with `message_to_dict` (for `--json` output and logs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Started:
    """Training is about to run its first iteration (after a resume: its next one)."""

    run_id: int
    num_train: int  # images in the training set
    num_val: int  # images evaluated after each epoch (0: no evaluation)
    warnings: list[str] = field(default_factory=list)  # dataset and model problems, counted
    # What the dataset left out, by reason ("tiny_boxes", "degenerate_polygons", ...), and
    # "negatives": images without shapes trained on as negative samples.
    data_report: dict[str, int] = field(default_factory=dict)
    epoch: int = 0  # epoch the run starts in (0-based; > 0 after a resume)
    iteration: int = 0  # optimizer steps done before this start
    epochs: int | None = None  # epochs planned; None with a time budget only
    iters_per_epoch: int = 0
    device: str = "cpu"
    model: str = ""
    task: str = ""
    precision: str = "float32"  # or "bfloat16 mixed" / "float16 mixed" (device.precision_name)
    elapsed: float = 0.0  # seconds the run trained before this start (a resume's time used)


@dataclass(frozen=True, slots=True)
class Iteration:
    """One optimizer step done (or skipped, see `Notice`)."""

    epoch: int  # 0-based
    iteration: int  # optimizer steps since the run began, counting this one
    losses: dict[str, float]  # every loss term and "loss" (their sum), averaged over ranks
    lr: float  # learning rate of the head parameter group
    images_per_s: float  # training throughput over the last iteration, all ranks together
    step_in_epoch: int = 0  # 1-based position in the epoch
    iters_per_epoch: int = 0
    gpu_memory_mb: float | None = None  # peak CUDA memory allocated by this process; None off GPU


@dataclass(frozen=True, slots=True)
class EpochMetrics:
    """Validation metrics after an epoch; keys such as "bbox/AP", "segm/AP50", "mIoU"."""

    epoch: int
    metrics: dict[str, float]
    best_metric_name: str | None = None
    is_best: bool = False


@dataclass(frozen=True, slots=True)
class CheckpointSaved:
    path: str
    epoch: int  # epochs completed when it was written
    best: bool  # this checkpoint is also the best one so far (best.pt)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should know that does not stop the run (a skipped step)."""

    text: str
    epoch: int = 0
    iteration: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    best_metric: float | None
    best_metric_name: str | None = None
    epoch: int = 0  # epochs completed
    reason: str = "completed"  # "completed" | "time_budget" | "early_stopping"
    checkpoint: str = ""  # best.pt (or last.pt without validation)
    iterations: int = -1  # training steps in all (-1: not told)


@dataclass(frozen=True, slots=True)
class Failed:
    error: str  # one line fit for the user
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class Stopped:
    """Stopped on request; last.pt holds the state to resume from."""

    epoch: int
    iteration: int = 0


Message = (
    Started | Iteration | EpochMetrics | CheckpointSaved | Notice | Finished | Failed | Stopped
)

MESSAGE_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (Started, Iteration, EpochMetrics, CheckpointSaved, Notice, Finished, Failed, Stopped)
}
TERMINAL = (Finished, Failed, Stopped)


def message_to_dict(msg: Message) -> dict[str, Any]:
    """{"type": "Iteration", ...fields}: JSON-ready."""
    return {"type": type(msg).__name__, **asdict(msg)}


def message_from_dict(data: dict[str, Any]) -> Message:
    """Inverse of `message_to_dict`; unknown keys are ignored (newer writers)."""
    cls = MESSAGE_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})

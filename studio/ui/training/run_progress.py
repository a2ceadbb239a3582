"""What the training dock says about the run it trains: a progress bar (epoch and
iteration, or what the run is doing) and a line of numbers (speed, time left, memory).

Durations are seconds, memory bytes; the time left comes from the wall-clock pace of this
session (`Eta`), which includes data loading and each epoch's evaluation.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from studio.core.import_report import count_of
from studio.ml.train.messages import Finished, Iteration, Message, Started, Stopped

BUDGET_STEPS = 1000  # the bar's resolution for a run for a time budget


def format_duration(seconds: float | None) -> str:
    """ "42 s", "3:07", "1:02:09"; "—" when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_bytes(n: float | None) -> str:
    """ "512 B", "12 KB", "1.5 MB", "3.2 GB" (powers of 1024); "—" when unknown."""
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def stats_text(
    memory: int | None,
    speed: float | None = None,
    eta: float | None = None,
    iteration: Iteration | None = None,
) -> str:
    """The numbers line: images/s, time left (s), the child's RAM and the GPU memory the
    engine reports (where it can)."""
    gpu = getattr(iteration, "gpu_memory_mb", None)
    gpu_text = "—" if gpu is None else format_bytes(gpu * 2**20)
    speed_text = "—" if speed is None else f"{speed:.1f}"
    return (
        f"{speed_text} img/s · ETA {format_duration(eta)} · "
        f"RAM {format_bytes(memory)} · GPU {gpu_text}"
    )


def end_text(msg: Message | None) -> str:
    """The progress bar's words for a run's last message (None: it died without one)."""
    if isinstance(msg, Finished):
        best = (
            f"best {msg.best_metric_name} {msg.best_metric:.3f}"
            if msg.best_metric is not None
            else "no validation"
        )
        return f"finished after {msg.epoch} epochs ({best})"
    if isinstance(msg, Stopped):
        # As `studio train` and `studio runs` count: the epochs completed.
        return f"stopped after {count_of(msg.epoch, 'complete epoch')}: Resume continues it"
    return "failed"


class Eta:
    """Time left of a run, from the wall-clock pace of this session: it includes data
    loading and the evaluation after each epoch, which images/s does not."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.it0 = 0

    def start(self, iteration: int) -> None:
        self.t0, self.it0 = None, iteration

    def update(self, iteration: int, total: int | None, budget_left: float | None) -> float | None:
        """Seconds left at `iteration` of `total` (None: no epoch limit), at most the
        `budget_left` of a time budget (None: none)."""
        now = time.monotonic()
        if self.t0 is None:  # the first step includes start-up: measure from it
            self.t0, self.it0 = now, iteration
            return budget_left
        done = iteration - self.it0
        eta = None
        if total and done > 0:
            eta = (now - self.t0) / done * max(0, total - iteration)
        if budget_left is not None:
            eta = budget_left if eta is None else min(eta, budget_left)
        return eta


class RunProgress(QWidget):
    """The progress bar and the numbers line under it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("idle")
        self.stats = QLabel(stats_text(None))
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.bar)
        layout.addWidget(self.stats)

    def show_words(self, text: str, busy: bool = False) -> None:
        """Words instead of numbers ("checking…"); `busy`: a bar without an end."""
        if busy:
            self.bar.setRange(0, 0)
        self.bar.setFormat(text)

    def show_started(self, msg: Started) -> None:
        total = (msg.epochs or 0) * msg.iters_per_epoch
        self.bar.setRange(0, max(total, 1) if total else 0)

    def show_iteration(
        self,
        m: Iteration,
        started: Started,
        memory: int | None,
        eta: Eta,
        budget_left: float | None,
        budget: float | None = None,
    ) -> None:
        """Iteration `m` of the run `started` describes; `budget_left` of `budget` in
        seconds. A run of set epochs fills the bar by iterations, a run for a time budget
        (one click's) by the time it used: its bar ran without an end."""
        total = (started.epochs or 0) * (m.iters_per_epoch or started.iters_per_epoch)
        if total:
            self.bar.setMaximum(total)
            self.bar.setValue(min(m.iteration, total))
        elif budget and budget_left is not None:
            self.bar.setRange(0, BUDGET_STEPS)
            used = 1.0 - max(0.0, min(1.0, budget_left / budget))
            self.bar.setValue(round(used * BUDGET_STEPS))
        epochs = f"/{started.epochs}" if started.epochs else ""
        self.bar.setFormat(
            f"epoch {m.epoch + 1}{epochs} · iteration {m.step_in_epoch}/{m.iters_per_epoch}"
        )
        left = eta.update(m.iteration, total or None, budget_left)
        self.stats.setText(stats_text(memory, m.images_per_s, left, m))

    def show_memory(self, memory: int | None) -> None:
        self.stats.setText(stats_text(memory))

    def show_end(self, msg: Message | None, stalls: str) -> None:
        """The run ended with `msg`; `stalls`: how the event loop fared meanwhile."""
        self.bar.setFormat(end_text(msg))
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)  # (a busy bar's value is -1, and then Qt draws no text)
        if isinstance(msg, Finished) or self.bar.value() < 0:
            self.bar.setValue(self.bar.maximum() if isinstance(msg, Finished) else 0)
        self.stats.setText(stats_text(None))  # no speed or ETA once nothing runs
        self.bar.setToolTip(f"During the run, {stalls}")

"""The curves of the run the dock trains, fed with its messages as they arrive."""

from __future__ import annotations

from studio.ml.train.messages import EpochMetrics, Iteration
from studio.ui.training.plots import RunCurves


class LiveCurves:
    """A run's curves while it trains. A resumed run's messages wait in `pending` until
    its history (the curves so far, read from the database) is in, and are drawn after
    it: the steps of the two never interleave."""

    def __init__(self, run_id: int, resume: bool = False):
        self.run_id = run_id
        self.curves = RunCurves()
        self.pending: list[Iteration | EpochMetrics] | None = [] if resume else None

    @property
    def waiting_for_history(self) -> bool:
        return self.pending is not None

    def add(self, msg: Iteration | EpochMetrics) -> bool:
        """Draw `msg` into the curves, or keep it for after the history; True if drawn."""
        if self.pending is not None:
            self.pending.append(msg)
            return False
        if isinstance(msg, Iteration):
            self.curves.add_iteration(msg)
        else:
            self.curves.add_epoch(msg)
        return True

    def set_history(self, curves: RunCurves) -> None:
        """The run's curves before this session: what arrived meanwhile goes after them."""
        self.curves = curves
        self.release_pending()

    def release_pending(self) -> None:
        """Draw what waited (the run ended before its history came: keep what arrived)."""
        pending, self.pending = self.pending or [], None
        for msg in pending:
            self.add(msg)

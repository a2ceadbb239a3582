"""How late the GUI thread's event loop runs: the training dock measures it while a run
trains, so that a stutter caused by training shows up in numbers (and in the tests)."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallMeter(QObject):
    """The event loop's responsiveness: how late a 10 ms timer fires. `max_ms` is the
    longest stall since `start()` and `percentile(99)` the typical bad one (a histogram
    of 1 ms bins: bounded memory for runs of any length). `busy_max_ms` counts only the
    GUI thread's own CPU time in each stall: on a loaded machine a stall where it
    computed nothing was the kernel giving the CPU to another process. The panel runs it
    while it trains and shows it in the progress bar's tooltip."""

    INTERVAL_MS = 10

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self, interval=self.INTERVAL_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = self._last_cpu = 0.0
        self._hist = [0] * 1001  # lateness in whole ms; the last bin holds >= 1 s
        self.max_ms = self.busy_max_ms = 0.0
        self.samples = 0

    def start(self) -> None:
        self._hist = [0] * 1001
        self.max_ms = self.busy_max_ms = 0.0
        self.samples = 0
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        late = max(0.0, (now - self._last) * 1000 - self.INTERVAL_MS)
        busy = min(late, (cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu
        self.samples += 1
        self.max_ms = max(self.max_ms, late)
        self.busy_max_ms = max(self.busy_max_ms, busy)
        self._hist[min(int(late), 1000)] += 1

    def percentile(self, q: float) -> float:
        """Lateness in ms (to the 1 ms bin) that q percent of the ticks did not exceed."""
        need, seen = self.samples * q / 100, 0
        for ms, count in enumerate(self._hist):
            seen += count
            if seen >= need and seen:
                return float(ms)
        return 0.0

    def summary(self) -> str:
        return (
            f"event-loop stall: max {self.max_ms:.0f} ms (GUI thread busy at most "
            f"{self.busy_max_ms:.0f} ms of it), 99th percentile {self.percentile(99):.0f} ms, "
            f"{self.samples} ticks"
        )

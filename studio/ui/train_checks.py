"""Qt-free helpers of the training panel: watching the training process (memory, CPU
priority, ETA), durations and sizes as text, and the metrics CSV.

The pre-flight checks themselves (what cannot work before a run starts) are in
`studio.ml.preflight`; this module only looks at a running process and formats numbers.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

# The training process runs at this niceness: on a 2-core laptop a training run at the
# window's priority takes every core and the event loop stutters; at nice 10 the kernel
# gives the window the CPU as soon as it wakes (CFS weight 110 vs 1024).
TRAIN_NICENESS = 10


def lower_priority(pid: int, niceness: int = TRAIN_NICENESS) -> int:
    """Set every thread of process `pid` (Linux niceness is per thread) to `niceness`;
    threads and processes it starts later inherit it. Returns how many threads changed.
    Best-effort: no /proc, or a process already gone, changes nothing."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        tids = [pid]
    changed = 0
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
                changed += 1
        except OSError:  # gone, or not ours
            pass
    return changed


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            out += [int(c) for c in text.split()]
    except (OSError, ValueError):
        pass
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_rss(pid: int | None) -> int | None:
    """Resident memory in bytes of `pid` and its children (data-loader workers), from
    /proc; None where /proc cannot tell (not Linux, process gone). A few small file reads."""
    if not pid or not os.path.isdir(f"/proc/{pid}"):
        return None
    total, seen, todo = 0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss(p)
        todo += _children(p)
    return total or None


def format_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


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


def parse_time(text: str | None) -> datetime | None:
    """A database timestamp (ISO 8601, UTC) as an aware datetime."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def run_duration(created: str | None, finished: str | None, running: bool) -> float | None:
    """Seconds from creation to the end (or to now while it runs)."""
    start = parse_time(created)
    end = datetime.now(UTC) if running else parse_time(finished)
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


class Eta:
    """Time left of a run, from the wall-clock pace of this session: it includes data
    loading and the evaluation after each epoch, which images/s does not."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.it0 = 0

    def start(self, iteration: int) -> None:
        self.t0, self.it0 = None, iteration

    def update(self, iteration: int, total: int | None, budget_left: float | None) -> float | None:
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


CSV_HEADER = ("run_id", "run", "kind", "step", "epoch", "name", "value")


def write_metrics_csv(
    path: Path, runs: Iterable[tuple[int, str, Sequence[tuple[str, int, int, str, float]]]]
) -> int:
    """Write (run id, run name, metric rows) as one CSV table; returns the rows written.
    Written to a temporary file first, so a failed export leaves no half file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for run_id, name, rows in runs:
            for kind, step, epoch, metric, value in rows:
                w.writerow((run_id, name, kind, step, epoch, metric, repr(float(value))))
                n += 1
    os.replace(tmp, path)
    return n

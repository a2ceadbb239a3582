"""The runs list's CSV export of metric rows."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from studio.ui.training.plots import Row

CSV_HEADER = ("run_id", "run", "kind", "step", "epoch", "name", "value")


def write_metrics_csv(path: Path, runs: Iterable[tuple[int, str, Sequence[Row]]]) -> int:
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

"""Bulk edits of shapes (a script, not a test): python benchmarks/bench_bulk_edit.py

What a drag, an arrow-key nudge, a paste and the undo of a delete of N selected shapes
write to the project database: Studio's store (one executemany per set of columns)
against the plain way, one SQLAlchemy statement per shape in one transaction, on the
same rows in the same run. Medians of --repeat runs; the ratio is what to compare.

    python benchmarks/bench_bulk_edit.py               # 3,000 shapes
    python benchmarks/bench_bulk_edit.py --shapes 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, update

from studio.core import schema as S
from studio.core.demo import create_demo_project


def _per_row_update(repo, changes: dict[int, dict]) -> None:
    with repo.engine.begin() as conn:
        for ann_id, fields in changes.items():
            conn.execute(update(S.Annotation).where(S.Annotation.id == ann_id).values(**fields))


def _per_row_insert(repo, rows: list[dict]) -> None:
    with repo.engine.begin() as conn:
        for row in rows:
            conn.execute(insert(S.Annotation).values(**row))


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n = args.shapes
    with tempfile.TemporaryDirectory() as d:
        with create_demo_project(Path(d) / "p", n_images=1, seed=0, image_size=(640, 480)) as p:
            repo = p.store.annotations
            image, cid = p.images()[0].id, p.classes()[0].id
            rows = [dict(image_id=image, class_id=cid, kind="box", x=float(i % 600),
                         y=float(i % 400), w=8.0, h=8.0) for i in range(n)]  # fmt: skip
            ids = repo.insert_rows(rows)
            times: dict[str, list[float]] = {}
            for r in range(args.repeat):
                move = {i: {"x": float(r), "y": float(r)} for i in ids}
                times.setdefault("move: Studio", []).append(_timed(repo.update_rows, move))
                times.setdefault("move: per row", []).append(_timed(_per_row_update, repo, move))
                full = repo.delete_rows(ids)
                times.setdefault("undo delete: Studio", []).append(_timed(repo.insert_rows, full))
                repo.delete_rows(ids)
                times.setdefault("undo delete: per row", []).append(
                    _timed(_per_row_insert, repo, full)
                )
    print(f"\n{n} shapes on one image, median of {args.repeat} runs")
    print(f"{'write':<24} {'seconds':>8}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<24} {v:>8.3f}")
    for what in ("move", "undo delete"):
        print(f"{what}: per row / Studio = {med[what + ': per row'] / med[what + ': Studio']:.1f}x")


if __name__ == "__main__":
    main()

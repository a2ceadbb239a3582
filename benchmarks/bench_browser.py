"""Browser at scale: a project with 100,000 image rows (no files), offscreen.

Prints: time to insert the rows, browse.query_images / filter_counts times for a few
filter sets, the browser model's build time, process memory, and the time to scroll
the thumbnail grid from top to bottom with the number of thumbnails it asked for.

    python benchmarks/bench_browser.py [--images 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from studio.core import browse  # noqa: E402
from studio.core import schema as S  # noqa: E402
from studio.core.project import Project  # noqa: E402


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(project: Project, n_images: int, shapes_per_image: float = 3.0, seed: int = 0) -> None:
    """Insert image rows, 10 classes and about `shapes_per_image` boxes per image."""
    rng = random.Random(seed)
    statuses = ("new", "in_progress", "done", "needs_review")
    splits = ("train", "val", "test")
    now = S.utcnow()
    class_ids = [project.add_class(f"class{i}") for i in range(10)]
    images = [
        {
            "id": i,
            "path": f"images/{i // 1000:03d}/img_{i:06d}.jpg",
            "width": 640,
            "height": 480,
            "orientation": 1,
            "checksum": f"{i:032x}",
            "file_size": 1000,
            "status": rng.choice(statuses),
            "split": rng.choices(splits, (8, 1, 1))[0],
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1, n_images + 1)
    ]
    anns = []
    for i in range(1, n_images + 1):
        if rng.random() < 0.3:
            continue  # unlabelled
        for _ in range(rng.randint(1, int(2 * shapes_per_image))):
            anns.append(
                {
                    "image_id": i,
                    "class_id": rng.choice(class_ids),
                    "kind": "box",
                    "x": 1.0,
                    "y": 1.0,
                    "w": 10.0,
                    "h": 10.0,
                    "iscrowd": False,
                    "source": "predicted" if rng.random() < 0.1 else "manual",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    with project.engine.begin() as conn:
        conn.execute(insert(S.Image), images)
        conn.execute(insert(S.Annotation), anns)


def timed(label: str, fn, repeat: int = 5):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    print(f"  {label:<44} {best * 1000:8.1f} ms")
    return out


def bench_queries(project: Project) -> None:
    print("browse queries (best of 5):")
    timed("query_images()", lambda: browse.query_images(project))
    timed(
        "query_images(sort=date, descending)",
        lambda: browse.query_images(project, sort="date", descending=True),
    )
    timed("query_images(sort=objects)", lambda: browse.query_images(project, sort="objects"))
    timed("query_images(status=done)", lambda: browse.query_images(project, status="done"))
    timed("query_images(classes=[1, 2])", lambda: browse.query_images(project, classes=[1, 2]))
    timed(
        "query_images(source=unlabelled)", lambda: browse.query_images(project, source="unlabelled")
    )
    timed("query_images(text='img_09')", lambda: browse.query_images(project, text="img_09"))
    timed(
        "query_images(all filters)",
        lambda: browse.query_images(
            project, classes=[3], status="new", split="train", source="manual", text="0"
        ),
    )
    timed("filter_counts()", lambda: browse.filter_counts(project))
    timed(
        "filter_counts(status=done, classes=[1])",
        lambda: browse.filter_counts(project, status="done", classes=[1]),
    )
    ids = browse.query_images(project)
    timed("image_rows(256 ids)", lambda: browse.image_rows(project, ids[5000:5256]))
    timed("next_unlabelled", lambda: browse.next_unlabelled(project, ids, ids[0]))


def bench_browser(project: Project) -> None:
    from PySide6.QtCore import QSize, QThreadPool
    from PySide6.QtWidgets import QApplication

    from studio.ui.browser.dock import BrowserDock

    app = QApplication.instance() or QApplication([])
    rss0 = rss_mb()
    t = time.perf_counter()
    dock = BrowserDock()
    dock.resize(QSize(360, 900))
    dock.set_project(project)
    dock.show()
    app.processEvents()
    build = time.perf_counter() - t
    model = dock.model
    print("browser:")
    print(
        f"  {'dock + model build, first paint':<44} {build * 1000:8.1f} ms  ({model.rowCount()} rows)"
    )
    print(f"  {'RSS after build':<44} {rss_mb():8.1f} MB  (+{rss_mb() - rss0:.1f} MB)")
    view = dock.view
    requested0 = dock.thumbs.requested
    steps = 200
    t = time.perf_counter()
    n = model.rowCount()
    for k in range(1, steps + 1):
        view.scrollTo(model.index(min(n - 1, k * n // steps), 0))
        app.processEvents()
    scroll = time.perf_counter() - t
    print(
        f"  {'scroll top -> bottom in ' + str(steps) + ' steps':<44} {scroll * 1000:8.1f} ms  ({scroll / steps * 1000:.2f} ms/step)"
    )
    print(f"  {'thumbnails requested while scrolling':<44} {dock.thumbs.requested - requested0:8d}")
    print(f"  {'thumbnail jobs started (rest dropped as stale)':<44} {dock.thumbs.started:8d}")
    t = time.perf_counter()
    dock.set_compact(True)
    app.processEvents()
    print(f"  {'switch to compact list':<44} {(time.perf_counter() - t) * 1000:8.1f} ms")
    t = time.perf_counter()
    view.selectAll()  # Ctrl+A: the count label follows the selection
    app.processEvents()
    print(f"  {'select all (count label included)':<44} {(time.perf_counter() - t) * 1000:8.1f} ms")
    t = time.perf_counter()
    n_sel = len(dock.selected_ids())
    ours = time.perf_counter() - t
    t = time.perf_counter()
    n_qt = len(view.selectionModel().selectedRows())
    qt = time.perf_counter() - t
    print(
        f"  {'selected ids (' + f'{n_sel:,}' + ')':<44} {ours * 1000:8.1f} ms  "
        f"(Qt's selectedRows(): {qt * 1000:.1f} ms for {n_qt:,})"
    )
    view.clearSelection()
    t = time.perf_counter()
    dock.refresh_now()
    app.processEvents()
    print(f"  {'refresh (re-query + counts)':<44} {(time.perf_counter() - t) * 1000:8.1f} ms")
    print(f"  {'RSS at end':<44} {rss_mb():8.1f} MB")
    dock.close()
    # Let the workers finish before the interpreter tears Qt down under them.
    dock.thumbs.wait(10_000)
    QThreadPool.globalInstance().waitForDone(10_000)
    app.processEvents()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None, help="project folder to reuse/keep")
    args = ap.parse_args()
    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name) / "bench"
    else:
        folder = args.keep
    print(f"RSS at start: {rss_mb():.1f} MB")
    if (folder / "studio.db").exists():
        project = Project.open(folder)
    else:
        project = Project.create(folder)
        t = time.perf_counter()
        fill(project, args.images)
        print(f"insert {args.images} images + shapes: {time.perf_counter() - t:.2f} s")
    print(f"images: {project.image_count()}, shapes: {project.annotation_count()}")
    bench_queries(project)
    bench_browser(project)
    project.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

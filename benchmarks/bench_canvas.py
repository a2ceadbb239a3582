"""Benchmark the labelling canvas (a script, not a test): python benchmarks/bench_canvas.py

1. A canvas with 3,000 polygons: opening the image (the call, the longest the GUI
   thread is blocked, until the first shapes are built, until all is painted), and
   switching to it from another image of 3,000 polygons (the old items go too); the
   objects list of that image (the call, the longest block, until every row is
   listed); frames
   at fit (an unchanged repaint, a pan step, a zoom step; once a zoom settles, the
   longest the GUI thread is blocked and the time until the sharp picture is painted);
   changes of every shape's look (fill opacity, a class hidden and shown, a class
   colour, the tag toggle: the longest block and the time until redrawn); edits
   driven by real mouse events: a vertex move (database write + scene refresh + the
   repaint it causes), the undo of a vertex drag, and a box drawn with the box tool
   (press, move, release, repaint). Median and p95 over 50 of each.
2. A 24-megapixel JPEG (6000 x 4000, generated): from the key press that shows the next
   image to that image painted, with and without prefetch, each as a ratio to decoding
   the same JPEG with cv2.imread in the same run.

Runs headless (QT_QPA_PLATFORM=offscreen) unless a display is set. --quick runs fewer
repetitions (for a check that nothing got slower, not for numbers to publish). The
garbage collector is tuned as the application tunes it (studio/ui/common/responsiveness:
high thresholds, start-up objects frozen once the canvas is up); --default-gc leaves
Python's defaults, whose full collections (70-110 ms here) land in random GUI blocks.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ui"))  # the project and gesture helpers

from canvas_helpers import (  # noqa: E402
    add_image_row,
    make_project,
    many_polygons,
    move,
    press,
    release,
    textured_image,
    wait_until,
)
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QKeySequence, QShortcut  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.ui.canvas import CanvasView  # noqa: E402
from studio.ui.common.responsiveness import freeze_startup_objects, tune_gc  # noqa: E402
from studio.ui.objects.dock import ObjectsDock  # noqa: E402

N_EDITS = 50
N_SWITCHES = 5
N_OPENS = 5


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


class Blocks:
    """GUI-thread blocks, each timed by the wall clock and by this thread's CPU time: on
    a machine shared with other work a block's wall time includes waits for a core, its
    CPU time leaves them out (closer to what it takes on a quiet machine)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, step) -> None:
        t, c = time.perf_counter(), time.thread_time()
        step()
        self.wall.append(time.perf_counter() - t)
        self.cpu.append(time.thread_time() - c)

    def pump(self, app: QApplication, until, timeout: float = 10.0) -> None:
        """Process events until `until()`, each `processEvents` call a block (a
        conservative bound: one call may handle a turn of work and a paint). The short
        sleeps between calls (a real event loop waits for events instead; the decoding
        threads get the GIL) are not blocks but count in the time until done."""
        start = time.perf_counter()
        while not until():
            self.run(app.processEvents)
            if time.perf_counter() - start > timeout:
                raise TimeoutError("condition not met in time")
            time.sleep(0.0002)


def bench_open(app: QApplication, view: CanvasView, image_id: int, other_id: int) -> dict:
    """Opening the image with 3,000 polygons (coming from a small image with none):
    the show_image call, the longest the GUI thread is blocked until every shape is
    in (event-loop turns in between handle input and paint; wall and CPU time), how many
    blocks passed 16 ms, the longest turn of the page reader by its own clock, the time
    until the first shapes are built and until the image and every shape are painted.
    The first open also decodes the image."""
    out: dict[str, list[float]] = {}
    shapes = view.shapes
    for _ in range(N_OPENS):
        view.show_image(other_id)
        wait_until(lambda: view.image_layer.has_pixels)
        app.processEvents()
        blocks, t = Blocks(), time.perf_counter()
        blocks.run(lambda: view.show_image(image_id))
        call = blocks.wall[-1]
        blocks.pump(app, lambda: bool(shapes.items))
        first = time.perf_counter() - t
        blocks.pump(app, lambda: view.image_layer.has_pixels and not shapes.pages.pending)
        blocks.run(view.viewport().repaint)
        for name, value in (
            ("show_image call", call),
            ("longest GUI block", max(blocks.wall)),
            ("longest GUI block, CPU time", max(blocks.cpu)),
            ("blocks over 16 ms (count)", sum(b > 0.016 for b in blocks.wall)),
            ("reader's longest turn", max(shapes.pages.seconds, default=0.0)),
            ("first shapes built", first),
            ("until all painted", time.perf_counter() - t),
        ):
            out.setdefault(f"open image: {name}", []).append(value)
    return out


def bench_switch_dense(app: QApplication, view: CanvasView, image_id: int, other_id: int) -> dict:
    """Switching to the image with 3,000 polygons from another with 3,000 (each shown
    completely first): the show_image call and the longest GUI block (wall and CPU
    time), until every shape is in and painted, and the old items are all gone."""
    out: dict[str, list[float]] = {}
    shapes = view.shapes

    def settled() -> bool:
        return view.image_layer.has_pixels and not shapes.pages.pending

    for _ in range(N_OPENS):
        view.show_image(other_id)
        wait_until(lambda: settled() and not shapes.sweeper.pending)
        app.processEvents()
        blocks, t = Blocks(), time.perf_counter()
        blocks.run(lambda: view.show_image(image_id))
        call, call_cpu = blocks.wall[-1], blocks.cpu[-1]
        blocks.pump(app, lambda: settled() and not shapes.sweeper.pending)
        blocks.run(view.viewport().repaint)
        for name, value in (
            ("show_image call", call),
            ("show_image call, CPU time", call_cpu),
            ("longest GUI block", max(blocks.wall)),
            ("longest GUI block, CPU time", max(blocks.cpu)),
            ("until all painted, old items gone", time.perf_counter() - t),
        ):
            out.setdefault(f"dense to dense: {name}", []).append(value)
    return out


def bench_objects(app: QApplication, project, image_id: int, other_id: int) -> dict:
    """The objects list (its dock on its own) showing the image with 3,000 polygons,
    coming from one with none: the show_image call, the longest GUI block (wall and CPU
    time) and the time until every row is listed; then a repaint of the rows in sight
    and the selection of every row (the canvas's select-all)."""
    dock = ObjectsDock()
    dock.resize(400, 800)
    dock.show()
    dock.set_project(project)
    out: dict[str, list[float]] = {}
    for _ in range(N_OPENS):
        dock.show_image(other_id)
        wait_until(lambda: not dock.filler.pending)
        app.processEvents()
        blocks, t = Blocks(), time.perf_counter()
        blocks.run(lambda: dock.show_image(image_id))
        call = blocks.wall[-1]
        blocks.pump(app, lambda: not dock.filler.pending)
        blocks.run(app.processEvents)  # the list's layout, posted by its last change
        blocks.run(dock.repaint)
        listed = time.perf_counter() - t
        each = Blocks()  # a repaint of every visible row (a scroll step repaints them)
        each.run(dock.tree.viewport().repaint)
        each.run(lambda: dock.select_ids([r.ann_id for r in dock.model.rows]))
        for name, value in (
            ("show_image call", call),
            ("longest GUI block", max(blocks.wall)),
            ("longest GUI block, CPU time", max(blocks.cpu)),
            ("until every row listed", listed),
            ("repaint of the rows in sight, CPU", each.cpu[0]),
            ("all 3,000 rows selected, CPU", each.cpu[1]),
        ):
            out.setdefault(f"objects list: {name}", []).append(value)
    assert len(dock.model.rows) == 3000
    dock.close()
    return out


def bench_redraws(app: QApplication, view: CanvasView, project) -> dict[str, list[float]]:
    """Changes of every shape's look at fit over 3,000 polygons (one class), in rounds of
    each once: the longest GUI block (wall and CPU time) from the call to the new
    picture painted, and the time until then. (The fill opacity of a dense image
    changes only the hovered shape: the others are outlines.)"""
    shapes, cat = view.shapes, project.classes()[0].id
    shapes.set_hover(next(iter(shapes.items)))  # so that the tag shows
    changes = {
        "fill opacity": lambda i: shapes.set_fill_opacity(None if i % 2 else 128),
        "class hidden": lambda i: view.set_hidden_classes([cat]),
        "class shown": lambda i: view.set_hidden_classes([]),
        "class colour": lambda i: project.recolor_class(cat, ("#00c8c8", "#e6194b")[i % 2]),
        "tag toggle": lambda i: shapes.set_tags_visible(i % 2 == 1),
    }
    out: dict[str, list[float]] = {}
    for i in range(N_OPENS):
        for name, change in changes.items():
            blocks, t = Blocks(), time.perf_counter()
            # The call and the frame right after (the last picture), as one block.
            blocks.run(lambda c=change, i=i: (c(i), view.viewport().repaint()))
            blocks.pump(app, lambda: not shapes.redrawing)
            blocks.run(view.viewport().repaint)
            out.setdefault(f"{name}: longest GUI block", []).append(max(blocks.wall))
            out.setdefault(f"{name}: longest GUI block, CPU", []).append(max(blocks.cpu))
            out.setdefault(f"{name}: until redrawn", []).append(time.perf_counter() - t)
    shapes.set_hover(None)
    app.processEvents()
    return out


def bench_edits(app: QApplication, folder: Path, freeze: bool) -> dict[str, list[float]]:
    project, ids = make_project(folder / "edits", [(1600, 1200), (640, 480), (1600, 1200)])
    many_polygons(project, ids[0], 3000, 1600, 1200)
    many_polygons(project, ids[2], 3000, 1600, 1200, seed=1)
    view = CanvasView()
    view.resize(1280, 860)
    view.show()
    view.set_project(project)
    if freeze:  # as the application does once its window is up
        freeze_startup_objects()
    out = bench_open(app, view, ids[0], ids[1])
    out.update(bench_switch_dense(app, view, ids[0], ids[2]))
    out.update(bench_objects(app, project, ids[0], ids[1]))
    out.update(bench_frames(app, view))
    out.update(bench_redraws(app, view, project))

    # Vertex moves, zoomed in as one is when editing vertices.
    rec = view.shapes.items[max(view.shapes.items)].record
    view.select([rec.id])
    view.set_zoom(3.0)
    x, y = rec.polygons[0][0], rec.polygons[0][1]
    view.centerOn(x, y)
    app.processEvents()
    moves = []
    for i in range(N_EDITS):
        press(view, x, y)
        nx = x + (3 if i % 2 == 0 else -3)
        t = time.perf_counter()
        move(view, nx, y)
        app.processEvents()  # the repaint of what changed
        moves.append(time.perf_counter() - t)
        release(view, nx, y)
        x = nx
    out["vertex move (write + refresh + paint)"] = moves

    undo = []
    for _ in range(5):
        t = time.perf_counter()
        project.undo()
        app.processEvents()
        undo.append(time.perf_counter() - t)
    out["undo of a vertex drag (rows it names)"] = undo

    # Box adds at fit, over the dense image.
    view.fit()
    view.set_tool("box")
    app.processEvents()
    adds = []
    for i in range(N_EDITS):
        x0, y0 = 40 + (i % 10) * 150, 40 + (i // 10) * 200
        t = time.perf_counter()
        press(view, x0, y0)
        move(view, x0 + 60, y0 + 40)
        release(view, x0 + 90, y0 + 70)
        app.processEvents()
        adds.append(time.perf_counter() - t)
    out["box add (press, drag, release, paint)"] = adds
    assert len(project.annotations(image_ids=[ids[0]])) == 3000 + N_EDITS
    view.shutdown()
    view.close()
    project.close()
    return out


def bench_frames(app: QApplication, view: CanvasView) -> dict[str, list[float]]:
    """Frames at fit over 3,000 polygons: a repaint of an unchanged view, a pan step,
    a zoom step (a wheel notch), and what follows once the zoom settles."""

    def timed(step) -> float:
        t = time.perf_counter()
        step()
        view.viewport().repaint()
        return time.perf_counter() - t

    out: dict[str, list[float]] = {}
    out["full repaint at fit (pan/zoom frame)"] = [timed(lambda: None) for _ in range(5)]
    bar = view.horizontalScrollBar()
    out["pan frame at fit (20 px + repaint)"] = [
        timed(lambda i=i: bar.setValue(bar.value() + (20 if i % 2 else -20)))
        for i in range(N_EDITS)
    ]
    zooms, longest, totals = [], [], []
    for i in range(N_EDITS // 2):
        factor = 2.0 ** (0.25 if i % 2 == 0 else -0.25)  # one wheel notch in, then out
        zooms.append(timed(lambda f=factor: view.set_zoom(view.zoom * f)))
        block, total = settle(app, view)
        longest.append(block)
        totals.append(total)
    out["zoom frame (wheel notch + repaint)"] = zooms
    out["zoom settled: longest GUI block"] = longest
    out["zoom settled: until the sharp picture"] = totals
    view.fit()
    app.processEvents()
    return out


def settle(app: QApplication, view: CanvasView) -> tuple[float, float]:
    """What the view's pause after a zoom runs (every layer's `view_changed`), then the
    event-loop turns until the sharp picture of the shapes is painted: the longest turn
    (each `processEvents` call, a conservative bound) and the time until painted."""
    raster = view.shapes.raster
    start = time.perf_counter()
    view._update_layer_views()  # the view's 60 ms pause timer, fired now
    blocks = [time.perf_counter() - start]
    while raster.sharpening:
        t = time.perf_counter()
        app.processEvents()
        blocks.append(time.perf_counter() - t)
    t = time.perf_counter()
    view.viewport().repaint()  # the sharp picture on screen
    blocks.append(time.perf_counter() - t)
    return max(blocks), time.perf_counter() - start


def bench_switch(app: QApplication, folder: Path) -> dict[str, float]:
    project, ids = make_project(folder / "switch", [(640, 480)])
    jpeg = textured_image(project.path / "images" / "photo24mp.jpg", 6000, 4000, seed=7)
    big = add_image_row(project, jpeg, 6000, 4000)
    cv2.imread(str(jpeg))  # warm the file cache for everyone
    opencv = []
    for _ in range(N_SWITCHES):
        t = time.perf_counter()
        cv2.imread(str(jpeg))
        opencv.append(time.perf_counter() - t)

    view = CanvasView()
    view.resize(1280, 860)
    view.show()
    view.set_project(project)
    # What the window does: a key shows the next image.
    target = {"id": big}
    QShortcut(QKeySequence(Qt.Key.Key_D), view, lambda: view.show_image(target["id"]))

    def switch(prefetch: bool) -> float:
        view.show_image(ids[0])
        wait_until(lambda: view.image_layer.has_pixels)
        view.source.invalidate(big)
        if prefetch:
            view.prefetch([big])
            wait_until(lambda: view.source.cached_preview(project.image(big)) is not None)
        app.processEvents()
        t = time.perf_counter()
        QTest.keyClick(view, Qt.Key.Key_D)
        wait_until(lambda: view.image_id == big and view.image_layer.has_pixels, timeout=30)
        view.viewport().repaint()  # painted, synchronously
        return time.perf_counter() - t

    cold = [switch(False) for _ in range(N_SWITCHES)]
    warm = [switch(True) for _ in range(N_SWITCHES)]
    view.shutdown()
    view.close()
    project.close()
    return {
        "cv2.imread": statistics.median(opencv),
        "next image, no prefetch": statistics.median(cold),
        "next image, prefetched": statistics.median(warm),
    }


def bench_objects_only(app: QApplication) -> dict[str, list[float]]:
    """The objects list's numbers alone (`--objects`)."""
    with tempfile.TemporaryDirectory() as tmp:
        project, ids = make_project(Path(tmp) / "objects", [(1600, 1200), (640, 480)])
        many_polygons(project, ids[0], 3000, 1600, 1200)
        freeze_startup_objects()
        out = bench_objects(app, project, ids[0], ids[1])
        project.close()
    return out


def report(results: dict[str, list[float]], title: str) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    print(f"Canvas benchmark ({os.cpu_count()} CPUs, Qt platform {app.platformName()})")
    print(f"\n{title}")
    print(f"  {'':42s} {'median':>11s} {'p95':>11s}   n")
    for name, values in results.items():
        if name.endswith("(count)"):
            cells = f"{statistics.median(values):11.1f} {p95(values):11.1f}"
        else:
            cells = f"{ms(statistics.median(values))} {ms(p95(values))}"
        print(f"  {name:42s} {cells} {len(values):3d}")


def main() -> None:
    global N_EDITS, N_SWITCHES, N_OPENS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="20 edits, 2 switches, 3 opens and redraws each"
    )
    parser.add_argument(
        "--default-gc", action="store_true", help="Python's garbage collector settings"
    )
    parser.add_argument(
        "--objects", action="store_true", help="only the objects list (a few seconds)"
    )
    args = parser.parse_args()
    if args.quick:
        N_EDITS, N_SWITCHES, N_OPENS = 20, 2, 3
    if not args.default_gc:
        tune_gc()
    app = QApplication.instance() or QApplication([])
    if args.objects:
        report(bench_objects_only(app), "The objects list of an image with 3,000 polygons:")
        return
    with tempfile.TemporaryDirectory() as tmp:
        edits = bench_edits(app, Path(tmp), freeze=not args.default_gc)
        switch = bench_switch(app, Path(tmp))
    report(edits, "Edits on one image with 3,000 polygons (1600 x 1200):")
    print("\nNext image (6000 x 4000 JPEG, 24 MP), key press to painted:")
    base = switch["cv2.imread"]
    for name, value in switch.items():
        print(f"  {name:42s} {ms(value)}   {value / base:5.2f} x cv2.imread")


if __name__ == "__main__":
    main()

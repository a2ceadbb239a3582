"""Switching from one image of many shapes to another: the old items are hidden in the
call and taken off the scene over event-loop turns (`ItemSweeper`), never drawn or hit
meanwhile. Checked by the work done per turn, not by timings (those are
benchmarks/bench_canvas.py)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import many_polygons, wait_until  # noqa: E402
from test_canvas_speed import items_painting_themselves, pixels, repaint  # noqa: E402

from studio.ui.canvas.layers import shape_pages  # noqa: E402
from studio.ui.canvas.layers.annotations import DENSE_SHAPES  # noqa: E402
from studio.ui.canvas.layers.shape_pages import PAGE_SIZE, SWEEP_BATCH  # noqa: E402
from studio.ui.canvas.scene_items import BoxItem, PolygonItem  # noqa: E402

N = DENSE_SHAPES + PAGE_SIZE + 20


def shape_items(view) -> set:
    return {it for it in view.scene().items() if isinstance(it, BoxItem | PolygonItem)}


def test_the_old_items_are_hidden_at_once_and_removed_a_batch_per_turn(setup, monkeypatch):
    """With no time to spare, each sweeping turn removes one batch; meanwhile the old
    shapes are not hit and the picture shows only the new image's shapes."""
    monkeypatch.setattr(shape_pages, "SWEEP_SECONDS", 0.0)
    view, project, ids = setup
    many_polygons(project, ids[0], N, 800, 600)
    new = many_polygons(project, ids[1], N, 640, 480, seed=1)
    view.show_image(ids[0])
    sweeper, scene = view.shapes.sweeper, view.scene()
    wait_until(lambda: not view.shapes.pages.pending and not sweeper.pending)
    old, swept, turns = list(view.shapes.items.values()), sweeper.swept, len(sweeper.per_turn)
    # An old shape right of the new (640-pixel wide) image: nothing new lies there.
    right = next(it for it in old if it.record.bbox[0] > 660)
    view.show_image(ids[1])
    sweeper._timer.stop()  # turns run below, one at a time
    assert all(it.scene() is scene and not it.isVisible() for it in old)  # none removed
    assert sweeper.pending == N
    x, y, w, h = right.record.bbox
    assert view.shapes.shape_at(x + w / 2, y + h / 2) is None  # hidden: not hit
    wait_until(lambda: not view.shapes.pages.pending)
    sweeper._timer.stop()
    assert sorted(view.shapes.items) == new
    repaint(view)  # the old items, still in the scene, are not drawn
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))
    while sweeper.pending:
        sweeper._timer.stop()
        sweeper._turn()
    assert sweeper.per_turn[turns:] == [SWEEP_BATCH] * (N // SWEEP_BATCH) + [N % SWEEP_BATCH]
    assert sweeper.swept - swept == N
    assert all(it.scene() is None for it in old)
    assert shape_items(view) == set(view.shapes.items.values())


def test_switching_back_and_forth_before_the_sweep_ends_shows_the_right_shapes(setup):
    view, project, ids = setup
    first = many_polygons(project, ids[0], N, 800, 600)
    many_polygons(project, ids[1], N, 640, 480, seed=1)
    view.show_image(ids[0])
    wait_until(lambda: not view.shapes.pages.pending)
    view.show_image(ids[1])
    view.show_image(ids[0])  # the items of both earlier shows wait to be swept
    assert view.shapes.sweeper.pending >= N
    wait_until(lambda: not view.shapes.pages.pending and not view.shapes.sweeper.pending)
    assert sorted(view.shapes.items) == first
    assert shape_items(view) == set(view.shapes.items.values())
    assert all(it.isVisible() for it in view.shapes.items.values())


def test_closing_the_canvas_mid_sweep_takes_the_rest_off_at_once(setup):
    view, project, ids = setup
    many_polygons(project, ids[0], N, 800, 600)
    view.show_image(ids[0])
    wait_until(lambda: not view.shapes.pages.pending and not view.shapes.sweeper.pending)
    view.show_image(ids[1])
    assert view.shapes.sweeper.pending == N
    view.shutdown()  # the layers detach: nothing is left for a timer to touch later
    assert view.shapes.sweeper.pending == 0
    assert shape_items(view) == set()

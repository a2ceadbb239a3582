"""Space's "next image not done": found by reading statuses a chunk at a time from the
current image on, with the same answers as before (wrapping around, never the current
image, None when every other image is done)."""

from __future__ import annotations

from studio.core.demo import create_demo_project
from studio.ui import navigation
from studio.ui.navigation import next_not_done


def test_next_not_done_walks_the_order_and_wraps(tmp_path, monkeypatch):
    monkeypatch.setattr(navigation, "_NEAR", 3)  # beyond the ids asked first, too
    with create_demo_project(tmp_path / "p", n_images=10, seed=0, image_size=(64, 48)) as p:
        ids = [im.id for im in p.images()]
        order = ids[::-1]  # the browser's order, whatever it is
        p.set_status(ids, "done")
        p.set_status([order[1], order[7]], "new")
        assert next_not_done(p, order, order[0]) == order[1]
        assert next_not_done(p, order, order[1]) == order[7]  # beyond the ids asked first
        assert next_not_done(p, order, order[7]) == order[1]  # wraps around
        assert next_not_done(p, order, None) == order[1]
        assert next_not_done(p, order, 99999) == order[1]  # not in the order: from the top
        p.set_status([order[1]], "needs_review")
        p.set_status([order[7]], "done")
        assert next_not_done(p, order, order[1]) is None  # only the current one is open
        assert next_not_done(p, [], None) is None

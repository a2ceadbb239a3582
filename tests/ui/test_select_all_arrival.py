"""Select all (Ctrl+A) while a dense image's shapes still arrive over event-loop turns:
every shape of the image ends up selected, by id, without reading the rest at once;
a selection or an image chosen meanwhile wins. Checked by ids and by the pages still
to read, not by timings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import many_polygons, wait_until  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.ui.canvas.layers.annotations import DENSE_SHAPES  # noqa: E402
from studio.ui.canvas.layers.shape_pages import PAGE_SIZE  # noqa: E402

CTRL = Qt.KeyboardModifier.ControlModifier
N_FEW = DENSE_SHAPES + 2 * PAGE_SIZE  # past the held pages: some still arrive


def _arrived(view) -> None:
    """Run the event loop until every shape is built, then once more (the selection of
    the rest is a turn of its own)."""
    wait_until(lambda: not view.shapes.pages.pending)
    QApplication.processEvents()


def test_ctrl_a_while_3000_shapes_arrive_selects_all_3000(setup, qtbot):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], 3000, 800, 600)
    view.show_image(ids[0])
    pages = view.shapes.pages
    read = pages.pages_read
    qtbot.keyClick(view, Qt.Key.Key_A, CTRL)
    # What was built is selected now; nothing more is read or built in the key press.
    assert view.selected_annotation_ids() == sorted(view.shapes.items)
    assert pages.pending and pages.pages_read == read and len(view.shapes.items) < 3000
    _arrived(view)
    assert view.selected_annotation_ids() == ann


def test_hidden_shapes_are_left_out_and_a_choice_made_meanwhile_wins(setup):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], N_FEW, 800, 600)
    view.set_shape_hidden([ann[0], ann[-1]])  # one read first, one read last
    view.show_image(ids[0])
    view.select_all()
    _arrived(view)
    assert view.selected_annotation_ids() == ann[1:-1]
    view.show_image(ids[1])
    view.show_image(ids[0])
    view.select_all()
    view.select([ann[5]])  # the user picks one shape before the rest arrive
    _arrived(view)
    assert view.selected_annotation_ids() == [ann[5]]


def test_another_image_shown_meanwhile_gets_no_selection(setup):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], N_FEW, 800, 600)
    other = many_polygons(project, ids[1], N_FEW, 640, 480, seed=1)
    view.show_image(ids[0])
    view.select_all()
    view.show_image(ids[1])
    _arrived(view)
    assert view.selected_annotation_ids() == []
    assert sorted(view.shapes.items) == other and not set(ann) & set(view.shapes.items)

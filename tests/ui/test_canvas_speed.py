"""What keeps the canvas fluid at thousands of shapes, checked by the work done rather
than by timings: plain shapes are painted from one picture (layers/shape_raster.py) that
a pan only moves, that a hover or an edit redraws only around the shape, and that looks
the same as the shapes painting themselves; an undo or redo re-reads only the rows it
names. Opening an image of many shapes and redrawing all of them are checked in
test_canvas_open_speed.py. The timings are benchmarks/bench_canvas.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import drag, many_polygons, wait_until  # noqa: E402

from studio.core.project import make_annotation_row  # noqa: E402
from studio.ui.canvas.layers import shape_raster  # noqa: E402
from studio.ui.canvas.layers.annotations import DENSE_SHAPES, NO_CONTENTS  # noqa: E402
from studio.ui.canvas.layers.shape_raster import SCALE_WHILE_ZOOMING  # noqa: E402

N_DENSE = max(DENSE_SHAPES, SCALE_WHILE_ZOOMING) + 100


def shown(view, project, image_id, n: int, seed: int = 0) -> list[int]:
    """`n` polygons on the image, shown (every page read), painted once."""
    ids = many_polygons(project, image_id, n, 800, 600, seed=seed)
    view.show_image(image_id)
    wait_until(lambda: not view.shapes.pages.pending)
    repaint(view)
    return ids


def repaint(view) -> None:
    QApplication.processEvents()
    view.viewport().repaint()


def settle(view) -> None:
    """After a zoom: the scaled frame, then the sharp one (as the view's pause does),
    drawn over event-loop turns."""
    repaint(view)
    view.shapes.raster.view_settled()
    wait_until(lambda: not view.shapes.raster.sharpening)
    repaint(view)


def pixels(view) -> np.ndarray:
    img = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].astype(int)


def items_painting_themselves(view) -> np.ndarray:
    """The canvas as it looked before the raster: every item paints itself."""
    shapes = view.shapes
    shapes.raster.setVisible(False)
    for item in shapes.items.values():
        item.setFlag(NO_CONTENTS, False)
    try:
        return pixels(view)
    finally:
        for ann_id, item in shapes.items.items():
            item.setFlag(NO_CONTENTS, ann_id != shapes.hover and ann_id not in shapes.selected)
        shapes.raster.setVisible(True)


def test_a_pan_moves_the_picture_without_drawing_a_shape(setup):
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders, drawn = raster.full_renders, raster.shapes_drawn
    assert renders >= 1 and drawn >= N_DENSE
    bar = view.horizontalScrollBar()
    for step in (20, -35, 15):
        bar.setValue(bar.value() + step)
        repaint(view)
    assert (raster.full_renders, raster.shapes_drawn) == (renders, drawn)


def test_hover_and_selection_redraw_only_around_the_shape(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders, drawn = raster.full_renders, raster.shapes_drawn
    view.shapes.set_hover(ann[10])
    repaint(view)
    view.select([ann[20]])
    repaint(view)
    assert raster.full_renders == renders
    assert 2 <= raster.partial_renders and raster.shapes_drawn - drawn < 40


def test_undo_of_a_vertex_drag_rebuilds_one_item_and_redraws_around_it(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], N_DENSE)
    rec = view.shapes.record(ann[-1])
    x, y = rec.polygons[0][0], rec.polygons[0][1]
    view.select([rec.id])
    view.set_zoom(3.0)
    view.centerOn(x, y)
    settle(view)
    drag(view, [(x, y), (x + 4, y + 2), (x + 8, y + 4)])
    view.select([])
    repaint(view)
    raster, built = view.shapes.raster, view.shapes.items_built
    renders, drawn = raster.full_renders, raster.shapes_drawn
    project.undo()
    repaint(view)
    assert view.shapes.record(rec.id).polygons == rec.polygons
    assert view.shapes.items_built - built == 1
    assert raster.full_renders == renders and raster.shapes_drawn - drawn < 40


def test_a_zoom_step_scales_the_picture_and_the_settled_view_redraws_it(setup):
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders = raster.full_renders
    view.set_zoom(view.zoom * 1.19)
    view.viewport().repaint()
    assert raster.full_renders == renders  # the last picture, scaled
    view.shapes.view_changed(view.sceneRect(), view.zoom)  # what the view calls on a pause
    wait_until(lambda: not raster.sharpening)
    view.viewport().repaint()
    assert raster.full_renders == renders + 1


def turn(raster) -> None:
    """One event-loop turn of the sharp redraw (its timer's, run now)."""
    raster._timer.stop()
    raster._sharp_turn()


def test_the_sharp_picture_is_drawn_in_batches_between_turns(setup, monkeypatch):
    """The redraw after a zoom never draws every shape in one turn: with no time to
    spare, each turn draws one batch, and the scaled picture shows until the last."""
    monkeypatch.setattr(shape_raster, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    view.set_zoom(view.zoom * 1.19)
    repaint(view)
    renders, drawn, turns = raster.full_renders, raster.shapes_drawn, raster.sharp_turns
    raster.view_settled()
    repaint(view)
    assert raster.shapes_drawn == drawn  # nothing drawn in the settle itself
    most = 0
    while raster.sharpening:
        before = raster.shapes_drawn
        turn(raster)
        most = max(most, raster.shapes_drawn - before)
        if raster.sharpening:
            assert raster.full_renders == renders  # still the scaled picture
    batches = -(-(raster.shapes_drawn - drawn) // shape_raster.BATCH)
    assert raster.shapes_drawn - drawn >= N_DENSE and most == shape_raster.BATCH
    assert raster.sharp_turns - turns == 1 + batches  # the plan, then one batch a turn
    assert raster.full_renders == renders + 1
    repaint(view)
    assert raster.full_renders == renders + 1  # shown as it is: no redraw at the paint
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))


def test_a_zoom_during_the_sharp_redraw_drops_it(setup, monkeypatch):
    monkeypatch.setattr(shape_raster, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    view.set_zoom(view.zoom * 1.19)
    repaint(view)
    renders = raster.full_renders
    raster.view_settled()
    turn(raster)  # planned
    turn(raster)  # one batch drawn
    assert raster.sharpening
    view.set_zoom(view.zoom * 1.19)
    repaint(view)  # a scaled frame at the new zoom
    assert not raster.sharpening and raster.full_renders == renders
    settle(view)
    assert raster.full_renders == renders + 1


def test_edits_during_the_sharp_redraw_show_once_it_is_complete(setup, monkeypatch):
    monkeypatch.setattr(shape_raster, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    ann = shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    view.set_zoom(view.zoom * 1.19)
    repaint(view)
    raster.view_settled()
    turn(raster)  # planned: its shapes are the ones before the edits
    project.delete_annotations(ann[:5])
    moved = [[10, 10, 200, 10, 200, 150, 10, 150]]
    project.update_annotations({ann[-1]: {"polygons": moved}})
    view.shapes.set_hover(ann[8])
    wait_until(lambda: not raster.sharpening)
    repaint(view)
    assert ann[0] not in view.shapes.items
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))


def test_the_picture_looks_like_the_shapes_painting_themselves(setup):
    view, project, ids = setup
    # Few shapes: filled and antialiased; many: outlines without antialiasing.
    for image_id, n in ((ids[1], 40), (ids[0], N_DENSE)):
        ann = shown(view, project, image_id, n, seed=image_id)
        dog = project.classes()[1].id
        boxes = [make_annotation_row(image_id, dog, "box", bbox=(30 + 40 * i, 20 + 25 * i, 50, 30))
                 for i in range(8)]  # fmt: skip
        project.add_annotations(boxes)
        view.shapes.set_hover(ann[3])
        view.select([ann[5]])
        view.set_zoom(1.7)
        view.centerOn(300, 250)
        settle(view)
        view.shapes.set_fill_opacity(128)  # every shape redrawn (of many, over turns)
        wait_until(lambda: not view.shapes.raster.sharpening)
        view.shapes.set_hover(ann[7])  # a partial redraw
        repaint(view)
        diff = np.abs(pixels(view) - items_painting_themselves(view))
        assert view.shapes.raster.full_renders > 0
        assert diff.max() <= 3, (image_id, int(diff.max()), int((diff > 3).sum()))


def reads(project) -> list[dict]:
    """Records the arguments of every `project.annotations` read from now on."""
    calls: list[dict] = []
    read = project.annotations

    def counted(image_ids=None, ids=None):
        calls.append({"image_ids": image_ids, "ids": ids})
        return read(image_ids, ids)

    project.annotations = counted
    return calls


def test_undo_and_redo_of_a_vertex_drag_read_only_the_dragged_row(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], 50)
    rec = view.shapes.record(ann[7])
    x, y = rec.polygons[0][0], rec.polygons[0][1]
    view.select([rec.id])
    drag(view, [(x, y), (x + 6, y + 3)])
    moved = view.shapes.record(rec.id).polygons
    calls = reads(project)
    project.undo()
    assert view.shapes.record(rec.id).polygons == rec.polygons
    project.redo()
    assert view.shapes.record(rec.id).polygons == moved
    assert calls == [{"image_ids": None, "ids": [rec.id]}] * 2


def test_undo_of_a_delete_brings_the_item_back_from_its_row(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], 30)
    view.select(ann[3:5])
    view.editor.delete_selected()
    assert ann[3] not in view.shapes.items
    calls = reads(project)
    project.undo()
    assert {ann[3], ann[4]} <= set(view.shapes.items) and len(view.shapes.items) == 30
    project.redo()
    assert ann[3] not in view.shapes.items and len(view.shapes.items) == 28
    assert calls == [{"image_ids": None, "ids": ann[3:5]}] * 2


def test_a_merge_of_classes_rereads_the_whole_image(setup):
    """A change that names no rows (a merge moves every shape of a class) reloads."""
    view, project, ids = setup
    ann = shown(view, project, ids[0], 20)
    cat, dog = (c.id for c in project.classes()[:2])
    calls = reads(project)
    project.merge_classes([cat], dog)
    assert {view.shapes.record(i).class_id for i in ann} == {dog}
    assert {"image_ids": [ids[0]], "ids": None} in calls

"""The labelling canvas, driven by real mouse and key events on its viewport.

Every check reads the database, not the scene: the canvas must have written the edit
through the project, in image pixels, whatever the zoom.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import statistics
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import (  # noqa: E402
    add_image_row,
    click,
    drag,
    many_polygons,
    move,
    press,
    release,
    vp,
    wait_until,
)

RIGHT = Qt.MouseButton.RightButton
SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def anns(project, image_id):
    return project.annotations(image_ids=[image_id])


def poly_points(rec):
    return list(zip(rec.polygons[0][0::2], rec.polygons[0][1::2], strict=True))


def assert_close(a, b, tol=0.5):
    assert len(a) == len(b), (a, b)
    for u, v in zip(a, b, strict=True):
        assert abs(u - v) <= tol, (a, b)


# --- drawing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zoom", "x0", "y0", "x1", "y1"), [(2.5, 202, 152, 298, 226), (0.4, 105, 95, 655, 480)]
)
def test_box_drawn_at_any_zoom_lands_in_image_pixels(setup, zoom, x0, y0, x1, y1):
    view, project, ids = setup
    view.set_zoom(zoom)
    view.centerOn((x0 + x1) / 2, (y0 + y1) / 2)
    assert view.zoom == pytest.approx(zoom)
    view.set_tool("box")
    drag(view, [(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)])
    (rec,) = anns(project, ids[0])
    assert rec.kind == "box"
    assert_close(rec.bbox, (x0, y0, x1 - x0, y1 - y0))
    # ... and exactly where the viewport pixels of the gesture are in the image.
    p0, p1 = view.to_image(QPointF(vp(view, x0, y0))), view.to_image(QPointF(vp(view, x1, y1)))
    assert_close(rec.bbox, (p0.x(), p0.y(), p1.x() - p0.x(), p1.y() - p0.y()), 0.01)
    assert view.selected_annotation_ids() == [rec.id]


def test_tiny_drag_with_box_tool_is_a_click(setup):
    view, project, ids = setup
    view.set_tool("box")
    drag(view, [(100, 100), (101, 101)])
    assert anns(project, ids[0]) == []


def test_polygon_click_vertices_then_enter(setup, qtbot):
    view, project, ids = setup
    view.set_tool("polygon")
    pts = [(100, 100), (300, 110), (320, 260), (90, 240)]
    for p in pts:
        click(view, *p)
    assert anns(project, ids[0]) == []  # a draft only the canvas knows
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Return)
    (rec,) = anns(project, ids[0])
    assert rec.kind == "polygon"
    assert_close([v for p in poly_points(rec) for v in p], [v for p in pts for v in p], 1.0)


def test_polygon_closes_on_first_vertex_and_backspace_esc(setup, qtbot):
    view, project, ids = setup
    view.set_tool("polygon")
    for p in [(100, 100), (300, 100), (300, 300), (500, 500)]:
        click(view, *p)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Backspace)  # drops (500, 500)
    click(view, 101, 101)  # on the first vertex: closes
    (rec,) = anns(project, ids[0])
    assert len(rec.polygons[0]) == 6
    click(view, 50, 50)
    click(view, 60, 200)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Escape)
    assert view.interaction.draft is None
    assert len(anns(project, ids[0])) == 1


# --- editing ----------------------------------------------------------------------------


def _polygon(project, image_id, pts=(100, 100, 300, 100, 300, 300, 100, 300)):
    cid = project.classes()[0].id
    return project.add_annotation(image_id, cid, "polygon", polygons=[list(pts)])


def test_drag_vertex_updates_database(setup):
    view, project, ids = setup
    ann = _polygon(project, ids[0])
    view.select([ann])
    drag(view, [(300, 300), (340, 320), (360, 350)])
    (rec,) = anns(project, ids[0])
    assert_close(poly_points(rec)[2], (360, 350))
    assert view.shapes.record(ann) == rec  # the scene mirrors the database


def test_insert_vertex_by_double_click_and_shift_click(setup, qtbot):
    view, project, ids = setup
    ann = _polygon(project, ids[0])
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=vp(view, 200, 100))
    rec = anns(project, ids[0])[0]
    assert len(poly_points(rec)) == 5
    assert_close(poly_points(rec)[1], (200, 100))
    # Shift-click on the right edge inserts and drags the new vertex in one step.
    drag(view, [(300, 200), (340, 200)], mods=SHIFT)
    rec = anns(project, ids[0])[0]
    assert len(poly_points(rec)) == 6
    assert_close(poly_points(rec)[3], (340, 200))
    project.undo()
    assert len(poly_points(anns(project, ids[0])[0])) == 5
    assert len(view.shapes.record(ann).polygons[0]) == 10


def test_delete_vertex_by_right_click_and_by_delete_key(setup, qtbot):
    view, project, ids = setup
    ann = _polygon(project, ids[0], (100, 100, 200, 80, 300, 100, 300, 300, 100, 300))
    click(view, 200, 80, RIGHT)
    assert len(poly_points(anns(project, ids[0])[0])) == 4
    click(view, 300, 300)  # selects the polygon: Delete would delete it
    assert view.shapes.active_vertex is None and view.selected_annotation_ids() == [ann]
    click(view, 300, 300)  # a vertex of the selected polygon: now the active vertex
    assert view.shapes.active_vertex == (ann, 0, 2)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert poly_points(anns(project, ids[0])[0]) == [(100, 100), (300, 100), (100, 300)]
    click(view, 100, 300, RIGHT)  # would leave 2 points: refused, shape kept
    assert len(poly_points(anns(project, ids[0])[0])) == 3


def test_move_box_and_resize_by_corner(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    ann = project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 200, 100))
    drag(view, [(200, 150), (230, 170), (250, 190)])  # body: move by (50, 40)
    assert_close(anns(project, ids[0])[0].bbox, (150, 140, 200, 100))
    drag(view, [(350, 240), (380, 260), (400, 280)])  # bottom-right corner
    assert_close(anns(project, ids[0])[0].bbox, (150, 140, 250, 140))
    drag(view, [(150, 200), (120, 200)])  # left edge
    assert_close(anns(project, ids[0])[0].bbox, (120, 140, 280, 140))
    assert view.shapes.record(ann).bbox == anns(project, ids[0])[0].bbox


def test_moves_stay_inside_the_image(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    project.add_annotation(ids[0], cid, "box", bbox=(700, 500, 50, 50))
    view.set_zoom(0.5)
    drag(view, [(725, 525), (900, 700)])
    assert_close(anns(project, ids[0])[0].bbox, (750, 550, 50, 50))


def test_arrow_keys_nudge_as_one_undo_step(setup, qtbot):
    view, project, ids = setup
    cid = project.classes()[0].id
    a = project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 50, 50))
    b = project.add_annotation(ids[0], cid, "polygon", polygons=[[10, 10, 40, 10, 20, 30]])
    view.select([a, b])
    for key in (Qt.Key.Key_Right, Qt.Key.Key_Right, Qt.Key.Key_Down):
        qtbot.keyClick(view.viewport(), key)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Left, SHIFT)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Left, SHIFT)  # only 2 px left to go
    rows = anns(project, ids[0])
    assert rows[0].bbox == (90, 101, 50, 50)
    assert rows[1].polygons == [[0, 11, 30, 11, 10, 31]]  # stopped at the border
    project.undo()
    assert anns(project, ids[0])[0].bbox == (100, 100, 50, 50)


def test_masks_are_not_reshaped(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    rle = {"size": [600, 800], "counts": "abc"}
    project.add_annotation(ids[0], cid, "mask", bbox=(100, 100, 100, 100), rle=rle)
    drag(view, [(100, 100), (150, 150)])  # a corner: no handle
    drag(view, [(150, 150), (200, 200)])  # the body: selected, not moved
    assert anns(project, ids[0])[0].bbox == (100, 100, 100, 100)


def test_undo_redo_of_a_drag_is_one_step(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    ann = project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 100, 100))
    before = anns(project, ids[0])[0]
    drag(view, [(150, 150)] + [(150 + 7 * i, 150 + 3 * i) for i in range(1, 15)])
    after = anns(project, ids[0])[0]
    assert after.bbox != before.bbox
    project.undo()
    assert anns(project, ids[0])[0] == before
    assert view.shapes.record(ann) == before  # the canvas followed the undo
    project.redo()
    assert anns(project, ids[0])[0] == after
    assert view.shapes.record(ann) == after
    project.undo()
    project.undo()  # the add itself: the item goes
    assert anns(project, ids[0]) == [] and view.shapes.items == {}


def test_escape_during_a_drag_takes_it_back(setup, qtbot):
    view, project, ids = setup
    cid = project.classes()[0].id
    project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 100, 100))
    press(view, 150, 150)
    move(view, 200, 220)
    assert anns(project, ids[0])[0].bbox != (100, 100, 100, 100)
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Escape)
    release(view, 200, 220)
    assert anns(project, ids[0])[0].bbox == (100, 100, 100, 100)


# --- selection --------------------------------------------------------------------------


def test_delete_removes_selected(setup, qtbot):
    view, project, ids = setup
    cid = project.classes()[0].id
    a = project.add_annotation(ids[0], cid, "box", bbox=(100, 100, 50, 50))
    b = project.add_annotation(ids[0], cid, "box", bbox=(300, 100, 50, 50))
    c = project.add_annotation(ids[0], cid, "box", bbox=(500, 100, 50, 50))
    click(view, 125, 125)
    click(view, 525, 125, mods=CTRL)
    assert view.selected_annotation_ids() == [a, c]
    qtbot.keyClick(view.viewport(), Qt.Key.Key_Delete)
    assert [r.id for r in anns(project, ids[0])] == [b]
    assert list(view.shapes.items) == [b]
    assert view.selected_annotation_ids() == []


def test_rubber_band_selects_shapes_inside(setup, qtbot):
    view, project, ids = setup
    cid = project.classes()[0].id
    inside = [
        project.add_annotation(ids[0], cid, "box", bbox=(100 + 60 * i, 100, 40, 40))
        for i in range(3)
    ]
    _polygon(project, ids[0], (100, 300, 200, 300, 150, 380))
    outside = project.add_annotation(ids[0], cid, "box", bbox=(600, 400, 40, 40))
    with qtbot.waitSignal(view.selection_changed) as sig:
        drag(view, [(80, 80), (200, 200), (320, 160)])
    assert view.selected_annotation_ids() == inside
    assert sig.args == [inside]
    drag(view, [(580, 380), (660, 460)], mods=SHIFT)
    assert view.selected_annotation_ids() == [*inside, outside]


def test_hidden_classes_are_not_shown_or_picked(setup):
    view, project, ids = setup
    c0, c1 = (c.id for c in project.classes())
    a = project.add_annotation(ids[0], c0, "box", bbox=(100, 100, 100, 100))
    project.add_annotation(ids[0], c1, "box", bbox=(120, 120, 20, 20))
    view.set_hidden_classes({c1})
    click(view, 130, 130)
    assert view.selected_annotation_ids() == [a]
    view.set_hidden_classes(set())
    assert all(it.isVisible() for it in view.shapes.items.values())


# --- images -----------------------------------------------------------------------------


def test_corrupt_image_shows_message_and_canvas_keeps_working(setup, tmp_path):
    view, project, ids = setup
    bad = project.path / "images" / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    bad_id = add_image_row(project, bad, 400, 300)
    messages = []
    view.message.connect(messages.append)
    view.show_image(bad_id)
    wait_until(lambda: view.image_layer.message.isVisible())
    assert view.image_layer.message.text().startswith("Cannot show bad.jpg: ")
    assert any(m.startswith("Cannot show bad.jpg") for m in messages)
    view.set_tool("box")  # shapes can still be drawn on the image's frame
    drag(view, [(50, 50), (150, 120)])
    assert len(anns(project, bad_id)) == 1
    view.show_image(ids[1])
    wait_until(lambda: view.image_layer.has_pixels)
    assert not view.image_layer.message.isVisible()


def test_paste_onto_another_image_is_clipped(setup):
    view, project, ids = setup
    cid = project.classes()[1].id
    project.add_annotation(ids[0], cid, "box", bbox=(600, 400, 150, 100))
    project.add_annotation(ids[0], cid, "polygon", polygons=[[100, 100, 200, 100, 150, 180]])
    project.add_annotation(ids[0], cid, "box", bbox=(700, 500, 50, 50))  # falls outside
    view.select_all()
    assert view.copy_selection() == 3
    view.show_image(ids[1])  # 640 x 480
    pasted = view.paste()
    rows = anns(project, ids[1])
    assert [r.id for r in rows] == pasted and len(rows) == 2
    assert_close(rows[0].bbox, (600, 400, 40, 80), 1e-6)
    assert rows[1].polygons == [[100, 100, 200, 100, 150, 180]]
    assert all(r.class_id == cid for r in rows)
    assert view.selected_annotation_ids() == pasted
    project.undo()  # one step for the whole paste
    assert anns(project, ids[1]) == [] and view.shapes.items == {}


def test_copy_from_previous(setup):
    view, project, ids = setup
    cid = project.classes()[0].id
    project.add_annotation(ids[0], cid, "box", bbox=(10, 10, 30, 30))
    project.add_annotation(ids[0], cid, "box", bbox=(620, 460, 100, 100))
    view.show_image(ids[1])
    new = view.copy_from_previous(ids[0])
    assert [r.bbox for r in anns(project, ids[1])] == [(10, 10, 30, 30), (620, 460, 20, 20)]
    assert sorted(view.shapes.items) == new


def test_prefetched_image_shows_at_once(setup):
    view, project, ids = setup
    view.prefetch([ids[1]])
    wait_until(lambda: view.source.cached_preview(project.image(ids[1])) is not None)
    shown = []
    view.pixels_shown.connect(shown.append)
    view.show_image(ids[1])
    assert shown == [ids[1]]  # no event-loop turn needed


def test_zoom_keeps_point_under_cursor(setup):
    view, project, ids = setup
    anchor = QPointF(vp(view, 250, 200))
    before = view.to_image(anchor)
    for _ in range(3):
        view.set_zoom(view.zoom * 1.7, anchor)
    after = view.to_image(anchor)
    assert abs(after.x() - before.x()) < 1 and abs(after.y() - before.y()) < 1
    view.zoom_100()
    assert view.zoom == 1.0
    view.fit()
    assert view.zoom < 1.2


# --- performance guards (the benchmark is benchmarks/bench_canvas.py) --------------------


def test_vertex_drag_on_3000_polygons_is_fast(setup):
    view, project, ids = setup
    t0 = time.perf_counter()
    many_polygons(project, ids[0], 3000, 800, 600)
    assert time.perf_counter() - t0 < 30
    assert len(view.shapes.items) == 3000
    rec = view.shapes.items[max(view.shapes.items)].record
    view.select([rec.id])
    view.set_zoom(3.0)
    x0, y = rec.polygons[0][0], rec.polygons[0][1]
    step = 2 if x0 < 400 else -2  # towards the middle: no clamping at the border
    view.centerOn(x0 + 10 * step, y)
    times = []
    x = x0
    for _ in range(20):
        press(view, x, y)
        t = time.perf_counter()
        move(view, x + step, y)  # the edit: written, re-read, repainted
        QApplication.processEvents()
        times.append(time.perf_counter() - t)
        release(view, x + step, y)
        x += step
    assert_close(anns(project, ids[0])[-1].polygons[0][:2], (x0 + 20 * step, y), 0.5)
    assert statistics.median(times) < 0.05, times


@pytest.mark.slow
def test_huge_image_opens_without_blocking(setup, tmp_path):
    view, project, ids = setup
    path = project.path / "images" / "huge.jpg"
    im = Image.new("L", (20000, 20000), 110)
    draw = ImageDraw.Draw(im)
    for i in range(0, 20000, 2500):
        draw.rectangle([i, i, i + 800, i + 800], fill=230)
    im.save(path, quality=70)
    del im, draw
    huge = add_image_row(project, path, 20000, 20000)
    t = time.perf_counter()
    view.show_image(huge)
    assert time.perf_counter() - t < 0.5
    worst = wait_until(lambda: view.image_layer.has_pixels, timeout=30)
    assert worst < 0.5
    assert (
        max(view.image_layer.preview.pixmap().width(), view.image_layer.preview.pixmap().height())
        <= 2048
    )
    # Zoomed in, full-resolution tiles of the visible region follow, off the GUI thread.
    view.set_zoom(0.3)
    view.centerOn(2900, 2900)
    worst = wait_until(lambda: view.image_layer.tile_count > 0, timeout=60)
    assert worst < 0.5
    assert view.image_layer.level.reduce == 2  # a JPEG decodes at the zoom's need


def test_full_resolution_tiles_when_zoomed_in(setup, tmp_path):
    view, project, ids = setup
    path = project.path / "images" / "big.png"
    im = Image.new("RGB", (3000, 2000), (20, 40, 60))
    ImageDraw.Draw(im).rectangle([1500, 1000, 1503, 1003], fill=(250, 0, 0))
    im.save(path, compress_level=1)
    big = add_image_row(project, path, 3000, 2000)
    view.show_image(big)
    wait_until(lambda: view.image_layer.has_pixels)
    assert view.image_layer.preview.pixmap().width() == 2048
    view.set_zoom(4.0)
    view.centerOn(1501, 1001)
    wait_until(lambda: view.image_layer.tile_count > 0)
    QApplication.processEvents()
    shot = view.grab().toImage()
    c = shot.pixelColor(vp(view, 1502, 1002))
    assert (c.red(), c.green(), c.blue()) == (250, 0, 0)  # a sharp, exact pixel
    c = shot.pixelColor(vp(view, 1505, 1002))
    assert (c.red(), c.green(), c.blue()) == (20, 40, 60)

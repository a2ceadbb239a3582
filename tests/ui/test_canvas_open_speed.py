"""Opening an image of many shapes, and redrawing all of them, without blocking the GUI
thread: checked by the work done per event-loop turn, never by timings (those are
benchmarks/bench_canvas.py).

- layers/shape_pages.py reads rows and builds items over turns, and starts no unit of
  work that it expects to end past its `TURN_SECONDS` (tested with a fake clock);
- every shape ends up built, drawn (each once) and selectable, and the first is built
  only once the density (hence every shape's style) is settled;
- a click, a drag and an undo right after opening hit the right shape, reading only the
  rows under them (no page); a selection by id reads that row; a hover may miss shapes
  still arriving and reads nothing;
- rows edited while their copies wait to be built are built as they are now;
- a change of every shape's look (fill opacity, hidden classes, colours) is restyled
  and redrawn a batch per turn while the last picture shows, into the spare picture;
  a shape hidden one by one is redrawn where it is; the tag toggle redraws nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import click, drag, many_polygons, move, wait_until  # noqa: E402
from test_canvas_speed import items_painting_themselves, pixels, repaint  # noqa: E402

from studio.core.kinds import ShapeKind  # noqa: E402
from studio.core.project import make_annotation_row  # noqa: E402
from studio.core.records import AnnotationRecord  # noqa: E402
from studio.ui.canvas.layers import shape_pages, shape_raster, shape_restyle  # noqa: E402
from studio.ui.canvas.layers.annotations import DENSE_SHAPES, FEW_CHANGED  # noqa: E402
from studio.ui.canvas.layers.shape_hits import BOX_MARGIN  # noqa: E402
from studio.ui.canvas.layers.shape_pages import BATCH, PAGE_SIZE, PageReader, Unit  # noqa: E402
from studio.ui.canvas.layers.shape_raster import SCALE_WHILE_ZOOMING  # noqa: E402
from studio.ui.canvas.tools.hits import HIT_PX  # noqa: E402

N_MANY = DENSE_SHAPES + 2 * PAGE_SIZE + 30  # dense, several pages after the held ones
N_BOXES = FEW_CHANGED + 8  # enough that hiding them all redraws the whole picture


def turn(pages: PageReader) -> None:
    """One event-loop turn of the reader (its timer's, run now)."""
    pages._timer.stop()
    pages._turn()


# --- the reader on its own, with a fake clock ------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def fake_records(n: int) -> list[AnnotationRecord]:
    return [AnnotationRecord(i, 1, 1, ShapeKind.BOX, (i, i, 5.0, 5.0)) for i in range(1, n + 1)]


def test_a_turn_starts_no_unit_it_expects_to_end_past_its_budget(qtbot, monkeypatch):
    """Reads take 3 ms and batches 2 ms by the reader's clock: no turn passes
    `TURN_SECONDS` (8 ms), nothing is delivered before `hold` records are read, each
    delivery is at most a batch, and every record arrives once, in id order."""
    clock = FakeClock()
    monkeypatch.setattr(shape_pages, "time", clock)
    monkeypatch.setattr(shape_pages, "TURN_SECONDS", 0.008)
    rows = fake_records(3 * PAGE_SIZE + 7)
    got: list[list[AnnotationRecord]] = []

    def read(after: int, n: int) -> list[AnnotationRecord]:
        clock.now += 0.003
        return [r for r in rows if r.id > after][:n]

    def deliver(records: list[AnnotationRecord]) -> None:
        clock.now += 0.002
        got.append(records)

    pages = PageReader(deliver)
    pages.start(read, read(0, PAGE_SIZE), hold=2 * PAGE_SIZE + 1)
    turn(pages)  # the first turn only waits a frame
    assert pages.units == [] and pages.pending
    while pages.pending:
        turn(pages)
        if not got:  # held: reading until more than two pages are known
            assert set(pages.units[-1]) == {Unit.READ}
    # 3 + 3 ms, then a batch: 8 ms (a third read would end at 9 ms, a second batch at 10)
    assert pages.units[0] == [Unit.READ, Unit.READ, Unit.BUILD]
    assert max(pages.seconds) <= shape_pages.TURN_SECONDS + 1e-9
    assert max(len(units) for units in pages.units) == 4  # four 2 ms batches: 8 ms
    assert max(len(batch) for batch in got) == BATCH
    assert [r.id for batch in got for r in batch] == [r.id for r in rows]
    assert pages.pages_read == 3 and pages.delivered == len(rows)  # the first read above


def test_forgotten_records_are_not_delivered_and_finish_delivers_the_rest(qtbot):
    rows = fake_records(PAGE_SIZE + 40)
    got: list[AnnotationRecord] = []
    pages = PageReader(got.extend)
    pages.start(lambda after, n: [r for r in rows if r.id > after][:n], rows[:PAGE_SIZE])
    pages.forget([3, PAGE_SIZE + 5])  # one buffered; one not read yet (read later)
    pages.finish()
    assert not pages.pending
    assert [r.id for r in got] == [r.id for r in rows if r.id != 3]


# --- opening an image on the canvas -----------------------------------------------------------


def test_many_shapes_are_built_over_turns_each_once_the_style_is_settled(setup, monkeypatch):
    """With no time to spare, each turn does one unit: a page read or a batch built.
    The first item is built once `DENSE_SHAPES` are read (dense from the start: no
    restyle, no second full picture), later batches are drawn onto the picture, and in
    the end every shape is drawn once and looks as if it painted itself."""
    monkeypatch.setattr(shape_pages, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    ann = many_polygons(project, ids[0], N_MANY, 800, 600)
    shapes, raster = view.shapes, view.shapes.raster
    density_at: list[tuple[bool, int]] = []  # (dense, items built then)
    changed = shapes.on_density_changed
    shapes.on_density_changed = lambda dense: (
        density_at.append((dense, len(shapes.items))),
        changed(dense),
    )
    view.show_image(ids[0])  # the image was shown before its shapes were added: undense
    assert shapes.items == {} and shapes.pages.pending  # nothing built in the call
    drawn, renders = raster.shapes_drawn, raster.full_renders
    per_turn = []
    while shapes.pages.pending:
        before = len(shapes.items)
        turn(shapes.pages)
        per_turn.append(len(shapes.items) - before)
        repaint(view)  # what the turns between the reader's turns do
    assert all(len(units) <= 1 for units in shapes.pages.units)
    assert max(per_turn) == BATCH
    assert density_at == [(False, 0), (True, 0)]  # settled before the first item
    assert sorted(shapes.items) == ann
    # The empty picture under the image, then (in the dense style's render hints) the
    # first batch; every later batch is drawn on top.
    assert raster.full_renders == renders + 2
    assert raster.shapes_drawn - drawn == N_MANY
    repaint(view)
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))


def test_a_few_hundred_shapes_open_over_turns_and_stay_undense(setup):
    view, project, ids = setup
    n = PAGE_SIZE + 50
    ann = many_polygons(project, ids[0], n, 800, 600)
    view.show_image(ids[0])
    assert view.shapes.pages.pending and view.shapes.items == {}
    wait_until(lambda: not view.shapes.pages.pending)
    assert sorted(view.shapes.items) == ann and not view.shapes.dense


def test_fewer_shapes_than_a_page_are_built_in_the_call(setup):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], PAGE_SIZE - 1, 800, 600)
    view.show_image(ids[0])
    assert not view.shapes.pages.pending and sorted(view.shapes.items) == ann


def box_beside_polygons(project, image_id: int) -> int:
    """`N_MANY` polygons left of x = 600, then a box at (650, 250, 100, 100): the last
    row, so it is read last."""
    many_polygons(project, image_id, N_MANY, 600, 600)
    cid = project.classes()[1].id
    return project.add_annotation(image_id, cid, "box", bbox=(650, 250, 100, 100))


def test_a_click_and_a_drag_right_after_opening_hit_the_right_shape(setup):
    """The box is the last row, not read yet: a click and a drag on it build it (and only
    what lies there) and leave the rest to arrive over turns."""
    view, project, ids = setup
    box = box_beside_polygons(project, ids[0])
    view.show_image(ids[0])
    assert box not in view.shapes.items  # not read yet
    click(view, 700, 300)
    assert view.selected_annotation_ids() == [box]
    assert list(view.shapes.items) == [box] and view.shapes.pages.pending
    view.show_image(ids[0])
    assert view.shapes.pages.pending
    drag(view, [(700, 300), (720, 310), (740, 320)])  # the body: moved by (40, 20)
    moved = project.annotations(ids=[box])[0]
    assert np.allclose(moved.bbox, (690, 270, 100, 100), atol=0.5)
    assert view.shapes.record(box) == moved and view.shapes.pages.pending
    project.undo()
    assert project.annotations(ids=[box])[0].bbox == (650, 250, 100, 100)
    assert view.shapes.record(box).bbox == (650, 250, 100, 100)
    wait_until(lambda: not view.shapes.pages.pending)
    in_db = {r.id: r for r in project.annotations(image_ids=[ids[0]])}
    assert {i: it.record for i, it in view.shapes.items.items()} == in_db


def test_a_selection_by_id_reads_that_row_and_records_read_the_rest(setup):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], DENSE_SHAPES + PAGE_SIZE, 800, 600)
    view.show_image(ids[0])
    pages = view.shapes.pages.pages_read
    view.select([ann[-1]])  # a shape of the last page (undo focus, the objects list)
    assert view.selected_annotation_ids() == [ann[-1]] and list(view.shapes.items) == [ann[-1]]
    assert view.shapes.pages.pages_read == pages and view.shapes.pages.pending
    view.select([ann[1]])  # read with the first page: taken from those waiting
    assert view.selected_annotation_ids() == [ann[1]] and sorted(view.shapes.items) == [
        ann[1],
        ann[-1],
    ]
    assert [r.id for r in view.shapes.records()] and not view.shapes.pages.pending
    assert sorted(view.shapes.items) == ann


def test_a_click_while_shapes_arrive_reads_only_the_rows_under_it(setup):
    """A click, a rubber band and a hover during arrival read no page: the click and the
    band build what lies where they are (from the rows read, and by one query over the
    unread rows), the hover only looks at what is built."""
    view, project, ids = setup
    box = box_beside_polygons(project, ids[0])
    view.show_image(ids[0])
    shapes = view.shapes
    pages = shapes.pages.pages_read
    move(view, 700, 300)  # a hover over the box, not built yet: nothing read, no hit
    assert shapes.hover is None and shapes.items == {}
    click(view, 300, 300)  # among the polygons: the ones near, of the first page or later
    picked = view.selected_annotation_ids()
    m = view.tol(HIT_PX) + BOX_MARGIN  # the hit test's reach and the pens' margin
    near = {
        r.id
        for r in project.annotations(image_ids=[ids[0]])
        if r.bbox[0] - m <= 300 <= r.bbox[0] + r.bbox[2] + m
        and r.bbox[1] - m <= 300 <= r.bbox[1] + r.bbox[3] + m
    }
    assert set(shapes.items) <= near | set(picked) and len(shapes.items) < 40
    drag(view, [(640, 240), (700, 300), (760, 360)])  # a band around the box
    assert view.selected_annotation_ids() == [box]
    assert shapes.pages.pages_read == pages and shapes.pages.pending
    wait_until(lambda: not shapes.pages.pending)
    assert len(shapes.items) == N_MANY + 1 and view.selected_annotation_ids() == [box]


def test_the_scene_index_fits_thousands_of_shapes_after_an_empty_image(setup):
    """Qt sized its scene index once, for the items of the first image shown: after an
    empty one, a tree of depth 5 (32 cells) for 830 shapes, so that a hit test examined
    ~770 items instead of ~60 (measured by counting `boundingRect` calls)."""
    view, project, ids = setup  # the first image, with no shape, is shown and painted
    repaint(view)
    many_polygons(project, ids[1], N_MANY, 640, 480)
    view.show_image(ids[1])
    wait_until(lambda: not view.shapes.pages.pending)
    view.shapes.shape_at(320, 240)
    assert view.scene().bspTreeDepth() >= 10  # 1,024 cells or more


def test_a_hover_hit_test_may_miss_shapes_still_arriving_and_reads_nothing(setup):
    view, project, ids = setup
    box = box_beside_polygons(project, ids[0])
    shapes = view.shapes
    view.show_image(ids[0])
    wait_until(lambda: bool(shapes.items))
    assert shapes.shape_at(700, 300, complete=False) is None  # not built yet
    assert shapes.shapes_near(700, 300, 5, complete=False) == []
    assert shapes.pages.pending
    assert shapes.shape_at(700, 300) == box and shapes.pages.pending  # built alone


def test_edits_while_shapes_arrive_end_equal_to_the_database(setup):
    """Rows changed after they were read (still waiting to be built) are built from the
    database as it is now, not from the copies read before."""
    view, project, ids = setup
    ann = many_polygons(project, ids[0], N_MANY, 800, 600)
    view.show_image(ids[0])
    assert view.shapes.pages.buffered == PAGE_SIZE  # the first page: read, not built
    project.delete_annotations([ann[-1], ann[0]])  # one not read yet, one read
    project.update_annotations({ann[5]: {"polygons": [[10, 10, 60, 10, 60, 40]]}})
    project.update_annotations({ann[-2]: {"polygons": [[20, 10, 60, 10, 60, 40]]}})
    project.undo()
    project.redo()
    wait_until(lambda: not view.shapes.pages.pending)
    in_db = {r.id: r for r in project.annotations(image_ids=[ids[0]])}
    assert {i: it.record for i, it in view.shapes.items.items()} == in_db
    assert ann[0] not in in_db and in_db[ann[5]].polygons == [[10, 10, 60, 10, 60, 40]]


# --- redrawing every shape --------------------------------------------------------------------


def redraw_in_turns(raster) -> int:
    """Run the raster's redraw turns now; the most shapes one turn drew. The last picture
    shows until the new one is complete."""
    renders, most = raster.full_renders, 0
    while raster.sharpening:
        before = raster.shapes_drawn
        raster._timer.stop()
        raster._sharp_turn()
        most = max(most, raster.shapes_drawn - before)
        if raster.sharpening:
            assert raster.full_renders == renders
    assert raster.full_renders == renders + 1
    return most


def shown_with_boxes(view, project, image_id: int, n: int) -> tuple[int, int]:
    """`n` polygons of "cat" and `N_BOXES` small boxes of "dog", every one built and
    painted; the two class ids."""
    many_polygons(project, image_id, n, 800, 600)
    cat, dog = (c.id for c in project.classes()[:2])
    rows = [
        make_annotation_row(image_id, dog, "box", bbox=(30 + 30 * i, 100 + 12 * i, 20, 15))
        for i in range(N_BOXES)
    ]
    project.add_annotations(rows)
    view.show_image(image_id)
    wait_until(lambda: not view.shapes.pages.pending)
    repaint(view)
    return cat, dog


def assert_redrawn_over_turns(view, change, spare: bool = True) -> None:
    """`change` is drawn a batch per turn (the last picture shows meanwhile), into the
    spare picture if there is one (none allocated), and looks as if the shapes painted
    themselves."""
    raster = view.shapes.raster
    renders, made = raster.full_renders, raster.pictures_made
    change()
    wait_until(lambda: not view.shapes.restyler.pending)  # of many items, over turns
    repaint(view)
    assert raster.full_renders == renders and raster.sharpening  # the last picture
    assert redraw_in_turns(raster) <= shape_raster.BATCH
    assert raster.pictures_made == made + (not spare)
    repaint(view)
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))


def test_hiding_showing_and_recolouring_many_shapes_redraws_a_batch_per_turn(setup, monkeypatch):
    monkeypatch.setattr(shape_raster, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    cat, dog = shown_with_boxes(view, project, ids[0], N_MANY)
    raster = view.shapes.raster
    view.set_zoom(view.zoom * 1.19)  # a picture the size of every later one
    repaint(view)
    view.shapes.view_changed(view.sceneRect(), view.zoom)
    redraw_in_turns(raster)
    assert_redrawn_over_turns(view, lambda: view.set_hidden_classes([dog]))
    assert_redrawn_over_turns(view, lambda: view.set_hidden_classes([]))
    assert_redrawn_over_turns(view, lambda: project.recolor_class(cat, "#00ffff"))
    renders, made, drawn = raster.full_renders, raster.pictures_made, raster.shapes_drawn
    view.shapes.set_fill_opacity(200)  # outlines only, when dense: nothing to redraw
    assert not raster.sharpening
    view.set_hidden_classes([cat])  # a few shapes left: drawn at the next paint
    assert not raster.sharpening
    repaint(view)
    assert raster.full_renders == renders + 1 and raster.shapes_drawn - drawn == N_BOXES
    view.set_hidden_classes([cat, dog])  # none left: no picture (a 1-pixel stand-in)
    repaint(view)
    assert raster.full_renders == renders + 2 and raster.pictures_made == made


def test_a_colour_change_restyles_a_batch_per_turn_then_redraws_once(setup, monkeypatch):
    """Restyling 3,000 items took 20-45 ms in one go: with no time to spare, the call
    restyles one batch (the selected shape first) and each later turn one more; the
    picture is redrawn once, after the last."""
    monkeypatch.setattr(shape_restyle, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    cat, _ = shown_with_boxes(view, project, ids[0], N_MANY)
    shapes, raster = view.shapes, view.shapes.raster
    last = max(i for i, it in shapes.items.items() if it.record.class_id == cat)
    view.select([last])
    turns, renders = shapes.restyler.turns, raster.full_renders
    project.recolor_class(cat, "#00ffff")
    assert shapes.restyler.turns - turns == 1 and shapes.restyler.pending
    assert shapes.items[last].pen() == shapes.style(cat).selected_pen  # in the first
    while shapes.restyler.pending:
        assert not raster.sharpening
        shapes.restyler._timer.stop()
        shapes.restyler._turn()
    n = len(shapes.items) + 1  # the selected shape twice
    assert shapes.restyler.turns - turns == -(-n // shape_restyle.BATCH)
    assert raster.sharpening  # now the picture: once
    wait_until(lambda: not shapes.redrawing)
    assert raster.full_renders == renders + 1
    plain = [it for i, it in shapes.items.items() if i != last]
    assert {it.pen().color().name() for it in plain if it.record.class_id == cat} == {"#00ffff"}


def test_hiding_one_shape_of_many_redraws_only_where_it_is(setup):
    view, project, ids = setup
    shown_with_boxes(view, project, ids[0], N_MANY)
    raster, box = view.shapes.raster, max(view.shapes.items)
    renders, partial, drawn = raster.full_renders, raster.partial_renders, raster.shapes_drawn
    for hidden in ([box], []):
        view.set_shape_hidden(hidden)
        assert not view.shapes.redrawing
        repaint(view)
    assert raster.full_renders == renders and raster.partial_renders - partial == 2
    assert raster.shapes_drawn - drawn < 40  # the box, and what overlaps it, twice
    diff = np.abs(pixels(view) - items_painting_themselves(view))
    assert diff.max() <= 3, (int(diff.max()), int((diff > 3).sum()))


def test_a_fill_change_of_hundreds_of_filled_shapes_redraws_a_batch_per_turn(setup, monkeypatch):
    monkeypatch.setattr(shape_raster, "TURN_SECONDS", 0.0)
    view, project, ids = setup
    shown_with_boxes(view, project, ids[0], SCALE_WHILE_ZOOMING + 50)
    assert not view.shapes.dense
    assert_redrawn_over_turns(view, lambda: view.shapes.set_fill_opacity(200), spare=False)
    assert_redrawn_over_turns(view, lambda: view.shapes.set_fill_opacity(0))


def test_few_shapes_are_redrawn_at_once_and_the_tag_toggle_redraws_nothing(setup):
    view, project, ids = setup
    ann = many_polygons(project, ids[0], SCALE_WHILE_ZOOMING - 10, 800, 600)
    view.show_image(ids[0])
    wait_until(lambda: not view.shapes.pages.pending)
    repaint(view)
    raster = view.shapes.raster
    renders = raster.full_renders
    view.shapes.set_fill_opacity(200)
    assert not raster.sharpening
    repaint(view)
    assert raster.full_renders == renders + 1
    view.shapes.set_hover(ann[3])
    repaint(view)
    renders, drawn = raster.full_renders, raster.shapes_drawn
    for on in (False, True):
        view.shapes.set_tags_visible(on)
        repaint(view)
        assert view.shapes.tag.isVisible() is on
    assert (raster.full_renders, raster.shapes_drawn) == (renders, drawn)

"""Undo and redo of every edit, compared row by row with what the database held before."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.importing import import_dataset, import_images
from studio.core.project import Project, make_annotation_row
from studio.core.records import AnnotationSpec, DatasetSpec, ImageSpec
from studio.core.splits import assign_splits

# updated_at records when a row last changed; an undo is a change, so it may move on.
# Every other column must come back exactly.
VOLATILE = ("updated_at",)


@pytest.fixture(autouse=True)
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every timestamp the core takes is distinct, so a timestamp that is re-taken instead
    of restored shows up as a difference (instead of only when a second ticks over)."""
    counter = itertools.count()
    monkeypatch.setattr(S, "utcnow", lambda: f"2030-01-01T00:00:00.{next(counter):06d}+00:00")


def _dump(p: Project, table_dump) -> dict[str, list[tuple]]:
    return table_dump(p.db_path, exclude=VOLATILE)


def _first_of_kind(p: Project, kind: str):
    return next(a for a in p.annotations() if a.kind == kind)


def _ids(p: Project) -> dict[str, int]:
    return {c.name: c.id for c in p.classes()}


# Each edit runs on the demo project; the name says what it does.
EDITS: dict[str, Callable[[Project], object]] = {
    "add box": lambda p: p.add_annotation(
        p.image_ids()[0], _ids(p)["ball"], "box", bbox=(3.5, 4.25, 20, 10)
    ),
    "add polygon": lambda p: p.add_annotation(
        p.image_ids()[1], _ids(p)["star"], "polygon", polygons=[[1, 1, 30, 2, 15, 25]]
    ),
    "add several": lambda p: p.add_annotations(
        [
            make_annotation_row(p.image_ids()[2], _ids(p)["tile"], "box", (1, 1, 5, 5)),
            make_annotation_row(p.image_ids()[3], _ids(p)["tile"], "box", (2, 2, 5, 5)),
        ]
    ),
    "move box": lambda p: p.update_annotation(
        _first_of_kind(p, "box").id,
        bbox=(
            _first_of_kind(p, "box").bbox[0] + 7,
            _first_of_kind(p, "box").bbox[1] + 3,
            *_first_of_kind(p, "box").bbox[2:],
        ),
    ),
    "resize box": lambda p: p.update_annotation(_first_of_kind(p, "box").id, bbox=(1, 2, 33, 44)),
    "reshape polygon": lambda p: p.update_annotation(
        _first_of_kind(p, "polygon").id,
        polygons=[[0, 0, 50, 0, 50, 40, 0, 40], [60, 60, 70, 60, 65, 70]],
    ),
    "delete shapes": lambda p: p.delete_annotations([a.id for a in p.annotations()[:5]]),
    "change class": lambda p: p.set_annotation_class(
        [a.id for a in p.annotations() if a.class_id != _ids(p)["ball"]][:4], _ids(p)["ball"]
    ),
    "set status": lambda p: p.set_status(p.image_ids()[:6], "needs_review"),
    "set split": lambda p: p.set_split(p.image_ids()[:24:3], "test"),
    "delete images": lambda p: p.delete_images(p.image_ids()[4:9]),
    "add class": lambda p: p.add_class("zebra", "#010203"),
    "rename class": lambda p: p.rename_class(_ids(p)["tile"], "square"),
    "recolour class": lambda p: p.recolor_class(_ids(p)["tile"], "#00ff00"),
    "reorder classes": lambda p: p.reorder_classes(sorted(_ids(p).values(), reverse=True)),
    "merge classes": lambda p: p.merge_classes(
        [_ids(p)["tile"], _ids(p)["triangle"]], _ids(p)["star"]
    ),
    "delete class": lambda p: p.delete_class(_ids(p)["triangle"]),
    "assign splits": lambda p: assign_splits(p, val=0.5, test=0.25, seed=7),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edit_undo_redo_restores_rows(demo_project: Project, table_dump, edit: str) -> None:
    p = demo_project
    p.undo_stack.clear()

    def dump() -> dict:
        return _dump(p, table_dump)

    before = dump()
    EDITS[edit](p)
    after = dump()
    assert after != before, f"{edit!r} changed nothing"
    assert p.undo_stack.can_undo

    assert p.undo() is not None
    assert dump() == before
    assert not p.undo_stack.can_undo and p.undo_stack.can_redo

    assert p.redo() is not None
    assert dump() == after
    assert p.undo_stack.can_undo and not p.undo_stack.can_redo

    # And once more, to be sure a redone command can be undone again.
    p.undo()
    assert dump() == before


def test_undo_of_assign_splits_restores_the_fractions(demo_project: Project) -> None:
    p = demo_project
    before = p.get_setting("split_fractions")
    assign_splits(p, val=0.5, test=0.25, seed=7)
    assert p.get_setting("split_fractions") != before
    p.undo()
    assert p.get_setting("split_fractions") == before


def test_undo_of_delete_restores_timestamps(demo_project: Project, table_dump) -> None:
    p = demo_project
    before = table_dump(p.db_path, ("annotations", "images"))
    p.delete_annotations([a.id for a in p.annotations()[:3]])
    p.delete_images(p.image_ids()[-2:])
    p.undo()
    p.undo()
    assert table_dump(p.db_path, ("annotations", "images")) == before


def test_undo_and_redo_on_empty_stacks(project: Project) -> None:
    assert project.undo() is None
    assert project.redo() is None
    assert not project.undo_stack.can_undo and not project.undo_stack.can_redo


def test_stack_texts(project: Project) -> None:
    project.add_class("a")
    assert project.undo_stack.undo_text == "add class a"
    project.undo()
    assert project.undo_stack.redo_text == "add class a"
    assert project.undo_stack.undo_text is None


# --- gestures -------------------------------------------------------------------------------


@pytest.fixture
def one_box(project: Project, make_jpeg) -> tuple[Project, int]:
    make_jpeg(project.path / "images" / "a.jpg", 200, 100)
    import_images(project, [project.path / "images"])
    cls = project.add_class("thing")
    aid = project.add_annotation(project.image_ids()[0], cls, "box", bbox=(10, 10, 20, 20))
    project.undo_stack.clear()
    return project, aid


def _bbox(p: Project, aid: int) -> tuple:
    return p.annotations(ids=[aid])[0].bbox


def test_same_gesture_merges_into_one_step(one_box) -> None:
    p, aid = one_box
    drag = object()
    for dx in (1, 2, 3, 4):
        p.update_annotation(aid, bbox=(10 + dx, 10 + dx, 20, 20), gesture=drag)
    assert _bbox(p, aid) == (14.0, 14.0, 20.0, 20.0)
    assert p.undo() == "edit shape"
    # One step back is where the drag started, and there is nothing more to undo.
    assert _bbox(p, aid) == (10.0, 10.0, 20.0, 20.0)
    assert not p.undo_stack.can_undo
    assert p.redo() == "edit shape"
    assert _bbox(p, aid) == (14.0, 14.0, 20.0, 20.0)
    assert not p.undo_stack.can_redo


def test_gesture_merge_of_move_then_resize(one_box) -> None:
    p, aid = one_box
    drag = ("drag", 1)
    p.update_annotation(aid, bbox=(12, 12, 20, 20), gesture=drag)
    p.update_annotation(aid, bbox=(12, 12, 50, 60), gesture=drag)
    p.undo()
    assert _bbox(p, aid) == (10.0, 10.0, 20.0, 20.0)
    assert not p.undo_stack.can_undo


def test_different_gestures_do_not_merge(one_box) -> None:
    p, aid = one_box
    p.update_annotation(aid, bbox=(11, 11, 20, 20), gesture="first drag")
    p.update_annotation(aid, bbox=(12, 12, 20, 20), gesture="second drag")
    p.undo()
    assert _bbox(p, aid) == (11.0, 11.0, 20.0, 20.0)
    p.undo()
    assert _bbox(p, aid) == (10.0, 10.0, 20.0, 20.0)
    assert not p.undo_stack.can_undo


def test_updates_without_gesture_never_merge(one_box) -> None:
    p, aid = one_box
    p.update_annotation(aid, bbox=(11, 11, 20, 20))
    p.update_annotation(aid, bbox=(12, 12, 20, 20))
    p.undo()
    assert _bbox(p, aid) == (11.0, 11.0, 20.0, 20.0)


def test_gesture_on_another_shape_does_not_merge(one_box) -> None:
    p, aid = one_box
    other = p.add_annotation(p.image_ids()[0], p.classes()[0].id, "box", bbox=(50, 50, 5, 5))
    p.update_annotation(aid, bbox=(11, 11, 20, 20), gesture="g")
    p.update_annotation(other, bbox=(55, 55, 5, 5), gesture="g")
    p.undo()
    assert _bbox(p, other) == (50.0, 50.0, 5.0, 5.0)
    assert _bbox(p, aid) == (11.0, 11.0, 20.0, 20.0)


def test_polygon_reshape_gesture_restores_points_and_box(project: Project, make_jpeg, sql) -> None:
    make_jpeg(project.path / "images" / "a.jpg", 100, 100)
    import_images(project, [project.path / "images"])
    cls = project.add_class("thing")
    first = [[10.0, 10.0, 40.0, 10.0, 25.0, 30.0]]
    aid = project.add_annotation(project.image_ids()[0], cls, "polygon", polygons=first)
    row_before = sql(project.db_path, "SELECT x, y, w, h, polygons FROM annotations")
    for k in range(1, 4):
        project.update_annotation(
            aid, polygons=[[10.0, 10.0, 40.0 + k, 10.0, 25.0, 30.0 + 2 * k]], gesture="vertex"
        )
    assert project.annotations(ids=[aid])[0].bbox == (10.0, 10.0, 33.0, 26.0)
    project.undo()
    assert sql(project.db_path, "SELECT x, y, w, h, polygons FROM annotations") == row_before
    assert project.annotations(ids=[aid])[0].polygons == first
    assert project.undo_stack.undo_text == "add shape"


# --- ids and the redo stack -----------------------------------------------------------------


def test_redo_of_add_restores_the_same_id(one_box) -> None:
    p, aid = one_box
    new = p.add_annotation(p.image_ids()[0], p.classes()[0].id, "box", bbox=(1, 2, 3, 4))
    p.undo()
    assert p.annotations(ids=[new]) == []
    p.redo()
    (rec,) = p.annotations(ids=[new])
    assert rec.bbox == (1.0, 2.0, 3.0, 4.0)
    # A later edit of that id, undone past the add and redone, still finds it.
    p.update_annotation(new, bbox=(5, 5, 5, 5))
    p.undo()
    p.undo()
    p.redo()
    p.redo()
    assert _bbox(p, new) == (5.0, 5.0, 5.0, 5.0)


def test_redo_of_add_class_restores_the_same_id(project: Project) -> None:
    cid = project.add_class("a")
    project.undo()
    assert project.classes() == []
    project.redo()
    assert [(c.id, c.name) for c in project.classes()] == [(cid, "a")]


def test_new_edit_clears_redo_stack(one_box) -> None:
    p, aid = one_box
    p.update_annotation(aid, bbox=(11, 11, 20, 20))
    p.undo()
    assert p.undo_stack.can_redo
    p.update_annotation(aid, bbox=(30, 30, 20, 20))
    assert not p.undo_stack.can_redo
    assert p.redo() is None
    assert _bbox(p, aid) == (30.0, 30.0, 20.0, 20.0)


def test_failed_edit_changes_nothing(demo_project: Project, table_dump) -> None:
    p = demo_project
    p.set_status(p.image_ids()[:1], "in_progress")
    p.undo()
    before = _dump(p, table_dump)
    with pytest.raises(StudioError, match="merge instead"):
        p.rename_class(_ids(p)["tile"], "star")
    with pytest.raises(StudioError, match="no longer exist"):
        p.update_annotation(10**6, bbox=(1, 1, 1, 1))
    assert _dump(p, table_dump) == before
    # The redo stack survives a refused edit, and nothing was pushed.
    assert p.undo_stack.can_redo and not p.undo_stack.can_undo


def _class_used_by_an_import(p: Project) -> int:
    """Add class "x" (undoable), then import a shape of class "x" (not undoable)."""
    cid = p.add_class("x")
    img = p.images()[0]
    spec = DatasetSpec(
        classes=["x"],
        images=[ImageSpec(img.name, img.abs_path)],
        annotations=[AnnotationSpec(img.name, "x", "box", (5, 5, 5, 5))],
    )
    import_dataset(p, spec)
    return cid


def test_undo_of_add_class_in_use_is_refused(one_box, table_dump) -> None:
    p, _ = one_box
    cid = _class_used_by_an_import(p)
    before = _dump(p, table_dump)
    with pytest.raises(StudioError, match="has 1 shapes"):
        p.undo()
    assert _dump(p, table_dump) == before
    assert p.class_by_name("x").id == cid


def test_refused_undo_keeps_the_command(one_box) -> None:
    p, _ = one_box
    _class_used_by_an_import(p)
    with pytest.raises(StudioError):
        p.undo()
    assert p.undo_stack.undo_text == "add class x"
    assert p.undo_stack.can_undo


def test_undo_changed_event(project: Project) -> None:
    calls: list[tuple[bool, bool]] = []
    project.events.undo_changed.connect(
        lambda can_undo, can_redo: calls.append((can_undo, can_redo))
    )
    project.add_class("a")
    project.add_class("b")
    project.undo()
    project.undo()
    project.redo()
    project.undo_stack.clear()
    assert calls == [
        (True, False),
        (True, False),
        (True, True),
        (False, True),
        (True, True),
        (False, False),
    ]


def test_undo_emits_change_events_for_the_image(one_box) -> None:
    p, aid = one_box
    img = p.image_ids()[0]
    seen: list = []
    p.events.annotations_changed.connect(lambda ids: seen.append(ids))
    p.update_annotation(aid, bbox=(1, 1, 2, 2))
    p.undo()
    p.redo()
    assert seen == [[img], [img], [img]]


# --- writes that bypass the undo stack ------------------------------------------------------
# Imports are not undoable. Ids are never reused (AUTOINCREMENT), so commands on the stack
# that re-insert rows with their old ids still work after an import.


def test_redo_of_add_after_an_import(one_box) -> None:
    p, aid = one_box
    img = p.images()[0]
    added = p.add_annotation(img.id, p.classes()[0].id, "box", bbox=(1, 2, 3, 4))
    p.undo()
    spec = DatasetSpec(
        classes=["x"],
        images=[ImageSpec(img.name, img.abs_path)],
        annotations=[AnnotationSpec(img.name, "x", "box", (5, 5, 5, 5))],
    )
    import_dataset(p, spec)
    (imported,) = [a for a in p.annotations() if a.bbox == (5.0, 5.0, 5.0, 5.0)]
    assert imported.id != added
    assert p.redo() == "add shape"
    assert p.annotations(ids=[added])[0].bbox == (1.0, 2.0, 3.0, 4.0)
    assert p.annotations(ids=[imported.id])[0].bbox == (5.0, 5.0, 5.0, 5.0)
    assert sorted(a.id for a in p.annotations()) == sorted([aid, added, imported.id])


def test_undo_of_delete_images_after_an_import(
    demo_project: Project, make_jpeg, tmp_path: Path
) -> None:
    p = demo_project
    last = max(p.image_ids())
    n_ann = p.annotation_count()
    p.delete_images([last])
    new = make_jpeg(tmp_path / "extra" / "new.jpg", 30, 20, seed=99)
    report = import_images(p, [new])
    assert report.added_images == 1 and report.image_ids != [last]
    assert p.undo() == "delete image"
    assert p.image_count() == 26 - 1
    assert last in p.image_ids() and report.image_ids[0] in p.image_ids()
    assert p.annotation_count() == n_ann


def test_undo_of_the_first_assign_splits_then_import(project: Project, make_jpeg) -> None:
    import_images(project, [make_jpeg(project.path / "a.jpg", 9, 9, seed=1)])
    assert project.get_setting("split_fractions") is None
    assign_splits(project, val=0.5, test=0.0, seed=1)
    project.undo()
    report = import_images(project, [make_jpeg(project.path / "b.jpg", 9, 9, seed=2)])
    assert report.added_images == 1
    assert project.get_setting("split_fractions", "unset") in ("unset", {"val": 0.2, "test": 0.0})


@pytest.mark.parametrize("edit", ["delete images", "delete class", "merge classes"])
def test_undo_restores_predictions(demo_project: Project, table_dump, edit: str) -> None:
    p = demo_project
    with p.engine.begin() as conn:
        rid = conn.exec_driver_sql(
            "INSERT INTO runs (name, model, task, status, epoch, config, dir, created_at) "
            "VALUES ('r', 'm', 'detect', 'finished', 1, '{}', 'runs/r', 'x')"
        ).lastrowid
    p.replace_predictions(
        rid,
        [
            {"image_id": a.image_id, "class_id": a.class_id, "bbox": a.bbox, "score": 0.5}
            for a in p.annotations()
        ],
    )
    before = _dump(p, table_dump)
    EDITS[edit](p)
    p.undo()
    assert _dump(p, table_dump)["predictions"] == before["predictions"]


def test_a_withdrawn_gesture_leaves_no_trace_in_undo_or_redo(
    demo_project: Project, table_dump
) -> None:
    """Esc mid-drag withdraws the drag's step: the rows are as before, the drag is not
    offered for redo, and the step that could be redone before the drag still can."""
    p = demo_project
    box = _first_of_kind(p, "box")
    p.delete_annotations([box.id])
    p.undo()  # the delete can be redone
    before = _dump(p, table_dump)
    token = object()
    x, y, w, h = box.bbox
    for dx in (1, 2, 3):  # one drag, three writes, one step
        p.update_annotations({box.id: {"bbox": (x + dx, y, w, h)}}, gesture=token)
    p.undo_stack.withdraw()
    assert _dump(p, table_dump) == before
    assert p.undo_stack.redo_text == "delete shape"
    p.redo()
    assert p.annotations(ids=[box.id]) == []


def test_undoing_a_status_change_names_every_image_it_restored(demo_project: Project) -> None:
    """The event named only the last group of images put back (the loop reused `ids`)."""
    p = demo_project
    ids = [im.id for im in p.images()][:4]
    p.set_status(ids[:2], "new")
    p.set_status(ids[2:], "in_progress")
    p.set_status(ids, "done")
    told: list = []
    p.events.images_changed.connect(told.append)
    p.undo()
    assert sorted(told[-1]) == sorted(ids)

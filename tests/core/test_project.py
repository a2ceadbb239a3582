"""The Project API: opening, classes, images, info, snapshots, runs, settings, events."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from studio.core import db
from studio.core.errors import ProjectError, StudioError
from studio.core.importing import import_images
from studio.core.project import DB_NAME, PALETTE, Project, make_annotation_row

# --- opening and creating -------------------------------------------------------------------


def test_create_makes_folder_database_and_subfolders(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "a" / "b")
    try:
        assert p.path == (tmp_path / "a" / "b").resolve()
        assert (p.path / DB_NAME).is_file()
        assert (p.path / "runs").is_dir() and (p.path / "cache").is_dir()
        assert p.image_count() == 0 and p.classes() == [] and p.annotation_count() == 0
    finally:
        p.close()


def test_pragmas_wal_foreign_keys_busy_timeout(project: Project) -> None:
    # journal_mode=WAL is stored in the file: any connection sees it.
    raw = sqlite3.connect(project.db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    # foreign_keys and busy_timeout are per connection: check the engine's own.
    with project.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
        assert db.BUSY_TIMEOUT_MS >= 1000


def test_wal_lets_a_reader_run_beside_an_open_write(project: Project) -> None:
    project.set_setting("k", "old")
    other = Project.open(project.path)
    try:
        with project.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE settings SET value = '\"new\"' WHERE key = 'k'")
            # The writer has not committed: the other connection reads the old value
            # without waiting for the lock.
            assert other.get_setting("k") == "old"
        assert other.get_setting("k") == "new"
    finally:
        other.close()


def test_create_refuses_an_existing_project(project: Project) -> None:
    with pytest.raises(ProjectError, match="already exists") as e:
        Project.create(project.path)
    assert str(project.path) in str(e.value)


def test_create_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ProjectError, match="not a folder") as e:
        Project.create(f)
    assert str(f) in str(e.value)


def test_open_existing_project_and_its_database_file(project: Project) -> None:
    project.add_class("cat")
    for target in (project.path, project.path / DB_NAME):
        with Project.open(target) as p:
            assert p.path == project.path
            assert [c.name for c in p.classes()] == ["cat"]


def test_open_folder_without_project_raises_with_path(tmp_path: Path) -> None:
    folder = tmp_path / "not_a_project"
    folder.mkdir()
    with pytest.raises(ProjectError) as e:
        Project.open(folder)
    assert str(folder) in str(e.value)
    assert "not a Studio project" in str(e.value)
    # Opening must not turn the folder into a project.
    assert list(folder.iterdir()) == []


def test_open_missing_folder_raises_with_path(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as e:
        Project.open(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)


def test_open_non_database_file_raises_and_leaves_it_alone(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    content = b"this is a text file, not an SQLite database\n" * 50
    (folder / DB_NAME).write_bytes(content)
    with pytest.raises(ProjectError) as e:
        Project.open(folder)
    assert str(folder / DB_NAME) in str(e.value)
    assert "not a database" in str(e.value)
    assert (folder / DB_NAME).read_bytes() == content


def test_open_or_create(tmp_path: Path) -> None:
    with Project.open_or_create(tmp_path / "p") as p:
        p.add_class("dog")
    with Project.open_or_create(tmp_path / "p") as p:
        assert [c.name for c in p.classes()] == ["dog"]


# --- paths ----------------------------------------------------------------------------------


def test_stored_path_relative_inside_absolute_outside(project: Project, tmp_path: Path) -> None:
    inside = project.path / "images" / "sub" / "a.jpg"
    outside = tmp_path / "elsewhere" / "b.jpg"
    assert project.stored_path(inside) == "images/sub/a.jpg"
    assert project.stored_path(outside) == str(outside)
    assert project.abs_path("images/sub/a.jpg") == inside
    assert project.abs_path(str(outside)) == outside


# --- settings -------------------------------------------------------------------------------


def test_settings_get_set_roundtrip_json(project: Project, sql) -> None:
    assert project.get_setting("missing") is None
    assert project.get_setting("missing", {"d": 1}) == {"d": 1}
    value = {"val": 0.25, "names": ["a", "é"], "n": None, "flag": True}
    project.set_setting("train", value)
    assert project.get_setting("train") == value
    project.set_setting("train", [1, 2])
    assert project.get_setting("train") == [1, 2]
    # One row per key, stored as JSON text.
    rows = sql(project.db_path, "SELECT key, value FROM settings")
    assert rows == [("train", "[1, 2]")]
    with Project.open(project.path) as again:
        assert again.get_setting("train") == [1, 2]


# --- classes --------------------------------------------------------------------------------


def test_add_class_colours_positions_and_errors(project: Project, sql) -> None:
    a = project.add_class("cat")
    b = project.add_class("  dog  ")
    c = project.add_class("bird", "#123456")
    rows = sql(project.db_path, "SELECT id, name, color, position FROM label_classes ORDER BY id")
    assert rows == [(a, "cat", PALETTE[0], 1), (b, "dog", PALETTE[1], 2), (c, "bird", "#123456", 3)]
    assert [x.name for x in project.classes()] == ["cat", "dog", "bird"]
    assert project.class_by_name("dog").id == b
    assert project.class_by_name("nope") is None
    with pytest.raises(StudioError, match="exists already"):
        project.add_class("cat")
    with pytest.raises(StudioError, match="needs a name"):
        project.add_class("   ")
    assert len(sql(project.db_path, "SELECT * FROM label_classes")) == 3


def test_rename_recolour_reorder(project: Project, sql) -> None:
    a, b, c = (project.add_class(n) for n in ("a", "b", "c"))
    project.rename_class(a, "alpha")
    project.recolor_class(b, "#abcdef")
    assert sql(
        project.db_path,
        "SELECT name, color FROM label_classes WHERE id IN (?, ?) ORDER BY id",
        (a, b),
    ) == [
        ("alpha", PALETTE[0]),
        ("b", "#abcdef"),
    ]
    with pytest.raises(StudioError, match="merge instead"):
        project.rename_class(b, "alpha")
    with pytest.raises(StudioError, match="does not exist"):
        project.rename_class(9999, "zzz")
    project.reorder_classes([c, a, b])
    assert [x.id for x in project.classes()] == [c, a, b]
    assert sql(project.db_path, "SELECT id FROM label_classes ORDER BY position") == [
        (c,),
        (a,),
        (b,),
    ]
    with pytest.raises(StudioError, match="every class exactly once"):
        project.reorder_classes([c, a])
    assert [x.id for x in project.classes()] == [c, a, b]


def test_merge_classes_moves_rows_and_returns_count(demo_project: Project, sql) -> None:
    p = demo_project
    ids = {c.name: c.id for c in p.classes()}
    before = dict(sql(p.db_path, "SELECT class_id, COUNT(*) FROM annotations GROUP BY class_id"))
    moved = before[ids["tile"]] + before[ids["star"]]
    changed = p.merge_classes([ids["tile"], ids["star"], ids["ball"]], ids["ball"])
    assert changed == moved
    after = dict(sql(p.db_path, "SELECT class_id, COUNT(*) FROM annotations GROUP BY class_id"))
    assert after == {
        ids["ball"]: before[ids["ball"]] + moved,
        ids["triangle"]: before[ids["triangle"]],
    }
    names = [r[0] for r in sql(p.db_path, "SELECT name FROM label_classes ORDER BY position")]
    assert names == ["ball", "triangle"]
    with pytest.raises(StudioError, match="does not exist"):
        p.merge_classes([ids["triangle"]], 9999)


def test_delete_class_removes_its_annotations(demo_project: Project, sql) -> None:
    p = demo_project
    tri = p.class_by_name("triangle").id
    n_tri = sql(p.db_path, "SELECT COUNT(*) FROM annotations WHERE class_id = ?", (tri,))[0][0]
    total = p.annotation_count()
    assert n_tri > 0
    assert p.delete_class(tri) == n_tri
    assert sql(p.db_path, "SELECT COUNT(*) FROM annotations WHERE class_id = ?", (tri,)) == [(0,)]
    assert p.annotation_count() == total - n_tri
    assert p.class_by_name("triangle") is None
    assert tri not in p.class_counts()


def test_class_counts_match_sql(demo_project: Project, sql) -> None:
    expected = dict(
        sql(demo_project.db_path, "SELECT class_id, COUNT(*) FROM annotations GROUP BY class_id")
    )
    assert demo_project.class_counts() == expected


# --- images ---------------------------------------------------------------------------------


def test_set_status_and_split(demo_project: Project, sql) -> None:
    p = demo_project
    ids = p.image_ids()[:3]
    p.set_status(ids, "needs_review")
    p.set_split(ids[:2], "test")
    rows = dict(
        (r[0], r[1:])
        for r in sql(
            p.db_path, "SELECT id, status, split FROM images WHERE id IN (?, ?, ?)", tuple(ids)
        )
    )
    assert rows[ids[0]] == ("needs_review", "test")
    assert rows[ids[1]] == ("needs_review", "test")
    assert rows[ids[2]][0] == "needs_review"
    assert [im.id for im in p.images(status="needs_review")] == sorted(
        ids, key=lambda i: p.image(i).path
    )
    assert {im.id for im in p.images(split="test")} == set(ids[:2])
    with pytest.raises(StudioError, match="unknown status"):
        p.set_status(ids, "finished")
    with pytest.raises(StudioError, match="unknown split"):
        p.set_split(ids, "holdout")
    assert sql(
        p.db_path, "SELECT COUNT(*) FROM images WHERE split NOT IN ('train','val','test')"
    ) == [(0,)]


def test_delete_images_cascades_annotations_keeps_files(demo_project: Project, sql) -> None:
    p = demo_project
    victims = p.images()[:4]
    ids = [im.id for im in victims]
    n_their = sql(
        p.db_path, "SELECT COUNT(*) FROM annotations WHERE image_id IN (?, ?, ?, ?)", tuple(ids)
    )[0][0]
    total = p.annotation_count()
    assert n_their > 0
    p.delete_images(ids)
    assert sql(p.db_path, "SELECT COUNT(*) FROM images WHERE id IN (?, ?, ?, ?)", tuple(ids)) == [
        (0,)
    ]
    assert sql(
        p.db_path, "SELECT COUNT(*) FROM annotations WHERE image_id IN (?, ?, ?, ?)", tuple(ids)
    ) == [(0,)]
    assert p.annotation_count() == total - n_their
    assert p.image_count() == 20
    assert all(im.abs_path.is_file() for im in victims)
    with pytest.raises(StudioError, match="not in the project"):
        p.image(ids[0])


def test_images_filters_and_records(demo_project: Project, sql) -> None:
    p = demo_project
    rows = sql(
        p.db_path,
        "SELECT id, path, width, height, orientation, status, split FROM images ORDER BY path",
    )
    recs = p.images()
    assert [
        (r.id, r.path, r.width, r.height, r.orientation, r.status, r.split) for r in recs
    ] == rows
    assert all(r.abs_path == p.path / r.path and r.abs_path.is_file() for r in recs)
    some = [rows[3][0], rows[7][0]]
    assert [r.id for r in p.images(ids=some)] == some
    assert p.image_ids() == [r[0] for r in rows]


# --- annotations ----------------------------------------------------------------------------


def test_add_and_update_annotations_store_pixels(project: Project, make_jpeg, sql) -> None:
    make_jpeg(project.path / "images" / "a.jpg", 64, 48)
    import_images(project, [project.path / "images"])
    (img,) = project.images()
    cls = project.add_class("thing")
    box = project.add_annotation(img.id, cls, "box", bbox=(1.5, 2.25, 10, 20))
    poly = project.add_annotation(
        img.id, cls, "polygon", polygons=[[10, 10, 30, 12, 20, 40]], bbox=(0, 0, 1, 1)
    )
    rows = sql(
        project.db_path,
        "SELECT id, kind, x, y, w, h, polygons, source FROM annotations ORDER BY id",
    )
    assert rows[0] == (box, "box", 1.5, 2.25, 10.0, 20.0, None, "manual")
    # A polygon's box is derived from its points, whatever box was passed.
    assert rows[1][:6] == (poly, "polygon", 10.0, 10.0, 20.0, 30.0)
    assert json.loads(rows[1][6]) == [[10.0, 10.0, 30.0, 12.0, 20.0, 40.0]]
    project.update_annotation(box, bbox=(3, 4, 5, 6))
    project.update_annotation(poly, polygons=[[0, 0, 8, 0, 8, 9, 0, 9]])
    rows = sql(project.db_path, "SELECT x, y, w, h FROM annotations ORDER BY id")
    assert rows == [(3.0, 4.0, 5.0, 6.0), (0.0, 0.0, 8.0, 9.0)]
    with pytest.raises(StudioError, match="zero or negative size"):
        project.update_annotation(box, bbox=(0, 0, 0, 5))
    with pytest.raises(StudioError, match="at least 3 points"):
        project.update_annotation(poly, polygons=[[0, 0, 1, 1]])
    with pytest.raises(StudioError, match="no longer exist"):
        project.update_annotation(99999, bbox=(1, 1, 1, 1))
    project.delete_annotations([box])
    assert [a.id for a in project.annotations()] == [poly]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "circle", "bbox": (0, 0, 1, 1)}, "unknown shape kind"),
        ({"kind": "box"}, "needs x, y, w, h"),
        ({"kind": "box", "bbox": (0, 0, -1, 1)}, "zero or negative size"),
        ({"kind": "box", "bbox": (0, float("nan"), 1, 1)}, "non-finite"),
        ({"kind": "box", "bbox": (0, 0, 1)}, "needs 4 numbers"),
        ({"kind": "polygon"}, "needs points"),
        ({"kind": "polygon", "polygons": [[0, 0, 1, 1, 2]]}, "at least 3 points"),
        ({"kind": "polygon", "polygons": []}, "at least one part"),
        ({"kind": "mask", "bbox": (0, 0, 1, 1)}, "needs its RLE"),
        ({"kind": "box", "bbox": (0, 0, 1, 1), "source": "guessed"}, "unknown source"),
    ],
)
def test_make_annotation_row_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(StudioError, match=message):
        make_annotation_row(1, 1, **kwargs)


# --- info and snapshot ----------------------------------------------------------------------


def test_info_matches_sql(demo_project: Project, sql) -> None:
    p = demo_project
    db_path = p.db_path
    info = p.info()
    assert info["project"] == str(p.path)
    assert info["images"] == sql(db_path, "SELECT COUNT(*) FROM images")[0][0] == 24
    assert info["annotations"] == sql(db_path, "SELECT COUNT(*) FROM annotations")[0][0]
    assert (
        info["labelled_images"]
        == sql(db_path, "SELECT COUNT(DISTINCT image_id) FROM annotations")[0][0]
    )
    per_class = dict(
        sql(
            db_path,
            "SELECT c.name, COUNT(a.id) FROM label_classes c LEFT JOIN annotations a "
            "ON a.class_id = c.id GROUP BY c.id ORDER BY c.position",
        )
    )
    assert info["classes"] == per_class
    assert list(info["classes"]) == ["ball", "tile", "triangle", "star"]
    kinds = dict(sql(db_path, "SELECT kind, COUNT(*) FROM annotations GROUP BY kind"))
    assert info["kinds"] == {
        "box": kinds.get("box", 0),
        "polygon": kinds.get("polygon", 0),
        "mask": 0,
    }
    assert info["kinds"]["box"] > 0 and info["kinds"]["polygon"] > 0
    splits = dict(sql(db_path, "SELECT split, COUNT(*) FROM images GROUP BY split"))
    assert info["splits"] == {s: splits.get(s, 0) for s in ("train", "val", "test")}
    statuses = dict(sql(db_path, "SELECT status, COUNT(*) FROM images GROUP BY status"))
    assert info["statuses"] == {
        s: statuses.get(s, 0) for s in ("new", "in_progress", "done", "needs_review")
    }
    assert info["statuses"]["done"] == 24
    assert info["runs"] == 0


def test_info_counts_empty_classes(project: Project) -> None:
    project.add_class("lonely")
    assert project.info()["classes"] == {"lonely": 0}


def test_snapshot_filters_by_split(demo_project: Project, sql) -> None:
    p = demo_project
    full = p.snapshot()
    assert len(full.images) == 24 and len(full.annotations) == p.annotation_count()
    assert [c.name for c in full.classes] == ["ball", "tile", "triangle", "star"]
    for split in ("train", "val", "test"):
        snap = p.snapshot(split=split)
        ids = {r[0] for r in sql(p.db_path, "SELECT id FROM images WHERE split = ?", (split,))}
        assert {im.id for im in snap.images} == ids
        assert all(im.split == split for im in snap.images)
        n_ann = sql(
            p.db_path,
            "SELECT COUNT(*) FROM annotations a JOIN images i ON i.id = a.image_id WHERE i.split = ?",
            (split,),
        )[0][0]
        assert len(snap.annotations) == n_ann
        assert {a.image_id for a in snap.annotations} <= ids
        assert snap.classes == full.classes
    assert len(p.snapshot("val").images) > 0


# --- runs ---------------------------------------------------------------------------------


def test_create_run_makes_folder_and_returns_record(demo_project: Project, sql) -> None:
    p = demo_project
    run = p.create_run("first try/with slash", "fasterrcnn", "detect", {"epochs": 3})
    assert run.dir.is_dir()
    assert run.dir.parent == p.runs_dir
    assert run.dir.name == f"{run.id:04d}-first_try_with_slash"
    assert (run.name, run.model, run.task) == ("first try/with slash", "fasterrcnn", "detect")
    assert (run.status, run.epoch, run.config, run.finished_at) == (
        "queued",
        0,
        {"epochs": 3},
        None,
    )
    assert sql(p.db_path, "SELECT dir FROM runs WHERE id = ?", (run.id,)) == [
        (f"runs/{run.dir.name}",)
    ]
    assert [r.id for r in p.runs()] == [run.id]


def test_runs_update_metrics_predictions_delete(demo_project: Project, sql) -> None:
    p = demo_project
    rid = p.create_run("first", "fasterrcnn", "detect", {}).id
    run = p.run(rid)
    assert run.dir == p.runs_dir / f"{rid:04d}-first" and run.dir.is_dir()
    assert (run.status, run.epoch, run.config, run.finished_at) == ("queued", 0, {}, None)

    p.update_run(rid, status="running", epoch=2, best_metric=0.5, best_metric_name="mAP")
    r = p.run(rid)
    assert (r.status, r.epoch, r.best_metric, r.best_metric_name, r.finished_at) == (
        "running", 2, 0.5, "mAP", None,
    )  # fmt: skip
    p.update_run(rid, status="finished", config={"epochs": 4}, error="none")
    r = p.run(rid)
    assert r.status == "finished" and r.finished_at is not None
    assert r.config == {"epochs": 4} and r.error == "none" and r.epoch == 2

    p.add_metrics(rid, [("iter", 1, 0, "loss", 2.0), ("epoch", 1, 1, "mAP", 0.4)])
    p.add_metrics(rid, [("iter", 2, 0, "loss", 1.5)])
    p.add_metrics(rid, [])
    assert p.metrics(rid) == [
        ("iter", 1, 0, "loss", 2.0), ("epoch", 1, 1, "mAP", 0.4), ("iter", 2, 0, "loss", 1.5),
    ]  # fmt: skip
    assert p.metrics(rid, kind="iter") == [("iter", 1, 0, "loss", 2.0), ("iter", 2, 0, "loss", 1.5)]

    img, img2 = p.image_ids()[:2]
    cls = p.classes()[0].id
    n = p.replace_predictions(
        rid,
        [
            {"image_id": img, "class_id": cls, "bbox": (1, 2, 3, 4), "score": 0.9},
            {"image_id": img, "class_id": cls, "kind": "polygon", "bbox": (0, 0, 2, 2),
             "polygons": [[0, 0, 2, 0, 2, 2]], "score": 0.4},
            {"image_id": img2, "class_id": cls, "bbox": (7, 7, 1, 1), "score": 0.3},
        ],
    )  # fmt: skip
    assert n == 3
    preds = p.predictions(rid, image_ids=[img])
    assert [(x["kind"], x["bbox"], x["score"]) for x in preds] == [
        ("box", (1.0, 2.0, 3.0, 4.0), 0.9), ("polygon", (0.0, 0.0, 2.0, 2.0), 0.4),
    ]  # fmt: skip
    assert preds[1]["polygons"] == [[0, 0, 2, 0, 2, 2]] and preds[0]["polygons"] is None
    assert [x["image_id"] for x in p.predictions(rid)] == [img, img, img2]
    new = [{"image_id": img, "class_id": cls, "bbox": (5, 5, 1, 1), "score": 0.1}]
    assert p.replace_predictions(rid, new) == 1
    assert [x["bbox"] for x in p.predictions(rid)] == [(5.0, 5.0, 1.0, 1.0)]

    p.set_current_model(rid)
    assert p.current_model() == rid
    other = p.create_run("second", "yolo", "detect", {}).id
    assert [x.id for x in p.runs()] == [rid, other]
    assert p.info()["runs"] == 2

    p.delete_run(rid)
    assert not (p.runs_dir / f"{rid:04d}-first").exists()
    assert (p.runs_dir / f"{other:04d}-second").is_dir()
    assert [x.id for x in p.runs()] == [other]
    # Metrics and predictions go with the run (foreign keys are on).
    assert sql(p.db_path, "SELECT COUNT(*) FROM metrics") == [(0,)]
    assert sql(p.db_path, "SELECT COUNT(*) FROM predictions") == [(0,)]
    assert p.current_model() is None
    with pytest.raises(StudioError, match="does not exist"):
        p.run(rid)


# --- events ---------------------------------------------------------------------------------


def test_events_fire_with_image_ids(demo_project: Project) -> None:
    p = demo_project
    images_calls: list = []
    ann_calls: list = []
    class_calls: list = []
    run_calls: list = []
    p.events.images_changed.connect(lambda ids: images_calls.append(ids))
    p.events.annotations_changed.connect(lambda ids: ann_calls.append(ids))
    p.events.classes_changed.connect(lambda: class_calls.append(True))
    p.events.runs_changed.connect(lambda rid: run_calls.append(rid))

    ids = p.image_ids()[2:5]
    p.set_status(ids, "in_progress")
    assert images_calls == [ids]
    p.set_split(ids[:1], "test")
    assert images_calls[-1] == ids[:1]

    cls = p.classes()[0].id
    aid = p.add_annotation(ids[1], cls, "box", bbox=(1, 1, 4, 4))
    assert ann_calls == [[ids[1]]]
    p.update_annotation(aid, bbox=(2, 2, 4, 4))
    assert ann_calls[-1] == [ids[1]]
    p.delete_annotations([aid])
    assert ann_calls[-1] == [ids[1]]

    p.add_class("new")
    assert class_calls == [True]

    p.delete_images(ids[2:])
    assert images_calls[-1] == ids[2:]

    rid = p.create_run("r", "m", "detect", {}).id
    assert run_calls == [None]
    p.update_run(rid, epoch=1)
    assert run_calls == [None, rid]
    p.add_metrics(rid, [("iter", 1, 0, "loss", 1.0)])
    assert run_calls == [None, rid, rid]
    p.delete_run(rid)
    assert run_calls[-1] is None


def test_dataset_snapshot_carries_split_and_status(demo_project: Project, tmp_path: Path) -> None:
    """The run's dataset.json has one writer: it holds what training reads per image."""
    p = demo_project
    first = p.images()[0]
    p.set_status([first.id], "needs_review")
    out = tmp_path / "dataset.json"
    data = p.write_coco_snapshot(out)
    assert json.loads(out.read_text(encoding="utf-8")) == data
    by_id = {im.id: im for im in p.images()}
    assert len(data["images"]) == len(by_id)
    for im in data["images"]:
        assert im["studio_split"] == by_id[im["id"]].split
        assert im["studio_status"] == by_id[im["id"]].status
        # As stored: relative to the project folder, which the snapshot names.
        assert Path(data["studio_root"]) / im["file_name"] == by_id[im["id"]].abs_path
    assert not list(tmp_path.glob("*.tmp"))


def test_undo_commands_work_on_the_store_without_the_facade(project: Project) -> None:
    """Commands take the repositories, not `Project`: a stack over a bare Store works."""
    from studio.core.undo.commands import AddClass
    from studio.core.undo.stack import UndoStack

    stack = UndoStack(project.store)
    cmd = AddClass("cat", None)
    stack.push(cmd)
    assert [c.name for c in project.store.classes.list()] == ["cat"]
    assert stack.undo() == "add class cat"
    assert project.classes() == []
    stack.redo()
    assert project.classes()[0].id == cmd.class_id

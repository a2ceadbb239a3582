"""studio.core.browse: listings, sort orders and facet counts, checked against direct SQL
(sqlite3 on the project file) and a brute-force reading of the same rows."""

from __future__ import annotations

import itertools
import random
import sqlite3
import time

import pytest
from sqlalchemy import insert

from studio.core import browse
from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.project import Project

STATUSES = ("new", "in_progress", "done", "needs_review")
SPLITS = ("train", "val", "test")


def _fill(project: Project, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    cids = [project.add_class(name) for name in ("cat", "dog", "bird", "unused")]
    images, anns = [], []
    for i in range(1, n + 1):
        images.append(
            {
                "id": i,
                # a name order that differs from id order
                "path": f"set{i % 3}/IMG_{(i * 7919) % 1000:04d}_{i}.jpg",
                "width": 100,
                "height": 80,
                "orientation": 1,
                "checksum": f"{i:032x}",
                "file_size": 1,
                "status": rng.choice(STATUSES),
                "split": rng.choice(SPLITS),
                "created_at": f"2026-01-{1 + (n - i) // 10:02d}T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
            }
        )
        for _ in range(rng.choice((0, 0, 1, 2, 3, 5))):
            anns.append(
                {
                    "image_id": i,
                    "class_id": rng.choice(cids[:3]),
                    "kind": "box",
                    "x": 0.0,
                    "y": 0.0,
                    "w": 5.0,
                    "h": 5.0,
                    "iscrowd": False,
                    "source": rng.choice(("manual", "imported", "predicted")),
                    "created_at": "x",
                    "updated_at": "x",
                }
            )
    with project.engine.begin() as conn:
        conn.execute(insert(S.Image), images)
        conn.execute(insert(S.Annotation), anns)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = Project.create(tmp_path_factory.mktemp("browse") / "proj")
    _fill(p, 300)
    yield p
    p.close()


@pytest.fixture(scope="module")
def db(project):
    conn = sqlite3.connect(project.db_path)
    yield conn
    conn.close()


def _sql_ids(db, where: str = "1", params=()) -> set[int]:
    return {r[0] for r in db.execute(f"SELECT id FROM images WHERE {where}", params)}


def _sql_count(db, where: str = "1", params=()) -> int:
    return db.execute(f"SELECT COUNT(*) FROM images WHERE {where}", params).fetchone()[0]


def test_no_filter_lists_every_image_by_path(project, db):
    ids = browse.query_images(project)
    expected = [r[0] for r in db.execute("SELECT id FROM images ORDER BY path")]
    assert ids == expected
    assert browse.query_images(project, descending=True) == expected[::-1]


def test_filters_match_direct_sql(project, db):
    cat = project.class_by_name("cat").id
    dog = project.class_by_name("dog").id
    has = "id IN (SELECT image_id FROM annotations WHERE class_id IN ({}))"
    cases = [
        ({"status": "done"}, "status = 'done'"),
        ({"status": ["new", "done"]}, "status IN ('new', 'done')"),
        ({"split": "val"}, "split = 'val'"),
        ({"classes": [cat]}, has.format(cat)),
        ({"classes": [cat, dog]}, has.format(f"{cat}, {dog}")),
        ({"classes": []}, "0"),
        ({"source": "unlabelled"}, "id NOT IN (SELECT image_id FROM annotations)"),
        (
            {"source": "manual"},
            "id IN (SELECT image_id FROM annotations WHERE source IN ('manual', 'imported'))",
        ),
        (
            {"source": "predicted"},
            "id IN (SELECT image_id FROM annotations WHERE source = 'predicted')",
        ),
        ({"text": "img_00"}, "path LIKE '%img_00%'"),
        ({"text": "SET1/"}, "path LIKE '%set1/%'"),
        (
            {"classes": [dog], "status": "new", "split": "train", "text": "set2"},
            has.format(dog) + " AND status = 'new' AND split = 'train' AND path LIKE '%set2%'",
        ),
    ]
    for filters, where in cases:
        got = browse.query_images(project, **filters)
        assert len(got) == len(set(got)), filters
        assert set(got) == _sql_ids(db, where), filters
        assert browse.filter_counts(project, **filters)["total"] == _sql_count(db, where)


def test_text_filter_treats_wildcards_literally(project):
    assert browse.query_images(project, text="%") == []
    assert browse.query_images(project, text="_") != []  # every path has an underscore
    assert browse.query_images(project, text="IMG?") == []


def test_sort_orders(project, db):
    by_date = browse.query_images(project, sort="date")
    expected = [r[0] for r in db.execute("SELECT id FROM images ORDER BY created_at, id")]
    assert by_date == expected
    assert browse.query_images(project, sort="date", descending=True) == expected[::-1]

    by_objects = browse.query_images(project, sort="objects")
    expected = [
        r[0]
        for r in db.execute(
            "SELECT id FROM images ORDER BY "
            "(SELECT COUNT(*) FROM annotations a WHERE a.image_id = images.id), path"
        )
    ]
    assert by_objects == expected
    filtered = browse.query_images(project, sort="objects", status="done", descending=True)
    assert filtered == [i for i in expected[::-1] if i in _sql_ids(db, "status = 'done'")]
    with pytest.raises(StudioError, match="unknown sort"):
        browse.query_images(project, sort="size")


def test_unknown_filter_values_are_errors(project):
    with pytest.raises(StudioError, match="unknown status"):
        browse.query_images(project, status="finished")
    with pytest.raises(StudioError, match="unknown split"):
        browse.filter_counts(project, split="training")
    with pytest.raises(StudioError, match="unknown source"):
        browse.query_images(project, source="robot")


def test_facet_counts_leave_their_own_filter_out(project, db):
    cat = project.class_by_name("cat").id
    filters = {"classes": [cat], "status": "done", "split": "train"}
    counts = browse.filter_counts(project, **filters)
    has_cat = f"id IN (SELECT image_id FROM annotations WHERE class_id = {cat})"
    for s in STATUSES:  # status facet: classes and split applied, status not
        assert counts["status"][s] == _sql_count(
            db, f"{has_cat} AND split = 'train' AND status = ?", (s,)
        )
    for s in SPLITS:
        assert counts["split"][s] == _sql_count(
            db, f"{has_cat} AND status = 'done' AND split = ?", (s,)
        )
    for c in project.classes():
        assert counts["classes"][c.id] == _sql_count(
            db,
            "status = 'done' AND split = 'train' AND "
            "id IN (SELECT image_id FROM annotations WHERE class_id = ?)",
            (c.id,),
        )
    assert counts["classes"][project.class_by_name("unused").id] == 0
    base = f"{has_cat} AND status = 'done' AND split = 'train'"
    assert counts["source"]["unlabelled"] == 0  # every image here has a cat
    assert counts["source"]["manual"] == _sql_count(
        db,
        base + " AND id IN (SELECT image_id FROM annotations WHERE source != 'predicted')",
    )


def test_unfiltered_counts_add_up(project, db):
    counts = browse.filter_counts(project)
    n = _sql_count(db)
    assert counts["total"] == n
    assert sum(counts["status"].values()) == n
    assert sum(counts["split"].values()) == n
    labelled = db.execute("SELECT COUNT(DISTINCT image_id) FROM annotations").fetchone()[0]
    assert counts["source"]["unlabelled"] == n - labelled
    for c in project.classes():
        assert (
            counts["classes"][c.id]
            == db.execute(
                "SELECT COUNT(DISTINCT image_id) FROM annotations WHERE class_id = ?", (c.id,)
            ).fetchone()[0]
        )
    # every combination of single options agrees with query_images
    for st, sp in itertools.product(STATUSES, SPLITS):
        c = browse.filter_counts(project, status=st, split=sp)
        assert c["total"] == len(browse.query_images(project, status=st, split=sp))


def test_predictions_of_the_current_model_count_as_predicted(tmp_path):
    p = Project.create(tmp_path / "p")
    _fill(p, 20, seed=3)
    unlabelled = browse.query_images(p, source="unlabelled")
    assert unlabelled
    # A run row inserted directly: Project.create_run is not what this test is about.
    with p.engine.begin() as conn:
        run_id = conn.execute(
            insert(S.Run).values(name="r", model="m", task="detect", dir="runs/r")
        ).inserted_primary_key[0]
    target = unlabelled[0]
    cid = p.classes()[0].id
    p.replace_predictions(
        run_id, [{"image_id": target, "class_id": cid, "bbox": (0, 0, 1, 1), "score": 0.9}]
    )
    assert target not in browse.query_images(p, source="predicted")
    before = browse.filter_counts(p)["source"]["predicted"]
    p.set_current_model(run_id)
    assert target in browse.query_images(p, source="predicted")
    assert browse.filter_counts(p)["source"]["predicted"] == before + 1
    p.close()


def test_image_rows_and_next_unlabelled(project, db):
    ids = browse.query_images(project)
    rows = browse.image_rows(project, ids[:50])
    assert set(rows) == set(ids[:50])
    for i, row in rows.items():
        n = db.execute("SELECT COUNT(*) FROM annotations WHERE image_id = ?", (i,)).fetchone()[0]
        path, status = db.execute("SELECT path, status FROM images WHERE id = ?", (i,)).fetchone()
        assert (row.n_objects, row.path, row.status) == (n, path, status)
        assert row.abs_path == project.path / path
    assert browse.image_rows(project, []) == {}

    empty_new = _sql_ids(db, "status = 'new' AND id NOT IN (SELECT image_id FROM annotations)")
    current = ids[10]
    nxt = browse.next_unlabelled(project, ids, current)
    assert nxt in empty_new
    walk = ids[11:] + ids[:11]
    assert nxt == next(i for i in walk if i in empty_new)
    # with no empty "new" image left, the next "new" one
    order = [i for i in ids if i not in empty_new]
    new = _sql_ids(db, "status = 'new'")
    assert browse.next_unlabelled(project, order, order[0]) == next(
        i for i in order[1:] if i in new
    )
    assert browse.next_unlabelled(project, [], None) is None
    assert browse.done_count(project) == (_sql_count(db, "status = 'done'"), len(ids))


@pytest.mark.slow
def test_fast_at_100k_images(tmp_path):
    p = Project.create(tmp_path / "big")
    _fill(p, 100_000, seed=5)
    browse.query_images(p)  # warm the page cache
    for kwargs in ({}, {"status": "done"}, {"classes": [1]}, {"sort": "date"}, {"text": "_9"}):
        t = time.perf_counter()
        browse.query_images(p, **kwargs)
        # the brief's aim is 150 ms; allow for a loaded CI machine
        assert time.perf_counter() - t < 0.6, kwargs
    p.close()

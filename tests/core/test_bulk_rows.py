"""Writing many shapes at once (a drag, nudge, paste or undone delete of thousands): one
executemany per set of columns, with the same rows as one statement per shape gave."""

from __future__ import annotations

import json

from studio.core.demo import create_demo_project


def test_insert_update_and_reinsert_many_rows(tmp_path):
    with create_demo_project(tmp_path / "p", n_images=2, seed=0, image_size=(160, 120)) as p:
        im = p.images()[0].id
        cid = p.classes()[0].id
        repo = p.store.annotations
        rows = [dict(image_id=im, class_id=cid, kind="box", x=float(i), y=1.0, w=5.0, h=5.0)
                for i in range(40)]  # fmt: skip
        rows[7] = {**rows[7], "score": 0.5, "source": "predicted"}  # another column set
        ids = repo.insert_rows(rows)
        got = {a.id: a for a in p.annotations(ids=ids)}
        # Ids come back in the rows' order, whichever statement inserted each.
        assert [got[i].bbox[0] for i in ids] == [float(i) for i in range(40)]
        assert got[ids[7]].score == 0.5 and got[ids[7]].source == "predicted"

        repo.update_rows({ids[0]: {"area": 99.0}})
        poly = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]
        changes = {i: {"x": 3.0, "y": 4.0} for i in ids[:30]}
        changes[ids[0]] = {"kind": "polygon", "polygons": json.dumps(poly), "x": 1.0, "y": 1.0, "w": 8.0,
                           "h": 8.0}  # fmt: skip
        changes[ids[1]] = {"notes": "checked", "difficult": True}
        seen = []
        p.events.annotations_changed.connect(seen.append)
        repo.update_rows(changes)
        got = {a.id: a for a in p.annotations(ids=ids)}
        assert got[ids[0]].polygons == poly and got[ids[0]].kind == "polygon"
        assert got[ids[0]].area is None  # new geometry: the imported area no longer holds
        assert got[ids[1]].attributes.notes == "checked" and got[ids[1]].attributes.difficult
        assert got[ids[1]].bbox == (1.0, 1.0, 5.0, 5.0)  # only what changed
        assert all(got[i].bbox[:2] == (3.0, 4.0) for i in ids[2:30])
        assert got[ids[35]].bbox[:2] == (35.0, 1.0)
        assert seen == [[im]]

        full = repo.delete_rows(ids)
        assert p.annotations(ids=ids) == []
        assert repo.insert_rows(full) == [r["id"] for r in full]  # undo keeps the ids
        again = {a.id: a for a in p.annotations(ids=ids)}
        assert again == got


def test_inserts_without_returning_as_sqlite_before_3_35(tmp_path, monkeypatch):
    """Debian 11 and RHEL 9 ship SQLite 3.34, which has no INSERT ... RETURNING: a paste
    of several shapes failed there."""
    with create_demo_project(tmp_path / "p", n_images=1, seed=0, image_size=(160, 120)) as p:
        dialect = p.store.annotations.engine.dialect
        monkeypatch.setattr(dialect, "insert_executemany_returning", False)
        monkeypatch.setattr(dialect, "insert_executemany_returning_sort_by_parameter_order", False)
        im, cid = p.images()[0].id, p.classes()[0].id
        rows = [dict(image_id=im, class_id=cid, kind="box", x=float(i), y=1.0, w=5.0, h=5.0,
                     id=None if i == 2 else ...) for i in range(4)]  # fmt: skip
        rows = [{k: v for k, v in r.items() if v is not ...} for r in rows]
        ids = p.store.annotations.insert_rows(rows)
        assert None not in ids and len(set(ids)) == 4
        got = {a.id: a.bbox[0] for a in p.annotations(ids=ids)}
        assert [got[i] for i in ids] == [0.0, 1.0, 2.0, 3.0]

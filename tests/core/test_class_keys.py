"""Class keys stay with their class; 80 classes get 80 distinguishable colours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from studio.core.db import create_db_engine, migrate
from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.store.palette import BASE, _hex_to_rgb, _srgb_to_lab, palette
from studio.core.undo.commands import SetClassHotkey


def keys_by_name(project: Project) -> dict[str, int]:
    keys = project.store.classes.hotkeys()
    return {c.name: keys[c.id] for c in project.classes() if c.id in keys}


def test_new_classes_take_keys_1_to_9_in_order_of_creation(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p")
    names = [f"c{i}" for i in range(11)]
    p.add_class(names[0])
    p.ensure_classes(names[1:])
    assert keys_by_name(p) == {f"c{i}": i + 1 for i in range(9)}  # c9, c10: no key


def test_merge_and_delete_leave_the_other_keys_alone(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p")
    ids = p.ensure_classes(["cat", "dog", "bird", "fish"])
    p.merge_classes([ids["dog"]], ids["fish"])
    p.delete_class(ids["cat"])
    assert keys_by_name(p) == {"bird": 3, "fish": 4}
    # The freed keys go to the next new classes, lowest first.
    p.add_class("owl")
    p.add_class("ant")
    assert keys_by_name(p) == {"owl": 1, "ant": 2, "bird": 3, "fish": 4}
    p.undo()  # ant
    p.undo()  # owl
    p.undo()  # the delete: cat is back with its key
    p.undo()  # the merge: dog too
    assert keys_by_name(p) == {"cat": 1, "dog": 2, "bird": 3, "fish": 4}


def test_reorder_does_not_renumber(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p")
    ids = p.ensure_classes(["a", "b", "c"])
    p.reorder_classes([ids["c"], ids["a"], ids["b"]])
    assert keys_by_name(p) == {"a": 1, "b": 2, "c": 3}


def test_setting_a_taken_key_swaps_and_undoes(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p")
    ids = p.ensure_classes(["a", "b", "c"])
    p.execute(SetClassHotkey(ids["c"], 1))
    assert keys_by_name(p) == {"c": 1, "b": 2, "a": 3}
    p.execute(SetClassHotkey(ids["b"], None))
    assert keys_by_name(p) == {"c": 1, "a": 3}
    p.undo()
    p.undo()
    assert keys_by_name(p) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(StudioError, match="1-9"):
        p.execute(SetClassHotkey(ids["a"], 10))
    assert keys_by_name(p) == {"a": 1, "b": 2, "c": 3}


def test_redo_of_an_added_class_brings_its_key_back(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p")
    p.ensure_classes(["a", "b"])
    cid = p.add_class("c")
    p.execute(SetClassHotkey(cid, 7))
    p.undo()
    p.undo()
    p.redo()
    p.redo()
    assert keys_by_name(p) == {"a": 1, "b": 2, "c": 7}


def test_migration_gives_existing_classes_their_list_order_keys(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = create_db_engine(db)
    migrate(engine, "0003")
    with sqlite3.connect(db) as conn:
        for i, name in enumerate(["z", "y", "x"] + [f"n{i}" for i in range(8)]):
            conn.execute(
                "INSERT INTO label_classes (name, color, position, created_at)"
                " VALUES (?, '#000000', ?, '')",
                (name, 10 - i),  # listed in reverse order of creation
            )
    migrate(engine, "head")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name, hotkey FROM label_classes ORDER BY position, id"
        ).fetchall()
    engine.dispose()
    assert [k for _, k in rows] == [1, 2, 3, 4, 5, 6, 7, 8, 9, None, None]
    assert rows[0][0] == "n7"


def test_eighty_classes_get_eighty_distinguishable_colours(tmp_path: Path) -> None:
    colors = palette()[:80]
    assert colors[:20] == BASE  # small projects look as before
    assert len(set(colors)) == 80
    lab = _srgb_to_lab(_hex_to_rgb(list(colors)))
    dist = np.linalg.norm(lab[:, None] - lab[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    # CIE76 distance: about 2.3 is "just noticeable"; the base set's closest pair is 16.7.
    assert dist.min() >= 16.0
    p = Project.create(tmp_path / "p")
    p.ensure_classes([f"c{i}" for i in range(80)])
    assert len({c.color for c in p.classes()}) == 80

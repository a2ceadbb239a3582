"""The schema in the models and the schema the Alembic migrations build must agree."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from studio.core import db, schema
from studio.core.errors import ProjectError
from studio.core.project import Project


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    return cfg


def _diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), schema.Base.metadata)


def _version(db_path: Path) -> list[tuple]:
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        con.close()


def test_head_revision_is_the_scripts_single_head() -> None:
    script = ScriptDirectory.from_config(_config())
    heads = script.get_heads()
    assert heads == [db.HEAD_REVISION], "bump db.HEAD_REVISION with every new migration"
    # One linear history down to the first revision.
    revs = list(script.walk_revisions())
    assert revs[-1].down_revision is None
    assert all(r.down_revision is not None for r in revs[:-1])


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    engine = db.create_db_engine(tmp_path / "fresh.db")
    try:
        db.migrate(engine)
        assert _diff(engine) == []
        assert db.current_revision(engine) == db.HEAD_REVISION
    finally:
        engine.dispose()


def test_autoincrement_tables_agree(tmp_path: Path) -> None:
    """compare_metadata does not see AUTOINCREMENT; ids must never be reused (undo
    re-inserts rows with their old ids), so check the CREATE TABLE statements."""
    engine = db.create_db_engine(tmp_path / "fresh.db")
    try:
        db.migrate(engine)
        with engine.connect() as conn:
            sql = dict(
                conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'").all()
            )
    finally:
        engine.dispose()
    for table in schema.Base.metadata.sorted_tables:
        wanted = bool(table.dialect_options["sqlite"].get("autoincrement"))
        assert ("AUTOINCREMENT" in sql[table.name]) == wanted, table.name


def test_new_project_matches_models_and_is_at_head(project: Project) -> None:
    assert _diff(project.engine) == []
    assert _version(project.db_path) == [(db.HEAD_REVISION,)]


def test_diff_would_catch_a_model_change(tmp_path: Path) -> None:
    """The comparison is not vacuous: a column the migrations lack shows up."""
    engine = db.create_db_engine(tmp_path / "fresh.db")
    try:
        db.migrate(engine)
        md = sa.MetaData()
        for t in schema.Base.metadata.sorted_tables:
            t.to_metadata(md)
        md.tables["images"].append_column(sa.Column("rating", sa.Integer(), nullable=True))
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), md)
        assert [d[0] for d in diffs] == ["add_column"]
        assert diffs[0][3].name == "rating"
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    engine = db.create_db_engine(tmp_path / "x.db")
    try:
        db.migrate(engine)
        cfg = _config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        with engine.connect() as conn:
            tables = {
                r[0]
                for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
            }
        # sqlite_sequence (kept by SQLite for AUTOINCREMENT tables) cannot be dropped.
        assert tables <= {"alembic_version", "sqlite_sequence"}
        db.migrate(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_database_at_first_revision_opens_at_head(tmp_path: Path) -> None:
    """A project written by the first release opens, migrated to head, data kept."""
    folder = tmp_path / "old"
    folder.mkdir()
    engine = db.create_db_engine(folder / "studio.db")
    db.migrate(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO label_classes (name, color, position, created_at) "
            "VALUES ('cat', '#ffffff', 1, '2025-01-01T00:00:00+00:00')"
        )
        t = "'2025-01-01T00:00:00+00:00'"
        conn.exec_driver_sql(
            "INSERT INTO images (path, width, height, orientation, checksum, file_size, status, "
            f"split, created_at, updated_at) VALUES ('a.jpg', 9, 9, 1, 'x', 1, 'new', 'train', {t}, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO annotations (image_id, class_id, kind, x, y, w, h, iscrowd, source, "
            f"created_at, updated_at) VALUES (1, 1, 'box', 1, 2, 3, 4, 0, 'manual', {t}, {t})"
        )
    engine.dispose()
    with Project.open(folder) as p:
        assert db.current_revision(p.engine) == db.HEAD_REVISION
        assert [c.name for c in p.classes()] == ["cat"]
        assert [a.bbox for a in p.annotations()] == [(1.0, 2.0, 3.0, 4.0)]
        with p.engine.connect() as conn:
            indexes = {
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='annotations'"
                )
            }
        # 0002's covering indexes replaced the single-column ones.
        assert {"ix_annotations_image_id_source", "ix_annotations_class_id_image_id"} <= indexes
        assert "ix_annotations_image_id" not in indexes
        assert _diff(p.engine) == []
    assert _version(folder / "studio.db") == [(db.HEAD_REVISION,)]


def _project_with_data(tmp_path: Path) -> Path:
    with Project.create(tmp_path / "p") as p:
        p.add_class("kept")
        p.set_setting("k", 1)
    return tmp_path / "p"


def test_missing_version_row_is_refused_without_losing_data(tmp_path: Path) -> None:
    """A database whose alembic_version row is gone cannot be migrated blindly: opening it
    fails with a ProjectError naming the file, and the data stays as it was."""
    folder = _project_with_data(tmp_path)
    con = sqlite3.connect(folder / "studio.db")
    con.execute("DELETE FROM alembic_version")
    con.commit()
    con.close()
    with pytest.raises(ProjectError) as e:
        Project.open(folder)
    assert str(folder / "studio.db") in str(e.value)
    con = sqlite3.connect(folder / "studio.db")
    try:
        assert con.execute("SELECT name FROM label_classes").fetchall() == [("kept",)]
        assert con.execute("SELECT key, value FROM settings").fetchall() == [("k", "1")]
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    folder = _project_with_data(tmp_path)
    con = sqlite3.connect(folder / "studio.db")
    con.execute("UPDATE alembic_version SET version_num = 'ffff_future'")
    con.commit()
    con.close()
    with pytest.raises(ProjectError) as e:
        Project.open(folder)
    assert str(folder / "studio.db") in str(e.value)
    assert "ffff_future" in str(e.value)
    assert _version(folder / "studio.db") == [("ffff_future",)]


def test_opening_an_up_to_date_project_does_not_import_alembic(tmp_path: Path) -> None:
    """`studio info` must stay fast: an up-to-date project opens without Alembic."""
    _project_with_data(tmp_path)
    code = (
        "import sys; from studio.core.project import Project; "
        f"Project.open({str(tmp_path / 'p')!r}).close(); "
        "print(any(m == 'alembic' or m.startswith('alembic.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_database_at_0002_gains_the_area_column_with_rows_kept(tmp_path: Path) -> None:
    """0003 adds annotations.area (NULL for existing rows: computed from geometry)."""
    folder = tmp_path / "v2"
    folder.mkdir()
    engine = db.create_db_engine(folder / "studio.db")
    db.migrate(engine, "0002")
    t = "'2025-01-01T00:00:00+00:00'"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO label_classes (name, color, position, created_at) "
            f"VALUES ('cat', '#ffffff', 1, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO images (path, width, height, orientation, checksum, file_size, status, "
            f"split, created_at, updated_at) VALUES ('a.jpg', 9, 9, 1, 'x', 1, 'new', 'train', {t}, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO annotations (image_id, class_id, kind, x, y, w, h, iscrowd, source, "
            f"created_at, updated_at) VALUES (1, 1, 'box', 1, 2, 3, 4, 0, 'manual', {t}, {t})"
        )
    engine.dispose()
    with Project.open(folder) as p:
        assert db.current_revision(p.engine) == db.HEAD_REVISION
        with p.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT x, y, w, h, area FROM annotations").all()
        assert [tuple(r) for r in rows] == [(1.0, 2.0, 3.0, 4.0, None)]
        assert _diff(p.engine) == []


def test_database_at_0004_gains_attribute_columns_with_rows_kept(tmp_path: Path) -> None:
    """0005 adds occluded/truncated/difficult (0 for existing rows), group_id and notes
    (NULL); the old rows read back with no attributes and can be given some."""
    folder = tmp_path / "v4"
    folder.mkdir()
    engine = db.create_db_engine(folder / "studio.db")
    db.migrate(engine, "0004")
    t = "'2025-01-01T00:00:00+00:00'"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO label_classes (name, color, position, created_at, hotkey) "
            f"VALUES ('cat', '#ffffff', 1, {t}, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO images (path, width, height, orientation, checksum, file_size, status, "
            f"split, created_at, updated_at) VALUES ('a.jpg', 9, 9, 1, 'x', 1, 'new', 'train', {t}, {t})"
        )
        conn.exec_driver_sql(
            "INSERT INTO annotations (image_id, class_id, kind, x, y, w, h, iscrowd, source, "
            f"created_at, updated_at, area) VALUES (1, 1, 'box', 1, 2, 3, 4, 0, 'manual', {t}, {t}, 12)"
        )
    engine.dispose()
    with Project.open(folder) as p:
        assert db.current_revision(p.engine) == db.HEAD_REVISION
        with p.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT x, area, occluded, truncated, difficult, group_id, notes FROM annotations"
            ).all()
        assert [tuple(r) for r in rows] == [(1.0, 12.0, 0, 0, 0, None, None)]
        (ann,) = p.annotations()
        assert ann.attributes.is_default()
        p.set_attributes([ann.id], occluded=True, group_id=2)
        assert p.annotations()[0].attributes.group_id == 2
        assert _diff(p.engine) == []

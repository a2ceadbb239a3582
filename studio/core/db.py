"""The project database: one SQLite file, WAL journal, foreign keys, busy timeout.

`open_engine` makes the engine and brings the schema up to date with Alembic, so that a
project made by an older version opens in this one. Alembic itself is imported only
when a migration is due: `studio info` on a big project must answer in well under a
second, and opening an up-to-date project costs one query.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

from studio.core.errors import ProjectError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions. tests/core/test_migrations.py checks it.
HEAD_REVISION = "0005"
BUSY_TIMEOUT_MS = 10_000


def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Safe with WAL: a crash can lose the last transaction's durability on power loss,
    # never the database's integrity. Worth it: commits per edit stay sub-millisecond.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_db_engine(db_path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{db_path}",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'")
        ).first()
        if not exists:
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return row[0] if row else None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Run Alembic's upgrade to `revision` on this engine (creates the schema if new)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def open_engine(db_path: Path, *, create: bool) -> Engine:
    if not create and not db_path.exists():
        raise ProjectError(f"{db_path.parent}: not a Studio project (no {db_path.name})")
    engine = create_db_engine(db_path)
    try:
        rev = current_revision(engine)
        if rev != HEAD_REVISION:
            migrate(engine)
    except Exception as exc:  # sqlite3.DatabaseError: "file is not a database", ...
        engine.dispose()
        if isinstance(exc, ProjectError):
            raise
        reason = getattr(exc, "orig", None) or exc  # the DB-API error, without SQLAlchemy's notes
        if not os.access(db_path.parent, os.W_OK) or not os.access(db_path, os.W_OK):
            # SQLite's write-ahead log needs its side files beside the database, even to read.
            reason = (
                "the project folder or its database is read-only; Studio writes there even "
                "to read (copy the project somewhere writable)"
            )
        raise ProjectError(f"{db_path}: cannot open the project database: {reason}") from exc
    return engine

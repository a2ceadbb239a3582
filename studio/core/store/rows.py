"""Reading whole rows back, for commands that must restore exactly what they removed."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select


def full_rows(conn: Connection, model: type, where: object) -> list[dict]:
    """Full rows (every column) of `model` matching `where`, to re-insert on undo."""
    return [dict(r) for r in conn.execute(select(model.__table__).where(where)).mappings()]


def chunks(ids: list[int], n: int = 500) -> Iterator[list[int]]:
    """`ids` in slices of at most `n`, to stay under SQLite's bound-parameter limit."""
    for i in range(0, len(ids), n):
        yield ids[i : i + n]

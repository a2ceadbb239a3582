"""Project settings: JSON values by key (the settings table)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from studio.core import schema as S


class SettingsRepo:
    """Reads and writes the settings table. Values are stored as JSON text."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(S.Setting.value).where(S.Setting.key == key)).first()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        stmt = sqlite_insert(S.Setting).values(key=key, value=json.dumps(value))
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(S.Setting).where(S.Setting.key == key))

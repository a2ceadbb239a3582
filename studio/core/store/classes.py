"""Label classes (the label_classes table), with the cascades a class edit implies:
merging moves annotations, deleting removes annotations and predictions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.events import ProjectEvents
from studio.core.records import ClassRecord
from studio.core.store.palette import BASE, class_color
from studio.core.store.rows import chunks, full_rows, reinsert

# The first twenty class colours; `palette.class_color` continues past them (80 classes,
# as in COCO, get 80 distinguishable colours).
PALETTE = BASE
HOTKEYS = range(1, 10)  # the keys a class can have: 1-9

_CLASS_COLS = (S.LabelClass.id, S.LabelClass.name, S.LabelClass.color, S.LabelClass.position)


@dataclass
class MergedClasses:
    """What a merge removed or moved, to put it back on undo."""

    class_rows: list[dict] = field(default_factory=list)
    moved: dict[int, list[int]] = field(default_factory=dict)  # source id -> annotation ids
    predictions: list[dict] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(map(len, self.moved.values()))


@dataclass
class DeletedClass:
    """A deleted class row with its annotations and predictions, to restore on undo."""

    class_row: dict
    annotations: list[dict]
    predictions: list[dict]

    @property
    def image_ids(self) -> list[int]:
        return sorted({a["image_id"] for a in self.annotations})


def _free_keys(conn: Connection) -> list[int]:
    """Keys 1-9 no class has, lowest first."""
    used = set(conn.execute(select(S.LabelClass.hotkey)).scalars())
    return [k for k in HOTKEYS if k not in used]


def read_classes(conn: Connection) -> list[ClassRecord]:
    """All classes in display order (position, then id)."""
    q = select(*_CLASS_COLS).order_by(S.LabelClass.position, S.LabelClass.id)
    return [ClassRecord(*r) for r in conn.execute(q)]


class ClassRepo:
    """Reads and writes label classes and emits `classes_changed`."""

    def __init__(self, engine: Engine, events: ProjectEvents):
        self.engine = engine
        self.events = events

    # --- reading ---------------------------------------------------------------------

    def list(self) -> list[ClassRecord]:
        with self.engine.connect() as conn:
            return read_classes(conn)

    def by_name(self, name: str) -> ClassRecord | None:
        return next((c for c in self.list() if c.name == name), None)

    def annotation_counts(self) -> dict[int, int]:
        """Annotations per class id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.Annotation.class_id, func.count()).group_by(S.Annotation.class_id)
            ).all()
        return dict(rows)

    def hotkeys(self) -> dict[int, int]:
        """{class id: key 1-9} of the classes that have a key."""
        with self.engine.connect() as conn:
            q = select(S.LabelClass.id, S.LabelClass.hotkey).where(S.LabelClass.hotkey.isnot(None))
            return {cid: key for cid, key in conn.execute(q)}

    def hotkey_of(self, class_id: int) -> int | None:
        return self.hotkeys().get(class_id)

    def set_hotkey(self, class_id: int, key: int | None) -> dict[int, int | None]:
        """Give `class_id` the key `key` (1-9; None: no key). A class that had that key
        gets this class's old key instead (a swap), so no two classes share one.
        Returns the old {class id: key} of every class changed, for undo."""
        if key is not None and key not in HOTKEYS:
            raise StudioError(f"a class key is 1-9, not {key}")
        with self.engine.begin() as conn:
            keys = dict(conn.execute(select(S.LabelClass.id, S.LabelClass.hotkey)).all())
            if class_id not in keys:
                raise StudioError(f"class {class_id} does not exist")
            old = {class_id: keys[class_id]}
            holder = next((c for c, k in keys.items() if k == key and c != class_id), None)
            if key is not None and holder is not None:
                old[holder] = key
            self._write_hotkeys(conn, {class_id: None, **{h: None for h in old}})
            new = {class_id: key}
            if holder is not None and key is not None:
                new[holder] = keys[class_id]
            self._write_hotkeys(conn, new)
        self.events.classes_changed.emit()
        return old

    def restore_hotkeys(self, keys: dict[int, int | None]) -> None:
        """Write back what `set_hotkey` returned."""
        with self.engine.begin() as conn:
            self._write_hotkeys(conn, {cid: None for cid in keys})
            self._write_hotkeys(conn, keys)
        self.events.classes_changed.emit()

    @staticmethod
    def _write_hotkeys(conn: Connection, keys: dict[int, int | None]) -> None:
        for cid, key in keys.items():
            conn.execute(update(S.LabelClass).where(S.LabelClass.id == cid).values(hotkey=key))

    @staticmethod
    def ids_by_name(conn: Connection) -> dict[str, int]:
        """{name: id} of every class, inside an open transaction."""
        return dict(conn.exec_driver_sql("SELECT name, id FROM label_classes").all())

    # --- adding (not undoable) ----------------------------------------------------------

    @staticmethod
    def insert_names(conn: Connection, names: Sequence[str]) -> None:
        """Add classes by name inside the caller's transaction (imports land as one
        unit), with palette colours and positions after the last class. No event: the
        caller emits `classes_changed` once its transaction is committed."""
        n = conn.execute(select(func.count()).select_from(S.LabelClass)).scalar_one()
        pos = conn.execute(select(func.max(S.LabelClass.position))).scalar() or 0
        free = _free_keys(conn)
        conn.execute(
            insert(S.LabelClass),
            [
                {"name": nm, "color": class_color(n + i), "position": pos + 1 + i,
                 "hotkey": free.pop(0) if free else None}
                for i, nm in enumerate(names)
            ],
        )  # fmt: skip

    def ensure(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of the named classes, creating the missing ones (not undoable)."""
        existing = {c.name: c.id for c in self.list()}
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            with self.engine.begin() as conn:
                self.insert_names(conn, missing)
            existing = {c.name: c.id for c in self.list()}
            self.events.classes_changed.emit()
        return existing

    # --- single-class edits (the undo commands call these) ------------------------------

    def add(
        self,
        name: str,
        color: str | None,
        class_id: int = 0,
        created_at: str | None = None,
        hotkey: int | None = None,
    ) -> int:
        """Add a class named `name`; returns its id. It gets the lowest free key 1-9,
        if any. A redo passes the `class_id`, `created_at` and `hotkey` the class had, so
        that it comes back as it was. Raises `StudioError` for an empty or taken name."""
        if not name:
            raise StudioError("a class needs a name")
        with self.engine.begin() as conn:
            if conn.execute(select(S.LabelClass.id).where(S.LabelClass.name == name)).first():
                raise StudioError(f"a class named {name!r} exists already")
            n = conn.execute(select(func.count()).select_from(S.LabelClass)).scalar_one()
            pos = (conn.execute(select(func.max(S.LabelClass.position))).scalar() or 0) + 1
            values: dict[str, Any] = {
                "name": name, "color": color or class_color(n), "position": pos,
                "created_at": created_at or S.utcnow(),
            }  # fmt: skip
            if class_id:
                values["id"] = class_id
            if hotkey is None:
                free = _free_keys(conn)
                hotkey = free[0] if free else None
            elif conn.execute(select(S.LabelClass.id).where(S.LabelClass.hotkey == hotkey)).first():
                hotkey = None  # taken meanwhile (a redo after an import): no key
            values["hotkey"] = hotkey
            res = conn.execute(insert(S.LabelClass).values(**values))
            class_id = class_id or res.inserted_primary_key[0]
        self.events.classes_changed.emit()
        return class_id

    def remove_unused(self, class_id: int, name: str) -> str:
        """Delete a class that no annotation uses (`StudioError` if one does); returns
        its created_at, for a redo to restore."""
        with self.engine.begin() as conn:
            created_at = conn.execute(
                select(S.LabelClass.created_at).where(S.LabelClass.id == class_id)
            ).scalar_one()
            used = conn.execute(
                select(func.count())
                .select_from(S.Annotation)
                .where(S.Annotation.class_id == class_id)
            ).scalar_one()
            if used:
                raise StudioError(f"class {name!r} has {used} shapes; delete them first")
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id == class_id))
        self.events.classes_changed.emit()
        return created_at

    def set_fields(self, class_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Set name and/or colour; returns the old values of those fields. A name must
        not be taken by another class (merge instead)."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(select(S.LabelClass.__table__).where(S.LabelClass.id == class_id))
                .mappings()
                .first()
            )
            if row is None:
                raise StudioError(f"class {class_id} does not exist")
            if "name" in fields:
                clash = conn.execute(
                    select(S.LabelClass.id).where(
                        S.LabelClass.name == fields["name"], S.LabelClass.id != class_id
                    )
                ).first()
                if clash:
                    raise StudioError(
                        f"a class named {fields['name']!r} exists already; merge instead"
                    )
            old = {k: row[k] for k in fields}
            conn.execute(update(S.LabelClass).where(S.LabelClass.id == class_id).values(**fields))
        self.events.classes_changed.emit()
        return old

    def restore_fields(self, class_id: int, fields: dict[str, Any]) -> None:
        """Write back values `set_fields` returned."""
        with self.engine.begin() as conn:
            conn.execute(update(S.LabelClass).where(S.LabelClass.id == class_id).values(**fields))
        self.events.classes_changed.emit()

    def reorder(self, ordered_ids: Sequence[int]) -> dict[int, int]:
        """Give the classes positions 0, 1, ... in `ordered_ids` (every class exactly
        once); returns the old {id: position}."""
        with self.engine.begin() as conn:
            old = dict(conn.execute(select(S.LabelClass.id, S.LabelClass.position)).all())
            if set(ordered_ids) != set(old):
                raise StudioError("reorder needs every class exactly once")
            self._write_positions(conn, {cid: pos for pos, cid in enumerate(ordered_ids)})
        self.events.classes_changed.emit()
        return old

    def restore_positions(self, positions: dict[int, int]) -> None:
        """Write back the {id: position} that `reorder` returned."""
        with self.engine.begin() as conn:
            self._write_positions(conn, positions)
        self.events.classes_changed.emit()

    @staticmethod
    def _write_positions(conn: Connection, positions: dict[int, int]) -> None:
        for cid, pos in positions.items():
            conn.execute(update(S.LabelClass).where(S.LabelClass.id == cid).values(position=pos))

    # --- cascades: merge and delete --------------------------------------------------------

    def merge(self, source_ids: Sequence[int], target_id: int) -> MergedClasses:
        """Move the annotations of `source_ids` to `target_id`, then delete the sources
        and their predictions. Returns what undo needs."""
        sources = list(source_ids)
        with self.engine.begin() as conn:
            target = select(S.LabelClass.id).where(S.LabelClass.id == target_id)
            if conn.execute(target).first() is None:
                raise StudioError(f"class {target_id} does not exist")
            merged = MergedClasses(
                class_rows=full_rows(conn, S.LabelClass, S.LabelClass.id.in_(sources)),
                moved={
                    s: list(
                        conn.execute(
                            select(S.Annotation.id).where(S.Annotation.class_id == s)
                        ).scalars()
                    )
                    for s in sources
                },
            )
            conn.execute(
                update(S.Annotation)
                .where(S.Annotation.class_id.in_(sources))
                .values(class_id=target_id)
            )
            merged.predictions = full_rows(conn, S.Prediction, S.Prediction.class_id.in_(sources))
            conn.execute(delete(S.Prediction).where(S.Prediction.class_id.in_(sources)))
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id.in_(sources)))
        self.events.classes_changed.emit()
        self.events.annotations_changed.emit(None)
        return merged

    def unmerge(self, merged: MergedClasses) -> None:
        """Undo `merge`: the sources, their annotations and their predictions come back."""
        with self.engine.begin() as conn:
            if merged.class_rows:
                conn.execute(insert(S.LabelClass), merged.class_rows)
            for src, ids in merged.moved.items():
                for chunk in chunks(ids):
                    conn.execute(
                        update(S.Annotation).where(S.Annotation.id.in_(chunk)).values(class_id=src)
                    )
            if merged.predictions:
                conn.execute(insert(S.Prediction), merged.predictions)
        self.events.classes_changed.emit()
        self.events.annotations_changed.emit(None)

    def delete(self, class_id: int) -> DeletedClass:
        """Delete a class with its annotations and predictions; returns them for undo."""
        with self.engine.begin() as conn:
            rows = full_rows(conn, S.LabelClass, S.LabelClass.id == class_id)
            if not rows:
                raise StudioError(f"class {class_id} does not exist")
            deleted = DeletedClass(
                class_row=rows[0],
                annotations=full_rows(conn, S.Annotation, S.Annotation.class_id == class_id),
                predictions=full_rows(conn, S.Prediction, S.Prediction.class_id == class_id),
            )
            conn.execute(delete(S.Annotation).where(S.Annotation.class_id == class_id))
            conn.execute(delete(S.Prediction).where(S.Prediction.class_id == class_id))
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id == class_id))
        self.events.classes_changed.emit()
        self.events.annotations_changed.emit(deleted.image_ids)
        return deleted

    def restore(self, deleted: DeletedClass) -> None:
        """Undo `delete`."""
        with self.engine.begin() as conn:
            conn.execute(insert(S.LabelClass), [deleted.class_row])
            if deleted.annotations:
                reinsert(conn, S.Annotation, deleted.annotations)
            if deleted.predictions:
                reinsert(conn, S.Prediction, deleted.predictions)
        self.events.classes_changed.emit()
        self.events.annotations_changed.emit(deleted.image_ids)

"""Undo and redo: every edit is a command with `do` and `undo`, on a per-project stack.

As in glue's command.py, the UI never edits the database directly; it builds a command
(through the `Project` helpers) and the stack runs it. Undo lives here, in the core,
not in a canvas widget, so it survives switching images and is tested without Qt.
A continuous drag sends many updates with one `gesture` token; they merge into a
single undo step (like QUndoCommand.mergeWith).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from studio.core import schema as S
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.project import Project


class Command:
    text = "edit"

    def do(self, p: Project) -> None:
        raise NotImplementedError

    def undo(self, p: Project) -> None:
        raise NotImplementedError

    def merge(self, other: Command) -> bool:
        """Absorb `other` (pushed right after self); True if merged."""
        return False


class UndoStack:
    def __init__(self, project: Project, limit: int = 2000):
        self._p = project
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.limit = limit

    def push(self, cmd: Command) -> None:
        cmd.do(self._p)
        self._undone.clear()
        if not (self._done and self._done[-1].merge(cmd)):
            self._done.append(cmd)
            del self._done[: -self.limit]
        self._changed()

    def undo(self) -> str | None:
        if not self._done:
            return None
        cmd = self._done[-1]
        cmd.undo(self._p)  # may refuse (StudioError): then the command stays where it was
        self._done.pop()
        self._undone.append(cmd)
        self._changed()
        return cmd.text

    def redo(self) -> str | None:
        if not self._undone:
            return None
        cmd = self._undone[-1]
        cmd.do(self._p)
        self._undone.pop()
        self._done.append(cmd)
        self._changed()
        return cmd.text

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._changed()

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_text(self) -> str | None:
        return self._done[-1].text if self._done else None

    @property
    def redo_text(self) -> str | None:
        return self._undone[-1].text if self._undone else None

    def _changed(self) -> None:
        self._p.events.undo_changed.emit(self.can_undo, self.can_redo)


# --- annotations ---------------------------------------------------------------------------


class AddAnnotations(Command):
    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.ids: list[int] = []
        self.text = "add shape" if len(rows) == 1 else f"add {len(rows)} shapes"

    def do(self, p: Project) -> None:
        # On redo the rows go back with the ids they had, so later commands that refer
        # to them (a move, a delete) still find them.
        rows = (
            [dict(r, id=i) for r, i in zip(self.rows, self.ids, strict=True)]
            if self.ids
            else self.rows
        )
        self.ids = p._insert_annotation_rows(rows)

    def undo(self, p: Project) -> None:
        p._delete_annotation_rows(self.ids)


class DeleteAnnotations(Command):
    def __init__(self, ids: list[int]):
        self.ids = ids
        self.rows: list[dict] = []
        self.text = "delete shape" if len(ids) == 1 else f"delete {len(ids)} shapes"

    def do(self, p: Project) -> None:
        self.rows = p._delete_annotation_rows(self.ids)

    def undo(self, p: Project) -> None:
        p._insert_annotation_rows(self.rows)


class UpdateAnnotations(Command):
    """Move, resize, reshape, or change class of shapes. `new` maps id -> columns."""

    def __init__(self, new: dict[int, dict[str, Any]], gesture: object | None = None):
        self.new = new
        self.old: dict[int, dict[str, Any]] = {}
        self.gesture = gesture
        self.text = (
            "change class" if all(set(f) == {"class_id"} for f in new.values()) else "edit shape"
        )

    def do(self, p: Project) -> None:
        if not self.old:
            rows = {r["id"]: r for r in p._annotation_rows(list(self.new))}
            missing = set(self.new) - set(rows)
            if missing:
                raise StudioError(f"shape(s) {sorted(missing)} no longer exist")
            self.old = {i: {k: rows[i][k] for k in f} for i, f in self.new.items()}
        p._update_annotation_rows(self.new)

    def undo(self, p: Project) -> None:
        p._update_annotation_rows(self.old)

    def merge(self, other: Command) -> bool:
        if (
            isinstance(other, UpdateAnnotations)
            and self.gesture is not None
            and other.gesture == self.gesture
            and set(other.new) == set(self.new)
        ):
            for i, fields in other.new.items():
                for k in fields:
                    self.old[i].setdefault(k, other.old[i][k])
                self.new[i] = {**self.new[i], **fields}
            return True
        return False


# --- images ---------------------------------------------------------------------------------


class SetImageField(Command):
    def __init__(self, ids: list[int], field: str, value: str):
        assert field in ("status", "split")
        self.ids, self.field, self.value = ids, field, value
        self.old: dict[int, str] = {}
        self.text = f"set {field} to {value}"

    def do(self, p: Project) -> None:
        col = getattr(S.Image, self.field)
        with p.engine.begin() as conn:
            if not self.old:
                self.old = dict(
                    conn.execute(select(S.Image.id, col).where(S.Image.id.in_(self.ids))).all()
                )
            conn.execute(
                update(S.Image)
                .where(S.Image.id.in_(self.ids))
                .values({self.field: self.value, "updated_at": S.utcnow()})
            )
        p.events.images_changed.emit(self.ids)

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            for value in set(self.old.values()):
                ids = [i for i, v in self.old.items() if v == value]
                conn.execute(update(S.Image).where(S.Image.id.in_(ids)).values({self.field: value}))
        p.events.images_changed.emit(self.ids)


class DeleteImages(Command):
    def __init__(self, ids: list[int]):
        self.ids = ids
        self.images: list[dict] = []
        self.anns: list[dict] = []
        self.preds: list[dict] = []
        self.text = "delete image" if len(ids) == 1 else f"delete {len(ids)} images"

    def do(self, p: Project) -> None:
        with p.engine.begin() as conn:
            self.images = [
                dict(r)
                for r in conn.execute(
                    select(S.Image.__table__).where(S.Image.id.in_(self.ids))
                ).mappings()
            ]
            self.anns = [
                dict(r)
                for r in conn.execute(
                    select(S.Annotation.__table__).where(S.Annotation.image_id.in_(self.ids))
                ).mappings()
            ]
            self.preds = _rows(conn, S.Prediction, S.Prediction.image_id.in_(self.ids))
            conn.execute(delete(S.Image).where(S.Image.id.in_(self.ids)))
        p.events.images_changed.emit(self.ids)

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            if self.images:
                conn.execute(insert(S.Image), self.images)
            if self.anns:
                conn.execute(insert(S.Annotation), self.anns)
            if self.preds:
                conn.execute(insert(S.Prediction), self.preds)
        p.events.images_changed.emit(self.ids)
        p.events.annotations_changed.emit(self.ids)


# --- classes --------------------------------------------------------------------------------


class AddClass(Command):
    def __init__(self, name: str, color: str | None):
        self.name, self.color = name.strip(), color
        self.class_id = 0
        self.text = f"add class {name}"

    def do(self, p: Project) -> None:
        from studio.core.project import PALETTE

        if not self.name:
            raise StudioError("a class needs a name")
        with p.engine.begin() as conn:
            if conn.execute(select(S.LabelClass.id).where(S.LabelClass.name == self.name)).first():
                raise StudioError(f"a class named {self.name!r} exists already")
            n = conn.execute(select(func.count()).select_from(S.LabelClass)).scalar_one()
            pos = (conn.execute(select(func.max(S.LabelClass.position))).scalar() or 0) + 1
            values = {
                "name": self.name,
                "color": self.color or PALETTE[n % len(PALETTE)],
                "position": pos,
            }
            if self.class_id:
                values["id"] = self.class_id
            res = conn.execute(insert(S.LabelClass).values(**values))
            self.class_id = self.class_id or res.inserted_primary_key[0]
        p.events.classes_changed.emit()

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            used = conn.execute(
                select(func.count())
                .select_from(S.Annotation)
                .where(S.Annotation.class_id == self.class_id)
            ).scalar_one()
            if used:
                raise StudioError(f"class {self.name!r} has {used} shapes; delete them first")
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id == self.class_id))
        p.events.classes_changed.emit()


class SetClassFields(Command):
    def __init__(self, class_id: int, **fields: str):
        self.class_id = class_id
        self.new = fields
        self.old: dict[str, Any] = {}
        self.text = "rename class" if "name" in fields else "recolour class"

    def do(self, p: Project) -> None:
        if "name" in self.new:
            self.new["name"] = self.new["name"].strip()
            if not self.new["name"]:
                raise StudioError("a class needs a name")
        with p.engine.begin() as conn:
            row = (
                conn.execute(select(S.LabelClass.__table__).where(S.LabelClass.id == self.class_id))
                .mappings()
                .first()
            )
            if row is None:
                raise StudioError(f"class {self.class_id} does not exist")
            if "name" in self.new:
                clash = conn.execute(
                    select(S.LabelClass.id).where(
                        S.LabelClass.name == self.new["name"], S.LabelClass.id != self.class_id
                    )
                ).first()
                if clash:
                    raise StudioError(
                        f"a class named {self.new['name']!r} exists already; merge instead"
                    )
            self.old = {k: row[k] for k in self.new}
            conn.execute(
                update(S.LabelClass).where(S.LabelClass.id == self.class_id).values(**self.new)
            )
        p.events.classes_changed.emit()

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            conn.execute(
                update(S.LabelClass).where(S.LabelClass.id == self.class_id).values(**self.old)
            )
        p.events.classes_changed.emit()


class ReorderClasses(Command):
    def __init__(self, ordered_ids: list[int]):
        self.ordered = ordered_ids
        self.old: dict[int, int] = {}
        self.text = "reorder classes"

    def do(self, p: Project) -> None:
        with p.engine.begin() as conn:
            self.old = dict(conn.execute(select(S.LabelClass.id, S.LabelClass.position)).all())
            if set(self.ordered) != set(self.old):
                raise StudioError("reorder needs every class exactly once")
            for pos, cid in enumerate(self.ordered):
                conn.execute(
                    update(S.LabelClass).where(S.LabelClass.id == cid).values(position=pos)
                )
        p.events.classes_changed.emit()

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            for cid, pos in self.old.items():
                conn.execute(
                    update(S.LabelClass).where(S.LabelClass.id == cid).values(position=pos)
                )
        p.events.classes_changed.emit()


class MergeClasses(Command):
    def __init__(self, source_ids: list[int], target_id: int):
        self.sources = [s for s in source_ids if s != target_id]
        self.target = target_id
        self.moved: dict[int, list[int]] = {}
        self.class_rows: list[dict] = []
        self.preds: list[dict] = []
        self.changed = 0
        self.text = "merge classes"

    def do(self, p: Project) -> None:
        with p.engine.begin() as conn:
            if (
                conn.execute(select(S.LabelClass.id).where(S.LabelClass.id == self.target)).first()
                is None
            ):
                raise StudioError(f"class {self.target} does not exist")
            self.class_rows = [
                dict(r)
                for r in conn.execute(
                    select(S.LabelClass.__table__).where(S.LabelClass.id.in_(self.sources))
                ).mappings()
            ]
            self.moved = {
                s: list(
                    conn.execute(
                        select(S.Annotation.id).where(S.Annotation.class_id == s)
                    ).scalars()
                )
                for s in self.sources
            }
            conn.execute(
                update(S.Annotation)
                .where(S.Annotation.class_id.in_(self.sources))
                .values(class_id=self.target)
            )
            self.preds = _rows(conn, S.Prediction, S.Prediction.class_id.in_(self.sources))
            conn.execute(delete(S.Prediction).where(S.Prediction.class_id.in_(self.sources)))
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id.in_(self.sources)))
        self.changed = sum(map(len, self.moved.values()))
        p.events.classes_changed.emit()
        p.events.annotations_changed.emit(None)

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            if self.class_rows:
                conn.execute(insert(S.LabelClass), self.class_rows)
            for src, ids in self.moved.items():
                for chunk in _chunks(ids):
                    conn.execute(
                        update(S.Annotation).where(S.Annotation.id.in_(chunk)).values(class_id=src)
                    )
            if self.preds:
                conn.execute(insert(S.Prediction), self.preds)
        p.events.classes_changed.emit()
        p.events.annotations_changed.emit(None)


class DeleteClass(Command):
    def __init__(self, class_id: int):
        self.class_id = class_id
        self.class_row: dict = {}
        self.anns: list[dict] = []
        self.preds: list[dict] = []
        self.deleted = 0
        self.text = "delete class"

    def do(self, p: Project) -> None:
        with p.engine.begin() as conn:
            row = (
                conn.execute(select(S.LabelClass.__table__).where(S.LabelClass.id == self.class_id))
                .mappings()
                .first()
            )
            if row is None:
                raise StudioError(f"class {self.class_id} does not exist")
            self.class_row = dict(row)
            self.anns = [
                dict(r)
                for r in conn.execute(
                    select(S.Annotation.__table__).where(S.Annotation.class_id == self.class_id)
                ).mappings()
            ]
            conn.execute(delete(S.Annotation).where(S.Annotation.class_id == self.class_id))
            self.preds = _rows(conn, S.Prediction, S.Prediction.class_id == self.class_id)
            conn.execute(delete(S.Prediction).where(S.Prediction.class_id == self.class_id))
            conn.execute(delete(S.LabelClass).where(S.LabelClass.id == self.class_id))
        self.deleted = len(self.anns)
        p.events.classes_changed.emit()
        p.events.annotations_changed.emit(sorted({a["image_id"] for a in self.anns}))

    def undo(self, p: Project) -> None:
        with p.engine.begin() as conn:
            conn.execute(insert(S.LabelClass), [self.class_row])
            if self.anns:
                conn.execute(insert(S.Annotation), self.anns)
            if self.preds:
                conn.execute(insert(S.Prediction), self.preds)
        p.events.classes_changed.emit()
        p.events.annotations_changed.emit(sorted({a["image_id"] for a in self.anns}))


def _rows(conn, model, where) -> list[dict]:
    """Full rows of `model` matching `where`, to re-insert on undo."""
    return [dict(r) for r in conn.execute(select(model.__table__).where(where)).mappings()]


def _chunks(ids: list[int], n: int = 500):
    for i in range(0, len(ids), n):
        yield ids[i : i + n]

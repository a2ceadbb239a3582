"""The undoable edits: each command does its change through the project's repositories
(`studio.core.store`) and keeps what it needs to reverse it. Commands know nothing of
`Project`; the stack (`studio.core.undo.stack`) hands them the `Store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from studio.core.errors import StudioError
from studio.core.store.annotations import GEOMETRY_COLUMNS
from studio.core.store.classes import DeletedClass, MergedClasses
from studio.core.store.images import EDITABLE_FIELDS, DeletedImages
from studio.core.undo.stack import Command, UndoStack

if TYPE_CHECKING:
    from studio.core.store import Store

__all__ = [
    "AddAnnotations", "AddClass", "AssignSplits", "Command", "DeleteAnnotations",
    "DeleteClass", "DeleteImages", "MergeClasses", "ReorderClasses", "SetAnnotationAttributes",
    "SetClassFields",
    "SetClassHotkey",
    "SetImageField", "StepFocus", "UndoStack", "UpdateAnnotations", "step_focus",
]  # fmt: skip

# --- annotations ---------------------------------------------------------------------------


class AddAnnotations(Command):
    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.ids: list[int] = []
        self.text = "add shape" if len(rows) == 1 else f"add {len(rows)} shapes"

    def do(self, store: Store) -> None:
        # On redo the rows go back with the ids they had, so later commands that refer
        # to them (a move, a delete) still find them.
        rows = (
            [dict(r, id=i) for r, i in zip(self.rows, self.ids, strict=True)]
            if self.ids
            else self.rows
        )
        self.ids = store.annotations.insert_rows(rows)

    def undo(self, store: Store) -> None:
        store.annotations.delete_rows(self.ids)


class DeleteAnnotations(Command):
    def __init__(self, ids: list[int]):
        self.ids = ids
        self.rows: list[dict] = []
        self.text = "delete shape" if len(ids) == 1 else f"delete {len(ids)} shapes"

    def do(self, store: Store) -> None:
        self.rows = store.annotations.delete_rows(self.ids)

    def undo(self, store: Store) -> None:
        store.annotations.insert_rows(self.rows)


class UpdateAnnotations(Command):
    """Move, resize, reshape, or change class of shapes. `new` maps id -> columns."""

    def __init__(self, new: dict[int, dict[str, Any]], gesture: object | None = None):
        self.new = new
        self.old: dict[int, dict[str, Any]] = {}
        self.gesture = gesture
        self.text = (
            "change class" if all(set(f) == {"class_id"} for f in new.values()) else "edit shape"
        )

    def do(self, store: Store) -> None:
        if not self.old:
            rows = {r["id"]: r for r in store.annotations.rows(list(self.new))}
            missing = set(self.new) - set(rows)
            if missing:
                raise StudioError(f"shape(s) {sorted(missing)} no longer exist")
            # A geometry edit clears an imported area; undo must bring it back.
            self.old = {
                i: {k: rows[i][k] for k in (f if GEOMETRY_COLUMNS.isdisjoint(f) else {*f, "area"})}
                for i, f in self.new.items()
            }
        store.annotations.update_rows(self.new)

    def undo(self, store: Store) -> None:
        store.annotations.update_rows(self.old)

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


class SetAnnotationAttributes(UpdateAnnotations):
    """Set attributes (occluded, truncated, difficult, group_id, notes) of shapes; an
    `UpdateAnnotations` so that undo focus and the stack treat it as a shape edit."""

    def __init__(self, ids: list[int], fields: dict[str, Any]):
        super().__init__({i: dict(fields) for i in ids})
        names = ", ".join(fields)
        self.text = f"set {names}" if len(ids) == 1 else f"set {names} of {len(ids)} shapes"


# --- images ---------------------------------------------------------------------------------


class SetImageField(Command):
    """Set the status or the split of images."""

    def __init__(self, ids: list[int], field: str, value: str):
        assert field in EDITABLE_FIELDS
        self.ids, self.field, self.value = ids, field, value
        self.old: dict[int, str] = {}
        self.text = f"set {field} to {value}"

    def do(self, store: Store) -> None:
        old = store.images.set_field(self.ids, self.field, self.value)
        # On redo, keep the values from before the first run.
        self.old = self.old or old

    def undo(self, store: Store) -> None:
        store.images.restore_field(self.old, self.field, self.ids)


class DeleteImages(Command):
    def __init__(self, ids: list[int]):
        self.ids = ids
        self.deleted = DeletedImages([], [], [])
        self.text = "delete image" if len(ids) == 1 else f"delete {len(ids)} images"

    def do(self, store: Store) -> None:
        self.deleted = store.images.delete(self.ids)

    def undo(self, store: Store) -> None:
        store.images.restore(self.deleted, self.ids)


class AssignSplits(Command):
    """New splits for every image, and the fractions that later imports follow."""

    text = "assign splits"

    def __init__(self, new: dict[int, str], fractions: dict):
        self.new, self.fractions = new, fractions
        self.old: dict[int, str] = {}
        self.old_fractions: dict | None = None

    def do(self, store: Store) -> None:
        if not self.old:
            self.old = store.images.splits()
            self.old_fractions = store.settings.get("split_fractions")
        store.images.write_splits(self.new)
        store.settings.set("split_fractions", self.fractions)

    def undo(self, store: Store) -> None:
        store.images.write_splits(self.old)
        if self.old_fractions is None:
            store.settings.delete("split_fractions")
        else:
            store.settings.set("split_fractions", self.old_fractions)


# --- classes --------------------------------------------------------------------------------


class AddClass(Command):
    def __init__(self, name: str, color: str | None):
        self.name, self.color = name.strip(), color
        self.class_id = 0
        self.created_at: str | None = None
        self.hotkey: int | None = None
        self.text = f"add class {name}"

    def do(self, store: Store) -> None:
        # On redo the class comes back with its id, creation time and key.
        self.class_id = store.classes.add(
            self.name, self.color, self.class_id, self.created_at, self.hotkey
        )

    def undo(self, store: Store) -> None:
        self.hotkey = store.classes.hotkey_of(self.class_id)
        self.created_at = store.classes.remove_unused(self.class_id, self.name)


class SetClassHotkey(Command):
    """Give a class the key 1-9 that picks it (None: no key); the class that had the key
    gets this one's old key."""

    def __init__(self, class_id: int, key: int | None):
        self.class_id, self.key = class_id, key
        self.old: dict[int, int | None] = {}
        self.text = "change class key"

    def do(self, store: Store) -> None:
        self.old = store.classes.set_hotkey(self.class_id, self.key)

    def undo(self, store: Store) -> None:
        store.classes.restore_hotkeys(self.old)


class SetClassFields(Command):
    """Rename or recolour a class."""

    def __init__(self, class_id: int, **fields: str):
        self.class_id = class_id
        self.new = fields
        self.old: dict[str, Any] = {}
        self.text = "rename class" if "name" in fields else "recolour class"

    def do(self, store: Store) -> None:
        if "name" in self.new:
            self.new["name"] = self.new["name"].strip()
            if not self.new["name"]:
                raise StudioError("a class needs a name")
        self.old = store.classes.set_fields(self.class_id, self.new)

    def undo(self, store: Store) -> None:
        store.classes.restore_fields(self.class_id, self.old)


class ReorderClasses(Command):
    def __init__(self, ordered_ids: list[int]):
        self.ordered = ordered_ids
        self.old: dict[int, int] = {}
        self.text = "reorder classes"

    def do(self, store: Store) -> None:
        self.old = store.classes.reorder(self.ordered)

    def undo(self, store: Store) -> None:
        store.classes.restore_positions(self.old)


class MergeClasses(Command):
    def __init__(self, source_ids: list[int], target_id: int):
        self.sources = [s for s in source_ids if s != target_id]
        self.target = target_id
        self.merged = MergedClasses()
        self.changed = 0
        self.text = "merge classes"

    def do(self, store: Store) -> None:
        self.merged = store.classes.merge(self.sources, self.target)
        self.changed = self.merged.changed

    def undo(self, store: Store) -> None:
        store.classes.unmerge(self.merged)


class DeleteClass(Command):
    def __init__(self, class_id: int):
        self.class_id = class_id
        self.deleted: DeletedClass | None = None
        self.text = "delete class"

    @property
    def deleted_count(self) -> int:
        return len(self.deleted.annotations) if self.deleted else 0

    def do(self, store: Store) -> None:
        self.deleted = store.classes.delete(self.class_id)

    def undo(self, store: Store) -> None:
        assert self.deleted is not None
        store.classes.restore(self.deleted)


# --- where an undo or redo lands ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepFocus:
    """What the next undo (or redo) changes, for a window to show it: the image whose
    shapes change (None when the command does not say; look it up from `select`) and
    the shapes that exist afterwards, to select."""

    image_id: int | None
    select: list[int] = field(default_factory=list)


def step_focus(stack: UndoStack, which: str) -> StepFocus | None:
    """The focus of the command the next `stack.undo()` ("undo") or `stack.redo()`
    ("redo") runs; None when it changes no shapes (classes, images, splits)."""
    commands = stack._done if which == "undo" else stack._undone  # same package: no copy
    if not commands:
        return None
    cmd, undo = commands[-1], which == "undo"
    if isinstance(cmd, AddAnnotations):
        image = cmd.rows[0].get("image_id") if cmd.rows else None
        return StepFocus(image, [] if undo else list(cmd.ids))
    if isinstance(cmd, DeleteAnnotations):
        image = cmd.rows[0].get("image_id") if cmd.rows else None
        return StepFocus(image, list(cmd.ids) if undo else [])
    if isinstance(cmd, UpdateAnnotations):
        return StepFocus(None, list(cmd.new))
    return None

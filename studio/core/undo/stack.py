"""The undo stack: runs commands, keeps them for undo and redo, merges drags.

As in glue's command.py, the UI never edits the database directly; it builds a command
(through the `Project` helpers) and the stack runs it. Undo lives here, in the core,
not in a canvas widget, so it survives switching images and is tested without Qt.
A continuous drag sends many updates with one `gesture` token; they merge into a
single undo step (like QUndoCommand.mergeWith).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio.core.store import Store


class Command:
    """One undoable edit. `do` runs it (again, on redo) and `undo` reverses it; both
    get the project's repositories. `text` names it in the Edit menu."""

    text = "edit"

    def do(self, store: Store) -> None:
        raise NotImplementedError

    def undo(self, store: Store) -> None:
        raise NotImplementedError

    def merge(self, other: Command) -> bool:
        """Absorb `other` (pushed right after self); True if merged."""
        return False


class UndoStack:
    """Commands done and undone, at most `limit` kept; emits `undo_changed`."""

    def __init__(self, store: Store, limit: int = 2000):
        self._store = store
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self._redo_before_top: list[Command] = []
        self.limit = limit

    def push(self, cmd: Command) -> None:
        """Run `cmd` and make it the next to undo (or merge it into the last one)."""
        cmd.do(self._store)
        if self._done and self._done[-1].merge(cmd):
            self._undone.clear()
        else:
            # What could be redone before it, should `withdraw` take it back.
            self._redo_before_top, self._undone = self._undone, []
            self._done.append(cmd)
            del self._done[: -self.limit]
        self._changed()

    def undo(self) -> str | None:
        """Undo the last command; returns its text, or None if there was none."""
        if not self._done:
            return None
        cmd = self._done[-1]
        cmd.undo(self._store)  # may refuse (StudioError): then the command stays where it was
        self._done.pop()
        self._undone.append(cmd)
        self._changed()
        return cmd.text

    def withdraw(self) -> None:
        """Undo the last command as if it had never been done: it is not offered for
        redo, and what could be redone before it can be again (a gesture cancelled with
        Esc leaves no trace)."""
        if not self._done:
            return
        self._done[-1].undo(self._store)
        self._done.pop()
        self._undone, self._redo_before_top = self._redo_before_top, []
        self._changed()

    def redo(self) -> str | None:
        """Redo the last undone command; returns its text, or None if there was none."""
        if not self._undone:
            return None
        cmd = self._undone[-1]
        cmd.do(self._store)
        self._undone.pop()
        self._done.append(cmd)
        self._changed()
        return cmd.text

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._redo_before_top = []
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
        self._store.events.undo_changed.emit(self.can_undo, self.can_redo)

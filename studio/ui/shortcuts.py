"""Keyboard shortcuts: one registry of actions (id, default keys, description), user
overrides stored with QSettings, and the "?" dialog that lists and edits them.

Widgets never hard-code a key: they create a QAction and `bind` it to an id here, so the
dialog can show every shortcut and a change applies at once, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QKeySequenceEdit,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ui.common import plain_text
from studio.ui.common.settings import settings


@dataclass(frozen=True, slots=True)
class ShortcutSpec:
    id: str
    keys: tuple[str, ...]  # portable text, as QKeySequence reads it
    description: str
    group: str


def _s(id: str, keys: str, description: str, group: str) -> ShortcutSpec:
    return ShortcutSpec(id, tuple(k for k in keys.split(",") if k), description, group)


SHORTCUTS: tuple[ShortcutSpec, ...] = (
    _s("nav.next", "D,Right", "Next image", "Navigate"),
    _s("nav.prev", "A,Left", "Previous image", "Navigate"),
    _s("nav.done_next", "Space", "Mark image done, go to the next one not done", "Navigate"),
    _s("tool.box", "W", "Box tool", "Tools"),
    _s("tool.polygon", "P", "Polygon tool", "Tools"),
    _s("tool.select", "V", "Select tool", "Tools"),
    _s(
        "tool.cancel",
        "Esc",
        "Cancel the drag or polygon, else the selection, else select tool",
        "Tools",
    ),
    *(
        _s(f"class.{n}", str(n), f"Class {n}: for new shapes and the selected ones", "Classes")
        for n in range(1, 10)
    ),
    _s("class.pick", "Ctrl+K,L", "Pick a class by name", "Classes"),
    _s("edit.classes", "Ctrl+Shift+K", "Edit classes…", "Classes"),
    _s("edit.undo", "Ctrl+Z", "Undo", "Edit"),
    _s("edit.redo", "Ctrl+Shift+Z,Ctrl+Y", "Redo", "Edit"),
    _s("edit.copy", "Ctrl+C", "Copy selected shapes", "Edit"),
    _s("edit.paste", "Ctrl+V", "Paste shapes", "Edit"),
    _s("edit.copy_previous", "Ctrl+Shift+V", "Copy shapes from the previous image", "Edit"),
    # Backspace stays with the canvas: it removes the last vertex of a polygon being drawn.
    _s("edit.delete", "Del", "Delete the selected shapes (or the active vertex)", "Edit"),
    _s("view.fit", "F", "Fit image to window", "View"),
    _s("view.zoom_100", "Ctrl+1", "Zoom to 100%", "View"),
    _s("view.browser", "Ctrl+B", "Show or hide the image browser", "View"),
    _s("view.classes", "Ctrl+Shift+B", "Show or hide the classes", "View"),
    _s("view.training", "Ctrl+T", "Show or hide the training panel", "View"),
    _s("view.objects", "Ctrl+Shift+O", "Show or hide the objects list", "View"),
    _s(
        "view.inspect",
        "Ctrl+Shift+I",
        "Show or hide the Inspect panel (predictions, errors)",
        "View",
    ),
    _s(
        "view.analysis",
        "Ctrl+Shift+A",
        "Show or hide the Analysis panel (zoom scales, activation maps)",
        "View",
    ),
    _s("view.compact", "Ctrl+G", "Thumbnails or compact list", "View"),
    # Not plain A: that is Previous image, and a key can do one thing (with both, Qt
    # found the key ambiguous and did neither while Inspect was open).
    _s("review.accept", "Shift+A", "Accept the selected prediction as a label", "Inspect"),
    _s("review.reject", "R", "Reject (hide) the selected prediction", "Inspect"),
    _s("file.new", "Ctrl+N", "New project…", "File"),
    _s("file.open", "Ctrl+O", "Open project…", "File"),
    _s("file.open_folder", "Ctrl+U", "Open a folder of images (labels beside them)", "File"),
    _s("file.import_images", "Ctrl+I", "Import images…", "File"),
    _s("file.quit", "Ctrl+Q", "Quit", "File"),
    _s("help.shortcuts", "?,F1", "Keyboard shortcuts", "Help"),
)
SPECS = {s.id: s for s in SHORTCUTS}


class ShortcutRegistry:
    """Keys for each action id: the user's override (QSettings "shortcuts/<id>") or the
    default. Bound actions follow changes."""

    def __init__(self) -> None:
        self._actions: dict[str, list[QAction]] = {}

    @staticmethod
    def default_keys(action_id: str) -> list[QKeySequence]:
        return [QKeySequence(k) for k in SPECS[action_id].keys]

    def keys(self, action_id: str) -> list[QKeySequence]:
        value = settings().value(f"shortcuts/{action_id}")
        if value is None:
            return self.default_keys(action_id)
        texts = [value] if isinstance(value, str) else list(value)
        return [QKeySequence(t) for t in texts if t]

    def set_keys(self, action_id: str, keys: list[QKeySequence]) -> None:
        s = settings()
        texts = [k.toString(QKeySequence.SequenceFormat.PortableText) for k in keys]
        if texts == [k.toString() for k in self.default_keys(action_id)]:
            s.remove(f"shortcuts/{action_id}")
        else:
            # An empty list is stored as "" so "no shortcut" differs from "default".
            s.setValue(f"shortcuts/{action_id}", texts or "")
        self._apply(action_id)

    def reset_all(self) -> None:
        settings().remove("shortcuts")
        for action_id in self._actions:
            self._apply(action_id)

    def bind(self, action: QAction, action_id: str) -> QAction:
        spec = SPECS[action_id]
        self._actions.setdefault(action_id, []).append(action)
        action.setToolTip(spec.description)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self._set_action_keys(action, action_id)
        return action

    def _apply(self, action_id: str) -> None:
        for action in self._actions.get(action_id, []):
            self._set_action_keys(action, action_id)

    def _set_action_keys(self, action: QAction, action_id: str) -> None:
        action.setShortcuts(self.keys(action_id))

    def conflicts(self) -> dict[str, list[str]]:
        """Key text -> action ids, for keys bound to more than one action."""
        used: dict[str, list[str]] = {}
        for spec in SHORTCUTS:
            for k in self.keys(spec.id):
                used.setdefault(k.toString(), []).append(spec.id)
        return {k: ids for k, ids in used.items() if len(ids) > 1}


def keys_text(keys: list[QKeySequence]) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)


class ShortcutsDialog(QDialog):
    """Every shortcut, by group. Double-click a row to record new keys."""

    HELP = (
        "Double-click a row to change its keys (press the new key; Backspace clears the "
        "recording). Changes apply at once and are saved for your user account "
        "(QSettings, section [shortcuts]); 'Reset all' restores the defaults. "
        "A key can do one thing: taking one that is in use swaps the two actions' keys. "
        "Keys 1-9 pick the classes that have them (Classes ▸ Edit… ▸ Key…)."
    )

    def __init__(self, registry: ShortcutRegistry, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.setWindowTitle("Keyboard shortcuts")
        layout = QVBoxLayout(self)
        help_label = QLabel(self.HELP)
        help_label.setWordWrap(True)
        layout.addWidget(help_label)
        layout.addWidget(self._build_table(), 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        reset = QPushButton("Reset all")
        reset.clicked.connect(self._reset_all)
        buttons.addButton(reset, QDialogButtonBox.ButtonRole.ResetRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(620, 640)

    def _build_table(self) -> QTableWidget:
        self.table = QTableWidget(len(SHORTCUTS), 3)
        self.table.setHorizontalHeaderLabels(["Group", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.edit_row(row))
        self._fill()
        return self.table

    def _fill(self) -> None:
        for row, spec in enumerate(SHORTCUTS):
            for col, text in enumerate(
                (spec.group, spec.description, keys_text(self.registry.keys(spec.id)))
            ):
                self.table.setItem(row, col, QTableWidgetItem(text))

    def rows(self) -> list[tuple[str, str, str]]:
        """(group, description, keys) as shown, for tests and docs."""
        return [
            tuple(self.table.item(r, c).text() for c in range(3))  # type: ignore[misc]
            for r in range(self.table.rowCount())
        ]

    def edit_row(self, row: int) -> None:
        spec = SHORTCUTS[row]
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Shortcut: {spec.description}")
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel("Press the new key (or combination):"))
        edit = QKeySequenceEdit(dialog)
        keys = self.registry.keys(spec.id)
        if keys:
            edit.setKeySequence(keys[0])
        layout.addWidget(edit)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.assign(spec.id, edit.keySequence())

    def assign(self, action_id: str, seq: QKeySequence) -> bool:
        """Make `seq` the first key of `action_id` (empty: remove it). A key that another
        action has is never shared: the user is asked to swap (the other action gets
        this one's old key) or keep things as they are. True when something changed."""
        keys = self.registry.keys(action_id)
        old = keys[0] if keys else None
        # The first key is replaced; any further default keys (Left for A, ...) stay.
        new = ([] if seq.isEmpty() else [seq]) + [k for k in keys[1:] if k != seq]
        holders = [] if seq.isEmpty() else [
            s.id for s in SHORTCUTS if s.id != action_id and seq in self.registry.keys(s.id)
        ]  # fmt: skip
        if holders:
            key, names = keys_text([seq]), ", ".join(f"“{SPECS[h].description}”" for h in holders)
            gets = keys_text([old]) if old is not None and old != seq else "no key"
            answer = plain_text.ask(
                self,
                "Shortcut in use",
                f"{key} is already the key of {names}.\n\nSwap them? {names} then gets {gets}.",
            )
            if not answer:
                return False
            for h in holders:
                theirs = [old if k == seq else k for k in self.registry.keys(h)]
                self.registry.set_keys(h, [k for k in theirs if k is not None and k != seq])
        self.registry.set_keys(action_id, new)
        self._fill()
        return True

    def _reset_all(self) -> None:
        self.registry.reset_all()
        self._fill()

"""Edit classes: add, rename, recolour, reorder (drag or Up/Down), set a class's key,
merge and delete. Keys 1-9 stay with their class whatever the order.

Every button is one undoable project command. Merge and delete change shapes, so they
first say how many and ask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.undo.commands import SetClassHotkey
from studio.ui.classes.choosers import MergeTargetDialog, key_choices
from studio.ui.classes.dock import ClassIdRole, swatch
from studio.ui.common import plain_text
from studio.ui.common.errors import show_error

_YES = QMessageBox.StandardButton.Yes
_NO = QMessageBox.StandardButton.No


class ClassDialog(QDialog):
    def __init__(self, project: Project, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Classes")
        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        left.addWidget(self._build_list(), 1)
        left.addWidget(
            QLabel("Drag to reorder. Keys stay with their class; Key… changes one. Ctrl+Z undoes.")
        )
        layout.addLayout(left, 1)
        layout.addLayout(self._build_buttons())
        # The window's Undo cannot reach a modal dialog: it has its own keys.
        for keys, step in (
            (QKeySequence.StandardKey.Undo, self.project.undo),
            (QKeySequence.StandardKey.Redo, self.project.redo),  # Ctrl+Y, Ctrl+Shift+Z
        ):
            QShortcut(keys, self, activated=lambda step=step: self._step(step))
        self.reload()
        self.resize(480, 420)

    def _step(self, step: Callable[[], str | None]) -> None:
        """Undo or redo one project step (a class edit, or any edit before it)."""
        try:
            step()
        except StudioError as e:
            show_error(self, "Classes", e)
        self.reload()

    def _build_list(self) -> QListWidget:
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.model().rowsMoved.connect(lambda *_: self._commit_order())
        self.list.itemDoubleClicked.connect(lambda _i: self.rename_selected())
        return self.list

    def _build_buttons(self) -> QVBoxLayout:
        col = QVBoxLayout()
        for text, slot in (
            ("Add…", self.add_interactive),
            ("Rename…", self.rename_selected),
            ("Colour…", self.recolor_selected),
            ("Key…", self.set_key_selected),
            ("Up", lambda: self.move_selected(-1)),
            ("Down", lambda: self.move_selected(+1)),
            ("Merge into…", self.merge_selected),
            ("Delete…", self.delete_selected),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            col.addWidget(button)
        col.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        col.addWidget(close)
        return col

    # --- contents ---

    def reload(self) -> None:
        selected = set(self.selected_ids())
        counts = self.project.class_counts()
        keys = self.project.store.classes.hotkeys()
        self.list.clear()
        for c in self.project.classes():
            key = f"  · key {keys[c.id]}" if c.id in keys else ""
            item = QListWidgetItem(
                swatch(c.color), f"{c.name}  ({counts.get(c.id, 0):,} shapes){key}"
            )
            item.setData(ClassIdRole, c.id)
            self.list.addItem(item)
            item.setSelected(c.id in selected)

    def selected_ids(self) -> list[int]:
        return [
            self.list.item(i).data(ClassIdRole)
            for i in range(self.list.count())
            if self.list.item(i).isSelected()
        ]

    def ordered_ids(self) -> list[int]:
        return [self.list.item(i).data(ClassIdRole) for i in range(self.list.count())]

    def _name(self, class_id: int) -> str:
        return next(c.name for c in self.project.classes() if c.id == class_id)

    def _run(self, title: str, fn, *args) -> object:
        try:
            return fn(*args)
        except StudioError as e:
            show_error(self, title, e)
            return None
        finally:
            self.reload()

    # --- actions ---

    def add_interactive(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name:")
        if ok and name.strip():
            self._run("Add class", self.project.add_class, name.strip())

    def rename_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        old = self._name(ids[0])
        name, ok = QInputDialog.getText(self, "Rename class", "Name:", text=old)
        if ok and name.strip() and name.strip() != old:
            self._run("Rename class", self.project.rename_class, ids[0], name.strip())

    def recolor_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        current = next(c.color for c in self.project.classes() if c.id == ids[0])
        color = QColorDialog.getColor(QColor(current), self, "Class colour")
        if color.isValid():
            self._run("Recolour class", self.project.recolor_class, ids[0], color.name())

    def move_selected(self, step: int) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        order = self.ordered_ids()
        i = order.index(ids[0])
        j = i + step
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            self._run("Reorder classes", self.project.reorder_classes, order)

    def _commit_order(self) -> None:
        order = self.ordered_ids()
        if order != [c.id for c in self.project.classes()]:
            # Deferred: the list is still inside its drop handling.
            QTimer.singleShot(0, lambda: self._run("Reorder", self.project.reorder_classes, order))

    def merge_selected(self) -> None:
        sources = self.selected_ids()
        if not sources:
            return
        others = [c for c in self.project.classes() if c.id not in sources]
        if not others:
            return
        chooser = MergeTargetDialog([repr(self._name(s)) for s in sources], others, self)
        if chooser.exec() and chooser.chosen is not None:
            self.merge(sources, chooser.chosen)

    def set_key_selected(self) -> None:
        ids = self.selected_ids()
        if len(ids) != 1:
            return
        classes, keys = self.project.classes(), self.project.store.classes.hotkeys()
        choices = key_choices(classes, keys)
        current = keys.get(ids[0], 0)
        label = f"Key for {self._name(ids[0])!r}:"
        text, ok = QInputDialog.getItem(self, "Class key", label, choices, current, False)
        if ok:
            index = choices.index(text)
            self.set_key(ids[0], index or None)

    def set_key(self, class_id: int, key: int | None) -> None:
        """Give `class_id` the key (1-9, None: none); a class that had it gets the old
        key of this one (undoable)."""
        self._run("Class key", self.project.execute, SetClassHotkey(class_id, key))

    def merge(self, source_ids: Sequence[int], target_id: int) -> int | None:
        """Ask, then move every shape of `source_ids` to `target_id` and delete the
        sources. Returns the number of shapes changed, None when the user declines."""
        sources = [s for s in source_ids if s != target_id]
        if not sources:
            return None
        counts = self.project.class_counts()
        n = sum(counts.get(s, 0) for s in sources)
        src = ", ".join(repr(self._name(s)) for s in sources)
        answer = plain_text.ask(
            self,
            "Merge classes",
            f"Move {n:,} shape{'s' if n != 1 else ''} from {src} to "
            f"{self._name(target_id)!r}, and delete {src}?\nEdit ▸ Undo reverses it.",
        )
        if not answer:
            return None
        return self._run("Merge classes", self.project.merge_classes, sources, target_id)

    def delete_selected(self) -> None:
        for class_id in self.selected_ids():
            if self.delete(class_id) is None:
                break

    def delete(self, class_id: int) -> int | None:
        """Ask, then delete a class and its shapes. Returns shapes deleted, or None."""
        n = self.project.class_counts().get(class_id, 0)
        answer = plain_text.ask(
            self,
            "Delete class",
            f"Delete class {self._name(class_id)!r} and its {n:,} shape{'s' if n != 1 else ''}?"
            "\nEdit ▸ Undo reverses it.",
        )
        if not answer:
            return None
        return self._run("Delete class", self.project.delete_class, class_id)

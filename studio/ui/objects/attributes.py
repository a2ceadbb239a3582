"""The attributes editor under the objects list: occluded, truncated and difficult
checkboxes, a group id and notes, for the selected shapes.

It shows what the selection has in common: a flag that some selected shapes have and
others do not is a partly-ticked box, and a click on it sets it on all of them; a group
or notes that differ show as "mixed" and change only when the user types. Every change
is one undoable `Project.set_attributes` call for the whole selection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from studio.core.records import FLAG_FIELDS, Attributes
from studio.ui.common.check_box import CheckBox

NO_GROUP = -1  # the spin box's value for "no group" (shown as its special text)
MAX_GROUP = 999_999
FLAG_TIPS = {
    "occluded": "Part of the object is hidden behind something else",
    "truncated": "The object extends past the image border (VOC's <truncated>)",
    "difficult": "Hard to recognise; VOC evaluation ignores it (VOC's <difficult>)",
}


class AttributesEditor(QWidget):
    """Edits the attributes of `ids` through `apply(ids, **fields)` (the project's
    `set_attributes`); disabled while nothing is selected."""

    def __init__(self, apply: Callable[..., None], parent: QWidget | None = None):
        super().__init__(parent)
        self._apply = apply
        self.ids: list[int] = []
        self._shown_group: int = NO_GROUP
        self._build()
        self.show_for([], [])

    def _build(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        flags = QHBoxLayout()
        self.flags: dict[str, QCheckBox] = {}
        for name in FLAG_FIELDS:
            box = CheckBox(name.capitalize())
            box.setToolTip(FLAG_TIPS[name])
            box.clicked.connect(lambda _=False, n=name: self._flag_clicked(n))
            flags.addWidget(box)
            self.flags[name] = box
        flags.addStretch(1)
        form.addRow(flags)
        self.group = QSpinBox()
        self.group.setRange(NO_GROUP, MAX_GROUP)
        self.group.setSpecialValueText("none")
        self.group.setToolTip("Shapes with the same group id belong together (labelme's group_id)")
        self.group.editingFinished.connect(self._group_edited)
        form.addRow("Group", self.group)
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("notes")
        self.notes.editingFinished.connect(self._notes_edited)
        form.addRow("Notes", self.notes)

    def show_for(self, ids: Sequence[int], attributes: Sequence[Attributes]) -> None:
        """Show what the shapes `ids` (with these attributes) have in common."""
        self.ids = list(ids)
        self.setEnabled(bool(self.ids))
        for name, box in self.flags.items():
            values = {getattr(a, name) for a in attributes}
            mixed = len(values) > 1
            box.setTristate(mixed)
            state = (
                Qt.CheckState.PartiallyChecked
                if mixed
                else Qt.CheckState.Checked
                if values == {True}
                else Qt.CheckState.Unchecked
            )
            box.setCheckState(state)
        groups = {a.group_id for a in attributes}
        self._shown_group = NO_GROUP if len(groups) != 1 else _spin_value(groups.pop())
        self.group.setSpecialValueText("none" if len(groups) <= 1 else "mixed")
        self.group.blockSignals(True)
        self.group.setValue(self._shown_group)
        self.group.blockSignals(False)
        notes = {a.notes for a in attributes}
        self.notes.setText(notes.pop() if len(notes) == 1 else "")
        self.notes.setPlaceholderText("notes" if len(notes) <= 1 else "mixed")
        self.notes.setModified(False)

    def _flag_clicked(self, name: str) -> None:
        box = self.flags[name]
        # A partly-ticked box goes to ticked on a click (Qt's tristate order); after
        # that it is a plain two-state box again.
        value = box.checkState() != Qt.CheckState.Unchecked
        box.setTristate(False)
        box.setChecked(value)
        self._set(**{name: value})

    def _group_edited(self) -> None:
        value = self.group.value()
        if value != self._shown_group:
            self._shown_group = value
            self._set(group_id=None if value == NO_GROUP else value)

    def _notes_edited(self) -> None:
        if self.notes.isModified():
            self.notes.setModified(False)
            self._set(notes=self.notes.text().strip())

    def _set(self, **fields: Any) -> None:
        if self.ids:
            self._apply(self.ids, **fields)


def _spin_value(group_id: int | None) -> int:
    return NO_GROUP if group_id is None else min(group_id, MAX_GROUP)

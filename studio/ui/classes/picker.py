"""The class picker (Ctrl+K / L): type to filter, for projects with more classes than
keys 1-9."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio.core.records import ClassRecord
from studio.ui.classes.dock import ClassIdRole, swatch

_NAME_ROLE = ClassIdRole + 1  # the lower-case name the search matches


class ClassPicker(QDialog):
    """Type to filter, Enter or double-click to choose. `chosen` is the class id."""

    def __init__(self, classes: list[ClassRecord], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Pick a class")
        self.chosen: int | None = None
        self.search = QLineEdit(placeholderText="Type to search classes…")
        self.list = QListWidget()
        for pos, c in enumerate(classes):
            key = f"  [{pos + 1}]" if pos < 9 else ""
            item = QListWidgetItem(swatch(c.color), f"{c.name}{key}")
            item.setData(ClassIdRole, c.id)
            item.setData(_NAME_ROLE, c.name.lower())
            self.list.addItem(item)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._accept_current)
        self.list.itemActivated.connect(lambda _i: self._accept_current())
        self.list.setCurrentRow(0)
        self.resize(320, 400)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hide = needle not in item.data(_NAME_ROLE)
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        if first is not None:
            self.list.setCurrentItem(first)

    def _accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self.chosen = item.data(ClassIdRole)
            self.accept()

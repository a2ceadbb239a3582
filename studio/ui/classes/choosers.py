"""Small choices the class dialog asks for: the class a merge keeps (chosen, never
preselected: a wrong default silently relabels shapes) and a class's key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.records import ClassRecord
from studio.ui.classes.dock import swatch
from studio.ui.common.plain_text import plain_label


class MergeTargetDialog(QDialog):
    """Pick the class that the merged shapes go to. OK stays disabled until one is
    picked; `chosen` is its id afterwards."""

    def __init__(
        self, sources: Sequence[str], targets: Sequence[ClassRecord], parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setWindowTitle("Merge classes")
        self.targets = list(targets)
        self.chosen: int | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"Move the shapes of {', '.join(sources)} to:"))
        self.combo = QComboBox()
        for c in self.targets:
            self.combo.addItem(swatch(c.color), c.name, c.id)
        self.combo.setPlaceholderText("Choose the class to keep…")
        self.combo.setCurrentIndex(-1)
        self.combo.currentIndexChanged.connect(self._on_changed)
        layout.addWidget(self.combo)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.ok_button.setEnabled(False)
        layout.addWidget(self.buttons)

    @property
    def ok_button(self):  # noqa: ANN201 - a QPushButton
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    def _on_changed(self, index: int) -> None:
        self.chosen = self.combo.itemData(index) if index >= 0 else None
        self.ok_button.setEnabled(self.chosen is not None)


def key_choices(classes: Sequence[ClassRecord], keys: Mapping[int, int]) -> list[str]:
    """The entries of the key menu: "No key", then "1" ... "9", each naming the class
    that has it now (choosing a taken key swaps the two classes' keys)."""
    holder = {key: c.name for c in classes for cid, key in keys.items() if cid == c.id}
    return ["No key"] + [
        f"{k}  (now {holder[k]}: it gets the old key)" if k in holder else str(k)
        for k in range(1, 10)
    ]

"""The browser's bulk actions on the selected images: status, split and delete, from the
buttons under the list and the list's context menu. A mixin of `BrowserDock` (it needs
the dock's `view`, `project`, `selected_ids` and `_on_selection_changed`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton

from studio.core.kinds import ImageStatus, Split
from studio.ui.browser.model import STATUS_LABELS
from studio.ui.common import plain_text


class BulkActions:
    """Status / Split / Delete… for the selection (mixed into `BrowserDock`)."""

    project: Any
    view: Any

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.count_label = QLabel("")
        self.status_button = QToolButton(text="Status")
        self.split_button = QToolButton(text="Split")
        self.delete_button = QToolButton(text="Delete…")
        status_menu, split_menu = QMenu(self), QMenu(self)
        for s in ImageStatus:
            status_menu.addAction(STATUS_LABELS[s], lambda s=s: self.set_status_selected(s))
        for s in Split:
            split_menu.addAction(s.value, lambda s=s: self.set_split_selected(s))
        self.status_button.setMenu(status_menu)
        self.split_button.setMenu(split_menu)
        for b in (self.status_button, self.split_button):
            b.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            b.setToolTip("Set for every selected image")
        self.delete_button.setToolTip("Remove the selected images from the project")
        self.delete_button.clicked.connect(self.delete_selected)
        row.addWidget(self.count_label, 1)
        row.addWidget(self.status_button)
        row.addWidget(self.split_button)
        row.addWidget(self.delete_button)
        self._on_selection_changed()
        return row

    def set_status_selected(self, status: str) -> None:
        ids = self.selected_ids()
        if ids and self.project is not None:
            self.project.set_status(ids, status)

    def set_split_selected(self, split: str) -> None:
        ids = self.selected_ids()
        if ids and self.project is not None:
            self.project.set_split(ids, split)

    def delete_selected(self) -> bool:
        ids = self.selected_ids()
        if not ids or self.project is None:
            return False
        n = len(ids)
        what = "this image" if n == 1 else f"these {n:,} images"
        answer = plain_text.ask(
            self,
            "Delete images",
            f"Remove {what} and {'its' if n == 1 else 'their'} shapes from the project?\n"
            "The files stay on disk. Edit ▸ Undo brings them back.",
        )
        if not answer:
            return False
        self.project.delete_images(ids)
        return True

    def _context_menu(self, pos) -> None:
        if not self.view.selectionModel().hasSelection():
            return
        menu = QMenu(self)
        menu.addMenu(self.status_button.menu()).setText("Set status")
        menu.addMenu(self.split_button.menu()).setText("Set split")
        menu.addSeparator()
        delete = QAction("Delete…", menu)
        delete.triggered.connect(self.delete_selected)
        menu.addAction(delete)
        menu.exec(self.view.viewport().mapToGlobal(pos))

"""The classes dock: colour, name, shape count and visibility of every class.

The searchable picker (Ctrl+K / L) is in picker.py, the edit dialog in dialog.py."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.core.records import ClassRecord
from studio.ui.common.errors import show_error

ClassIdRole = Qt.ItemDataRole.UserRole
MAX_WIDTH = 420  # pixels: past this a long name is elided rather than squeezing the canvas
CHROME_PX = 76  # checkbox, swatch, section padding, frame and scroll bar


def swatch(color: str, size: int = 14) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(color))
    return QIcon(pm)


class ClassDock(QDockWidget):
    """Emits `class_picked` when the user clicks a class (it becomes the current one,
    for new shapes and the selected ones) and `hidden_changed` with the ids of classes
    whose boxes the canvas should hide."""

    class_picked = Signal(int)
    hidden_changed = Signal(list)
    edit_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Classes", parent)
        self.setObjectName("class_dock")
        self.project: Project | None = None
        self.current_class: int | None = None
        self._hidden: set[int] = set()
        self._filling = False
        self._ticked = False  # a box was just ticked or unticked (see _on_clicked)
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_tree(), 1)
        layout.addLayout(self._build_buttons())
        self.setWidget(body)

    def _build_tree(self) -> QTreeWidget:
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Key", "Class", "Shapes"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)  # the name column takes the spare width
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setToolTip(
            "Click a class (or press its key) to draw with it and to re-class the selected "
            "shapes. Untick to hide its shapes."
        )
        self.tree.itemClicked.connect(self._on_clicked)
        self.tree.itemChanged.connect(self._on_item_changed)
        return self.tree

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.add_edit = QLineEdit(placeholderText="New class…")
        self.add_edit.returnPressed.connect(self._add_from_edit)
        edit = QPushButton("Edit…")
        edit.setToolTip("Rename, recolour, reorder, merge and delete classes")
        edit.clicked.connect(self.edit_requested)
        row.addWidget(self.add_edit, 1)
        row.addWidget(edit)
        return row

    # --- contents ---

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self._hidden.clear()
        self.current_class = None
        self.refresh()

    def classes(self) -> list[ClassRecord]:
        return self.project.classes() if self.project is not None else []

    def refresh(self, *_: object) -> None:
        classes = self.classes()
        counts = self.project.class_counts() if self.project is not None else {}
        keys = self.hotkeys()
        ids = {c.id for c in classes}
        self._hidden &= ids
        if self.current_class not in ids:
            self.current_class = classes[0].id if classes else None
        self._filling = True
        try:
            self.tree.clear()
            for c in classes:
                key = str(keys[c.id]) if c.id in keys else ""
                item = QTreeWidgetItem([key, c.name, f"{counts.get(c.id, 0):,}"])
                item.setData(0, ClassIdRole, c.id)
                item.setIcon(1, swatch(c.color))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                hidden = c.id in self._hidden
                item.setCheckState(0, Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)
                item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight)
                self.tree.addTopLevelItem(item)
                if c.id == self.current_class:
                    self.tree.setCurrentItem(item)
        finally:
            self._filling = False
        self._fit_names(classes, counts)

    def _fit_names(self, classes: list[ClassRecord], counts: dict[int, int]) -> None:
        """Make the list wide enough for the longest name beside the key (with its
        checkbox), the colour swatch and the widest count; capped at MAX_WIDTH pixels."""
        fm = self.tree.fontMetrics()
        longest = max((fm.horizontalAdvance(c.name) for c in classes), default=0)
        widest_count = max((fm.horizontalAdvance(f"{n:,}") for n in counts.values()), default=0)
        others = fm.horizontalAdvance("Key") + max(widest_count, fm.horizontalAdvance("Shapes"))
        self.tree.setMinimumWidth(min(longest + others + CHROME_PX, MAX_WIDTH))

    def wanted_height(self, max_rows: int = 10) -> int:
        """Pixels the dock needs to show its classes (up to `max_rows` of them) without
        empty rows: what it keeps when a panel opened below takes the room (dock_room)."""
        rows = max(1, min(self.tree.topLevelItemCount(), max_rows))
        row = self.tree.sizeHintForRow(0) if self.tree.topLevelItemCount() else 18
        tree = self.tree.header().sizeHint().height() + rows * row + 2 * self.tree.frameWidth()
        return self.height() - self.tree.height() + tree

    def hotkeys(self) -> dict[int, int]:
        """{class id: key 1-9}: each class keeps its key (Classes ▸ Key… changes it)."""
        return self.project.store.classes.hotkeys() if self.project is not None else {}

    def class_for_key(self, n: int) -> int | None:
        """The class that key `n` (1-9) picks, or None."""
        return next((cid for cid, key in self.hotkeys().items() if key == n), None)

    def set_current_class(self, class_id: int | None) -> None:
        self.current_class = class_id
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ClassIdRole) == class_id:
                self.tree.setCurrentItem(item)

    def hidden_classes(self) -> list[int]:
        return sorted(self._hidden)

    def set_hidden(self, class_id: int, hidden: bool) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, ClassIdRole) == class_id:
                state = Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked
                item.setCheckState(0, state)  # -> _on_item_changed

    # --- user ---

    def _on_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if self._ticked:  # the click was on the box that shows or hides the class
            self._ticked = False
            return
        class_id = item.data(0, ClassIdRole)
        self.current_class = class_id
        self.class_picked.emit(class_id)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        class_id = item.data(0, ClassIdRole)
        # A click that ticks the box also says "clicked" next: hiding a class must not
        # make it the class of the selected shapes. Forgotten after this event.
        self._ticked = True
        QTimer.singleShot(0, self._forget_tick)
        if item.checkState(0) == Qt.CheckState.Checked:
            self._hidden.discard(class_id)
        else:
            self._hidden.add(class_id)
        self.hidden_changed.emit(self.hidden_classes())

    def _forget_tick(self) -> None:
        self._ticked = False

    def _add_from_edit(self) -> None:
        name = self.add_edit.text().strip()
        if not name or self.project is None:
            return
        try:
            class_id = self.project.add_class(name)
        except Exception as e:  # noqa: BLE001 - a duplicate name, shown to the user
            show_error(self, "Add class", e)
            return
        self.add_edit.clear()
        self.current_class = class_id
        self.refresh()
        self.class_picked.emit(class_id)

"""Recently opened projects (QSettings) and the start page shown without a project."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import DB_NAME
from studio.ui.common.settings import settings

MAX_RECENT = 10
_KEY = "recent/projects"


def recent_projects() -> list[Path]:
    """Most recent first; folders that are no longer projects are left out."""
    value = settings().value(_KEY) or []
    paths = [value] if isinstance(value, str) else list(value)
    return [Path(p) for p in paths if (Path(p) / DB_NAME).is_file()]


def add_recent(path: Path) -> None:
    path = Path(path).resolve()
    paths = [p for p in recent_projects() if p != path]
    settings().setValue(_KEY, [str(p) for p in [path, *paths][:MAX_RECENT]])


def remove_recent(path: Path) -> None:
    settings().setValue(_KEY, [str(p) for p in recent_projects() if p != Path(path)])


class StartPage(QWidget):
    """Recent projects and the four ways to begin."""

    new_requested = Signal()
    open_requested = Signal()
    folder_requested = Signal()
    demo_requested = Signal()
    recent_chosen = Signal(Path)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.addStretch(1)
        title = QLabel("<h1>Studio</h1><p>Label images, train detectors, inspect them.</p>")
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        column.addWidget(title)
        column.addLayout(self._build_buttons())
        column.addWidget(QLabel("<b>Recent projects</b>"))
        column.addWidget(self._build_recent_list(), 1)
        column.addStretch(1)
        outer.addLayout(column, 2)
        outer.addStretch(1)
        self.reload()

    def _build_buttons(self) -> QGridLayout:
        # One a row: the start page must not force the window wider than a laptop screen.
        grid = QGridLayout()
        for i, (text, signal) in enumerate(
            (
                ("New project…", self.new_requested),
                ("Open project…", self.open_requested),
                ("Open folder of images…", self.folder_requested),
                ("Open demo project", self.demo_requested),
            )
        ):
            button = QPushButton(text)
            button.clicked.connect(signal)
            grid.addWidget(button, i, 0)
        return grid

    def _build_recent_list(self) -> QListWidget:
        self.recent_list = QListWidget()
        self.recent_list.setMinimumHeight(160)
        self.recent_list.itemActivated.connect(
            lambda item: self.recent_chosen.emit(Path(item.data(Qt.ItemDataRole.UserRole)))
        )
        return self.recent_list

    def reload(self) -> None:
        self.recent_list.clear()
        for p in recent_projects():
            item = QListWidgetItem(f"{p.name}    —    {p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            self.recent_list.addItem(item)
        if not self.recent_list.count():
            item = QListWidgetItem("No recent projects yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent_list.addItem(item)

"""The Advanced section's "weights folder": where Studio looks for torchvision's pretrained
files (by their published names) before torch's cache and before any download, so that an
offline machine trains on a pretrained backbone once someone copies the files there.

The folder is a project setting (`WEIGHTS_DIR_KEY`, read by
`studio.ml.run.process.use_weights_setting`), not a training setting: it changes what one
click chooses (an ImageNet MobileNet instead of the from-scratch CSP detector), so the
dock saves it and asks the ML side again. Each edit is checked as it is typed: a path
that is not an existing folder turns the field red, its tooltip says why, and it is never
saved. A valid path (or an empty field: no folder) is applied when the user presses Enter,
leaves the field or picks a folder with Browse….
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

# process.WEIGHTS_DIR_SETTING, named here without importing torch (process.py imports it).
WEIGHTS_DIR_KEY = "weights_dir"
INVALID_STYLE = "QLineEdit { background: #ffd6d6; border: 1px solid #d0021b; }"
HINT = (
    "torchvision's files by their published names, e.g. mobilenet_v3_large-5c1a4163.pth; "
    "`studio weights` lists them"
)
TOOLTIP = (
    "A folder Studio searches for pretrained weights before torch's cache and before "
    f"downloading (besides $STUDIO_WEIGHTS_DIR): {HINT}."
)


def folder_problem(text: str) -> str | None:
    """Why `text` cannot be the weights folder (None: it can; an empty text means none)."""
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        return f"{text}: give the folder's full path"
    if not path.exists():
        return f"{text}: no such folder"
    if not path.is_dir():
        return f"{text}: a file, not a folder"
    return None


class WeightsFolderField(QWidget):
    """A folder path with Browse… and a hint, checked as it is typed.

    `folder_changed(path)` fires when a valid path different from the applied one is
    applied ("" for no folder); `set_folder` shows the project's value without firing."""

    folder_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = ""  # the folder last applied (saved in the project)
        self.edit = QLineEdit(placeholderText="none: torch's cache only")
        self.edit.setToolTip(TOOLTIP)
        self.edit.textEdited.connect(self._check)
        self.edit.editingFinished.connect(self._apply)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted: a hint
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addLayout(row)
        box.addWidget(self.hint)

    def set_folder(self, folder: str | None) -> None:
        """Show `folder` (the project's setting; None or "": none) without firing."""
        self.folder = str(folder or "")
        self.edit.setText(self.folder)
        self._check(self.folder)

    @property
    def problem(self) -> str | None:
        """What is wrong with the text shown (None when it is valid)."""
        return folder_problem(self.edit.text())

    def _check(self, text: str) -> bool:
        problem = folder_problem(text)
        self.edit.setStyleSheet("" if problem is None else INVALID_STYLE)
        self.edit.setToolTip(TOOLTIP if problem is None else f"{problem}: not saved.\n{TOOLTIP}")
        return problem is None

    def _apply(self) -> None:
        if not self._check(self.edit.text()):
            return  # refused: the red field stays until it is fixed, nothing is saved
        folder = self.edit.text().strip()
        if folder != self.folder:
            self.folder = folder
            self.folder_changed.emit(folder)

    def _browse(self) -> None:
        start = self.folder or str(Path.home())
        path = QFileDialog.getExistingDirectory(self, "Weights folder", start)
        if path:
            self.edit.setText(path)
            self._apply()

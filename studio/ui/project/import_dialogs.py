"""The import's two dialogs: what to import (with "skip images that are not found"), and
what an import left out, listed file by file.

The choice to skip missing images is the user's, kept in their settings: it applies to
the next import from the menu and to files dropped on the window alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ui.common.check_box import CheckBox
from studio.ui.common.plain_text import plain_label
from studio.ui.common.settings import settings

SKIP_MISSING_KEY = "import/skip_missing"
SKIP_MISSING_TEXT = "Skip images that are not found (import the rest and list them)"


def for_window(exc: BaseException) -> BaseException:
    """The error as the window shows it: without the hint for the command line
    ("pass --images ...") that some import errors carry (see `with_cli_hint`)."""
    plain = getattr(exc, "without_hint", None)
    return plain if isinstance(plain, BaseException) else exc


def saved_skip_missing() -> bool:
    """Whether imports leave out images that are not found (default: no, they fail)."""
    return str(settings().value(SKIP_MISSING_KEY, "false")).lower() in ("true", "1")


def save_skip_missing(on: bool) -> None:
    settings().setValue(SKIP_MISSING_KEY, bool(on))


@dataclass(frozen=True)
class ImportChoice:
    """What the user chose: the annotation file or folder, the images folder (None:
    beside the annotations, or already in the project) and whether missing images are
    skipped."""

    path: Path
    images: Path | None
    skip_missing: bool


class ImportDialog(QDialog):
    """File ▸ Import annotations ▸ <format>…: the annotations, where the images are, and
    the skip-missing choice. `choice()` after it is accepted."""

    def __init__(self, label: str, file_filter: str | None, parent: QWidget | None = None):
        """`file_filter`: the format is one file ("COCO JSON (*.json)"), None: a folder."""
        super().__init__(parent)
        self.setWindowTitle(f"Import {label}")
        self._file_filter = file_filter
        form = QFormLayout()
        self.source = QLineEdit()
        self.source.setPlaceholderText(
            f"a {file_filter.split('(')[0].strip()} file" if file_filter else "the dataset folder"
        )
        form.addRow("Annotations:", self._with_browse(self.source, self._browse_source))
        self.images = QLineEdit()
        self.images.setPlaceholderText("optional: beside the annotations, or in the project")
        form.addRow("Images folder:", self._with_browse(self.images, self._browse_images))
        self.skip_missing = CheckBox(SKIP_MISSING_TEXT)
        self.skip_missing.setToolTip(
            "Off: an image the annotations name that is not found stops the import and "
            "nothing is imported. On: that image and its shapes are left out, the rest "
            "is imported in one go, and the report lists what was left out."
        )
        self.skip_missing.setChecked(saved_skip_missing())
        ok = QDialogButtonBox.StandardButton.Ok
        self.buttons = QDialogButtonBox(ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.source.textChanged.connect(self._update_ok)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.skip_missing)
        layout.addWidget(self.buttons)
        self.resize(620, self.sizeHint().height())
        self._update_ok()

    def _with_browse(self, edit: QLineEdit, browse: object) -> QWidget:
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        box.addWidget(button)
        return row

    def _browse_source(self) -> None:
        if self._file_filter:
            path, _ = QFileDialog.getOpenFileName(self, "Annotations", "", self._file_filter)
        else:
            path = QFileDialog.getExistingDirectory(self, "Annotations: the dataset folder")
        if path:
            self.source.setText(path)

    def _browse_images(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "The folder that holds the images")
        if path:
            self.images.setText(path)

    def _update_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.source.text().strip()))

    def accept(self) -> None:
        save_skip_missing(self.skip_missing.isChecked())
        super().accept()

    def choice(self) -> ImportChoice:
        images = self.images.text().strip()
        return ImportChoice(
            Path(self.source.text().strip()),
            Path(images) if images else None,
            self.skip_missing.isChecked(),
        )


class ImportReportDialog(QDialog):
    """What an import did, and file by file what it left out: the images not found (with
    the annotation file that names each), then other skipped files and warnings."""

    def __init__(
        self,
        parent: QWidget | None,
        headline: str,
        missing: Sequence[tuple[str, str]],
        details: Sequence[str],
    ):
        """`missing`: (image name, where it is named) per image left out; `details`:
        one line per other skipped file or warning."""
        super().__init__(parent)
        self.setWindowTitle("Import finished")
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(headline))
        self.missing = QTreeWidget()
        self.missing.setHeaderLabels(["Image not found", "Named in"])
        self.missing.setRootIsDecorated(False)
        for name, where in missing:
            self.missing.addTopLevelItem(QTreeWidgetItem([name, where]))
        self.missing.resizeColumnToContents(0)
        if missing:
            n = len(missing)
            layout.addWidget(
                plain_label(
                    f"{n} image{'s' if n != 1 else ''} not found, left out with "
                    "their shapes (nothing else was changed for them):"
                )  # fmt: skip
            )
            layout.addWidget(self.missing, 2)
        self.details = QPlainTextEdit("\n".join(details))
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        if details:
            layout.addWidget(plain_label("Other files skipped, and warnings:"))
            layout.addWidget(self.details, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy list", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_list)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._missing = list(missing)
        self.resize(760, 460)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def text(self) -> str:
        """Everything listed, one line each, as "Copy list" puts it on the clipboard."""
        lines = [f"{name}\t{where}" for name, where in self._missing]
        return "\n".join(lines + self.details.toPlainText().splitlines())

    def copy_list(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

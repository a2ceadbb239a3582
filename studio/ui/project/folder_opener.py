"""File ▸ Open folder… and File ▸ New project… for the window.

Open folder makes (or reopens) the project of a folder of images and imports what is new
in it, labels beside the images included (`studio.core.open_folder`, the same step as
`studio FOLDER`), in a worker thread behind a progress dialog; then the window shows the
project and a report. A folder that is a project is simply opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.core.errors import StudioError
from studio.core.open_folder import (
    FolderOpened,
    existing_project_dir,
    is_project,
    open_folder,
)
from studio.core.progress import Progress
from studio.core.project import Project
from studio.ui.common.concurrency import Task, run_with_progress
from studio.ui.common.errors import show_error
from studio.ui.common.plain_text import message_box
from studio.ui.project.import_dialogs import for_window


class FolderOpener(QObject):
    """Open folder… and New project… for `window` (a MainWindow: `open_path`,
    `open_project`, `refresh_all`, `project`). The text of the last report is kept in
    `last_report` and shown in a non-blocking message box (`report_box`)."""

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.task: Task | None = None
        self.last_report = ""
        self.report_box: QMessageBox | None = None

    # --- File ▸ Open folder… ---

    def open_folder_interactive(self) -> Task | None:
        folder = QFileDialog.getExistingDirectory(
            self.window, "Open a folder of images (labelme, VOC or YOLO labels beside them)"
        )
        return self.open(Path(folder)) if folder else None

    def open(self, folder: Path, project_dir: Path | None = None) -> Task | None:
        """Open `folder`: a project as it is, else a folder of images through its
        project (FOLDER/.studio, or `project_dir`, or where the user picks when the
        folder cannot be written to)."""
        if is_project(folder):
            self.window.open_path(folder)
            return None
        if project_dir is None and existing_project_dir(folder) is None:
            if not os.access(folder, os.W_OK):
                picked = QFileDialog.getExistingDirectory(
                    self.window, f"{folder.name} is read-only: where should its project go?"
                )
                if not picked:
                    return None
                project_dir = Path(picked)

        def work(progress: Progress) -> FolderOpened:
            return open_folder(folder, project_dir, progress)

        def failed(exc: BaseException) -> None:  # in the window's words: no flags
            show_error(self.window, "Opening folder", for_window(exc))

        self.task = run_with_progress(self.window, "Opening folder", work, self._opened, failed)
        return self.task

    def _opened(self, opened: FolderOpened) -> None:
        current = self.window.project
        if current is not None and current.path == opened.project_dir:
            self.window.refresh_all()  # the work wrote through its own connection
        elif not self.window.open_path(opened.project_dir):
            return
        details = opened.details()
        self.last_report = "\n".join(opened.summary_lines() + details)
        box = message_box(
            self.window,
            QMessageBox.Icon.Warning if details else QMessageBox.Icon.Information,
            "Folder opened",
            "\n".join(opened.summary_lines()),
        )
        if details:
            box.setInformativeText(f"{len(details)} file(s) skipped or with warnings.")
            box.setDetailedText("\n".join(details))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.report_box = box
        box.open()  # window-modal but not blocking

    # --- File ▸ New project… ---

    def new_project_interactive(self) -> None:
        """Ask for a project folder by name: a new one is created, an existing empty
        one used. (A folder of images is better opened with Open folder….)"""
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            "New project: name a folder (created if it does not exist)",
            "",
            "",
            options=QFileDialog.Option.ShowDirsOnly | QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.new_project(Path(path))

    def new_project(self, folder: Path) -> bool:
        try:
            project = Project.create(folder)
        except StudioError as e:
            show_error(self.window, "New project", e)
            return False
        self.window.open_project(project)
        return True

"""Project jobs behind a progress dialog: imports, exports, the demo project."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.core.errors import MissingImageError, StudioError
from studio.core.import_report import ImportReport
from studio.core.kinds import Split
from studio.core.progress import Progress
from studio.ui.common.concurrency import Task, run_with_progress
from studio.ui.common.errors import show_error
from studio.ui.common.plain_text import message_box
from studio.ui.project.import_dialogs import (
    SKIP_MISSING_TEXT,
    ImportDialog,
    ImportReportDialog,
    for_window,
    saved_skip_missing,
)

# (format or None to detect it, file or folder, images folder or None) per dropped item
ImportJob = tuple[str | None, Path, Path | None]
ImportResult = tuple[list[tuple[str, Any]], list[tuple[str, str]]]


# --- the work, in a worker thread: plain functions of a folder, no Qt, no shared session ---


def run_imports(
    folder: Path, jobs: list[ImportJob], progress: Progress, skip_missing: bool = False
) -> ImportResult:
    """Import into the project at `folder` through a `Project` of this thread's own.
    Returns (name, report) per import and (path, why) per item not recognised.
    `skip_missing`: images an annotation file names but that are not found are left
    out with their shapes (listed in the report) instead of failing the import.

    Every annotation file is read and checked before anything is written, so one bad
    file of a drop stops the whole drop. Should a later step still fail, the error
    carries what landed before it (`landed`)."""
    from studio.core.importing import (
        collect_image_files,
        detect_format,
        import_dataset,
        import_images,
        read_annotations,
    )
    from studio.core.project import Project

    reports: list[tuple[str, Any]] = []
    unknown: list[tuple[str, str]] = []
    kinds = [(fmt or detect_format(p), p, images_dir) for fmt, p, images_dir in jobs]
    for fmt, path, _ in kinds:
        if fmt is None:
            unknown.append((str(path), "not images nor a known annotation format"))
        elif fmt == "project":
            unknown.append((str(path), "a Studio project: open it with File ▸ Open project…"))
    images = [p for fmt, p, _ in kinds if fmt == "images"]
    annotations = [k for k in kinds if k[0] not in (None, "images", "project")]
    # The images the drop brings, by name, for annotation files beside them: listed
    # only when there are such files (the image import lists its folders again).
    coming = collect_image_files(images, ImportReport()) if images and annotations else []
    with Project.open(folder) as project:
        specs = [
            (
                path.name,
                read_annotations(project, fmt, path, images_dir, None, skip_missing, coming),
            )
            for fmt, path, images_dir in annotations
        ]
        try:
            if images:  # first, so annotation files can refer to them
                reports.append(("images", import_images(project, images, progress)))
            for name, (spec, missing) in specs:
                report = import_dataset(project, spec, progress=progress)
                report.missing = missing
                reports.append((name, report))
        except StudioError as e:
            e.landed = list(reports)  # type: ignore[attr-defined]
            raise
    return reports, unknown


MAX_REPORT_LINES = 6  # one line per import up to this many; then totals


def summary_lines(reports: list[tuple[str, Any]]) -> list[str]:
    """A line per import ("name: imported ..."), or, for a drop of many files, their
    totals and the first few: a report of 160 lines outgrew the screen, buttons and all."""
    if len(reports) <= MAX_REPORT_LINES:
        return [f"{name}: {r.summary()}" for name, r in reports]
    total = ImportReport()
    for _, r in reports:
        total.added_images += r.added_images
        total.added_annotations += r.added_annotations
        total.added_classes += [c for c in r.added_classes if c not in total.added_classes]
        total.present_images += r.present_images
        total.present_annotations += r.present_annotations
        for kind, n in r.problem_counts.items():
            total.problem(kind, "", n)
    # Annotation files name the images the same drop brought in: those count once.
    total.present_images = max(0, total.present_images - total.added_images)
    shown = [f"{name}: {r.summary().splitlines()[0]}" for name, r in reports[:3]]
    more = len(reports) - len(shown)
    return [f"{len(reports)} imports: {total.summary()}", *shown, f"… and {more} more"]


def run_export(folder: Path, fmt: str, out: Path, split: Split | None) -> list[str]:
    """Export the project at `folder` (its own `Project`); returns the warnings."""
    from studio.core.importing import export_annotations
    from studio.core.project import Project

    with Project.open(folder) as project:
        return export_annotations(project, fmt, out, split)


# --- the window's side: dialogs, progress, reports ---------------------------------------


class Transfers(QObject):
    """Imports, exports and the demo project for a window, each in a worker thread.

    The work opens its own `Project` on the folder (a project is written from one thread
    at a time) and the window re-reads everything when it is done. The report of what
    was skipped is kept in `last_report` and shown in a non-blocking message box.
    """

    FORMAT_LABELS = {
        "coco": "COCO", "yolo": "YOLO", "voc": "Pascal VOC", "labelme": "labelme",
        "cvat": "CVAT for images",
    }  # fmt: skip
    EXPORTS = ("coco", "yolo", "voc", "labelme")  # the formats Studio writes
    # Formats that are one file (the rest: a folder).
    FILE_FILTERS = {"coco": "COCO JSON (*.json)", "cvat": "CVAT XML (*.xml)"}

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.last_report = ""
        self.task: Task | None = None
        # The last dialogs shown (tests and the screenshot helper look at them).
        self.import_dialog: ImportDialog | None = None
        self.report_dialog: ImportReportDialog | None = None
        self.missing_box: QMessageBox | None = None
        self.error_box: QMessageBox | None = None

    # --- imports ---

    def import_paths(self, paths: list[Path]) -> Task | None:
        """Import dropped files and folders: each is recognised with `detect_format`;
        missing images are skipped or not as the import dialog's check box was left."""
        jobs: list[ImportJob] = [(None, Path(p), None) for p in paths]
        return self._import(jobs, skip_missing=saved_skip_missing())

    def import_images_interactive(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Import a folder of images")
        if folder:
            self._import([("images", Path(folder), None)])

    def import_annotations_interactive(self, fmt: str) -> ImportDialog:
        """The import dialog for `fmt` (annotations, images folder, skip missing
        images); the import starts when the user accepts it. Returns the dialog."""
        dialog = ImportDialog(self.FORMAT_LABELS[fmt], self.FILE_FILTERS.get(fmt), self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def start() -> None:
            c = dialog.choice()
            self._import([(fmt, c.path, c.images)], skip_missing=c.skip_missing)

        dialog.accepted.connect(start)
        self.import_dialog = dialog
        dialog.open()
        return dialog

    def _import(self, jobs: list[ImportJob], skip_missing: bool = False) -> Task | None:
        project = self.window.project
        if project is None:
            return None
        work = partial(run_imports, project.path, jobs, skip_missing=skip_missing)
        on_error = partial(self._import_failed, jobs)
        self.task = run_with_progress(self.window, "Importing", work, self._import_done, on_error)
        return self.task

    def _import_failed(self, jobs: list[ImportJob], exc: BaseException) -> None:
        """Say what went wrong in the window's words (no command-line flags: a message
        with a hint for the command line carries `without_hint`). An image the
        annotations name is missing: say which, and offer to import the rest."""
        if not isinstance(exc, StudioError):
            show_error(self.window, "Importing", exc)
            return
        text = str(for_window(exc))
        landed = getattr(exc, "landed", [])
        if landed:  # an earlier part of a drop is in: show it, and say so
            self.window.refresh_all()
            after = "Imported before it:\n" + "\n".join(summary_lines(landed))
        else:
            after = "Nothing was imported."
        self.last_report = f"{text}\n\n{after}"
        missing = isinstance(exc, MissingImageError) and not landed
        box = message_box(
            self.window, QMessageBox.Icon.Warning,
            "Import: an image is missing" if missing else "Import failed",
            self.last_report,
        )  # fmt: skip
        if missing:
            box.setInformativeText(
                "Import the rest, leaving out the images that are not found and their "
                f"shapes? The report lists them. (The import dialog's “{SKIP_MISSING_TEXT}” "
                "does this from the start.)"
            )
            # Only this button imports: OK, Enter and Esc leave the project as it is.
            box.setStandardButtons(QMessageBox.StandardButton.Cancel)
            self.retry_button = box.addButton("Import the rest", QMessageBox.ButtonRole.AcceptRole)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            self.retry_button.clicked.connect(lambda: self._import(jobs, skip_missing=True))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.missing_box = self.error_box = box
        box.open()

    def _import_done(self, result: ImportResult) -> None:
        reports, unknown = result
        self.window.refresh_all()
        lines = summary_lines(reports)
        skipped = [*unknown, *(s for _, r in reports for s in r.skipped)]
        missing = [m for _, r in reports for m in r.missing_images()]
        warnings = [w for _, r in reports for w in r.warnings]
        if unknown:
            lines.append(f"{len(unknown)} dropped item(s) not recognised")
        details = [f"{f}: {why}" for f, why in skipped] + warnings
        listed = [f"{where}: {name}: image not found" for name, where in missing]
        self.last_report = "\n".join(lines + listed + details)
        landed = sum(
            r.added_images + r.added_annotations + r.present_images + r.present_annotations
            for _, r in reports
        )
        title = "Import finished" if landed else "Nothing was imported"
        if not landed:
            lines.insert(0, "Nothing was imported: no images or labels were found to add.")
        if missing or details:
            # Every file left out, listed where it can be read (and copied).
            dialog = ImportReportDialog(self.window, "\n".join(lines), missing, details)
            dialog.setWindowTitle(title)
            self.report_dialog = dialog
            dialog.open()
            return
        icon = QMessageBox.Icon.Information if landed else QMessageBox.Icon.Warning
        box = message_box(self.window, icon, title, "\n".join(lines))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but not blocking: the report waits for the user

    # --- exports ---

    def export_interactive(self, fmt: str) -> None:
        label = self.FORMAT_LABELS[fmt]
        if fmt == "coco":
            out, _ = QFileDialog.getSaveFileName(
                self.window, f"Export {label}", "annotations.json", "COCO JSON (*.json)"
            )
        else:
            out = QFileDialog.getExistingDirectory(self.window, f"Export {label} into folder")
        if out:
            self.export(fmt, Path(out))

    def export(self, fmt: str, out: Path, split: Split | None = None) -> Task | None:
        project = self.window.project
        if project is None:
            return None
        folder = project.path

        def work(_progress: Progress) -> list[str]:
            return run_export(folder, fmt, out, split)

        def done(warnings: list[str]) -> None:
            self.last_report = "\n".join([f"exported to {out}", *warnings])
            text = f"Exported {self.FORMAT_LABELS[fmt]} to {out}"
            if warnings:
                text += f" ({len(warnings)} warning(s); see the details)"
            self.window.statusBar().showMessage(text, 8000)
            if warnings:
                box = message_box(self.window, QMessageBox.Icon.Warning, "Export", text)
                box.setDetailedText("\n".join(warnings))
                box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
                box.open()

        self.task = run_with_progress(self.window, "Exporting", work, done)
        return self.task

    # --- the demo project ---

    def open_demo(self, folder: Path | None = None) -> Task | None:
        """Open the demo project, creating it first (in a worker) if needed."""
        from studio.core.project import DB_NAME

        folder = folder or demo_dir()
        if (folder / DB_NAME).is_file():
            self.window.open_path(folder)
            return None

        def work(progress: Progress) -> Path:
            from studio.core.demo import create_demo_project

            create_demo_project(folder, progress=progress).close()
            return folder

        self.task = run_with_progress(
            self.window, "Creating the demo project", work, self.window.open_path
        )
        return self.task


def demo_dir() -> Path:
    """platformdirs.user_data_dir("studio")/demo, as studio.core.demo says."""
    try:
        from studio.core.demo import default_demo_dir
    except ImportError:  # pragma: no cover - the demo module is optional
        import platformdirs

        return Path(platformdirs.user_data_dir("studio")) / "demo"
    return default_demo_dir()


class FileDrops(QObject):
    """Files dropped on a window are imported into its open project (an event filter,
    so the window needs no drag handlers of its own)."""

    def __init__(self, window: QObject, transfers: Transfers, has_project: Callable[[], bool]):
        super().__init__(window)
        self._transfers = transfers
        self._has_project = has_project

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.DragEnter:
            urls = event.mimeData().urls()
            if self._has_project() and any(u.isLocalFile() for u in urls):
                event.acceptProposedAction()
                return True
        elif event.type() == QEvent.Type.Drop:
            paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
            if paths:
                event.acceptProposedAction()
                self._transfers.import_paths(paths)
                return True
        return False

"""Background work for the window, the bridge from project events to Qt signals, and
the project jobs that run behind a progress dialog (imports, exports, the demo).

The GUI thread only paints. Anything slow (imports, exports, counts over 100,000 rows,
decoding) is a plain function of a `Progress` run by `Task` in a QThreadPool; the task
hands back the result, the error or progress through Qt signals, which Qt queues to the
GUI thread because the Task object lives there. `run_with_progress` adds a modal
progress dialog whose Cancel button asks the work to stop at its next step.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from studio.core.errors import Cancelled, StudioError
from studio.core.progress import Progress

# Tasks whose work is still running. Python must keep them alive until they report,
# or their signals would go to a deleted object.
_LIVE: set[Task] = set()
_PROGRESS_INTERVAL_S = 0.05  # progress reaches the GUI at most 20 times a second


class _Runner(QRunnable):
    def __init__(self, task: Task):
        super().__init__()
        self._task = task

    def run(self) -> None:
        self._task._run()


class Task(QObject):
    """`fn(progress)` run on a thread pool. Connect to the signals before `start()`."""

    progressed = Signal(int, int, str)  # done, total, text
    finished = Signal(object)  # fn's return value
    failed = Signal(object)  # the exception (never Cancelled: that is `cancelled`)
    cancelled = Signal()

    def __init__(self, fn: Callable[[Progress], Any], parent: QObject | None = None):
        super().__init__(parent)
        self._fn = fn
        self._last_emit = 0.0
        self.progress = Progress(self._on_progress)
        self.done = False

    def start(self, pool: QThreadPool | None = None) -> Task:
        _LIVE.add(self)
        self.finished.connect(self._release)
        self.failed.connect(self._release)
        self.cancelled.connect(self._release)
        (pool or QThreadPool.globalInstance()).start(_Runner(self))
        return self

    def cancel(self) -> None:
        self.progress.cancel()

    # --- worker thread ---

    def _on_progress(self, done: int, total: int, text: str) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_emit >= _PROGRESS_INTERVAL_S:
            self._last_emit = now
            self.progressed.emit(done, total, text)

    def _run(self) -> None:
        try:
            result = self._fn(self.progress)
        except Cancelled:
            self._emit(self.cancelled)
        except BaseException as exc:  # noqa: BLE001 - every error goes back to the GUI
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self._emit(self.failed, exc)
        else:
            self._emit(self.finished, result)

    @staticmethod
    def _emit(signal: Any, *args: object) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the application quit while the work ran: nobody to tell
            pass

    # --- GUI thread ---

    def _release(self, *_: object) -> None:
        self.done = True
        _LIVE.discard(self)


def run_task(
    fn: Callable[[Progress], Any],
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    pool: QThreadPool | None = None,
) -> Task:
    """Start `fn(progress)` in the background; call back on the GUI thread."""
    task = Task(fn)
    if on_done is not None:
        task.finished.connect(on_done, Qt.ConnectionType.QueuedConnection)
    if on_error is not None:
        task.failed.connect(on_error, Qt.ConnectionType.QueuedConnection)
    return task.start(pool)


def error_text(exc: BaseException) -> str:
    """A user error's own message; a traceback's last lines for a bug."""
    if isinstance(exc, StudioError):
        return str(exc)
    tb = getattr(exc, "__traceback_text__", "")
    return f"{type(exc).__name__}: {exc}\n\n{tb[-2000:]}"


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> None:
    QMessageBox.critical(parent, title, error_text(exc))


def run_with_progress(
    parent: QWidget | None,
    title: str,
    fn: Callable[[Progress], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
) -> Task:
    """`run_task` behind a window-modal progress dialog with Cancel. A cancelled task
    calls neither callback; an error without `on_error` shows a message box."""
    dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(400)  # quick work shows no dialog at all
    dialog.setAutoReset(False)
    dialog.setAutoClose(False)
    task = Task(fn)

    def progressed(done: int, total: int, text: str) -> None:
        dialog.setMaximum(max(total, 0))
        dialog.setValue(min(done, total) if total else 0)
        if text:
            dialog.setLabelText(text)

    def finish() -> None:
        dialog.canceled.disconnect(task.cancel)
        dialog.close()
        dialog.deleteLater()

    def done(result: object) -> None:
        finish()
        on_done(result)

    def failed(exc: BaseException) -> None:
        finish()
        (on_error or (lambda e: show_error(parent, title, e)))(exc)

    task.progressed.connect(progressed)
    task.finished.connect(done)
    task.failed.connect(failed)
    task.cancelled.connect(finish)
    dialog.canceled.connect(task.cancel)
    return task.start()


class ProjectBridge(QObject):
    """Re-emits a project's psygnal events as Qt signals, queued to the GUI thread.

    Project events fire inside whichever thread wrote; widgets must only be touched from
    the GUI thread, and a slot that re-queries the database should not run in the middle
    of the write that triggered it. Queued signals give both.
    """

    images_changed = Signal(object)
    annotations_changed = Signal(object)
    classes_changed = Signal()
    runs_changed = Signal(object)
    undo_changed = Signal(bool, bool)

    def __init__(self, events: Any, parent: QObject | None = None):
        super().__init__(parent)
        self._events = events
        self._links = [
            (events.images_changed, self._images),
            (events.annotations_changed, self._annotations),
            (events.classes_changed, self._classes),
            (events.runs_changed, self._runs),
            (events.undo_changed, self._undo),
        ]
        for signal, slot in self._links:
            signal.connect(slot)

    def disconnect_project(self) -> None:
        for signal, slot in self._links:
            signal.disconnect(slot)
        self._links = []

    def connect_queued(self, name: str, slot: Callable[..., Any]) -> None:
        getattr(self, name).connect(slot, Qt.ConnectionType.QueuedConnection)

    def _images(self, ids: object) -> None:
        self.images_changed.emit(ids)

    def _annotations(self, ids: object) -> None:
        self.annotations_changed.emit(ids)

    def _classes(self) -> None:
        self.classes_changed.emit()

    def _runs(self, run_id: object) -> None:
        self.runs_changed.emit(run_id)

    def _undo(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_changed.emit(can_undo, can_redo)


# --- project jobs behind dialogs: imports, exports, the demo project ---------------------


class Transfers(QObject):
    """Imports, exports and the demo project for a window, each in a worker thread.

    The work opens its own `Project` on the folder (a project is written from one thread
    at a time) and the window re-reads everything when it is done. The report of what
    was skipped is kept in `last_report` and shown in a non-blocking message box.
    """

    FORMAT_LABELS = {"coco": "COCO", "yolo": "YOLO", "voc": "Pascal VOC", "labelme": "labelme"}

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.last_report = ""
        self.task: Task | None = None

    # --- imports ---

    def import_paths(self, paths: list[Path]) -> Task | None:
        """Import dropped files and folders: each is recognised with `detect_format`."""
        return self._import([(None, Path(p), None) for p in paths])

    def import_images_interactive(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Import a folder of images")
        if folder:
            self._import([("images", Path(folder), None)])

    def import_annotations_interactive(self, fmt: str) -> None:
        label = self.FORMAT_LABELS[fmt]
        if fmt == "coco":
            path, _ = QFileDialog.getOpenFileName(
                self.window, f"Import {label}", "", "COCO JSON (*.json)"
            )
        else:
            path = QFileDialog.getExistingDirectory(
                self.window, f"Import {label}: the dataset folder"
            )
        if not path:
            return
        images = None
        if fmt in ("coco", "voc"):
            images = QFileDialog.getExistingDirectory(
                self.window, "Where are the images? (Cancel: next to the annotations)"
            )
        self._import([(fmt, Path(path), Path(images) if images else None)])

    def _import(self, jobs: list[tuple[str | None, Path, Path | None]]) -> Task | None:
        project = self.window.project
        if project is None:
            return None
        folder = project.path

        def work(progress: Progress) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
            from studio.core.importing import detect_format, import_annotations, import_images
            from studio.core.project import Project

            reports: list[tuple[str, Any]] = []
            unknown: list[tuple[str, str]] = []
            images = [p for fmt, p, _ in jobs if (fmt or detect_format(p)) == "images"]
            with Project.open(folder) as p:
                if images:  # first, so annotation files can refer to them
                    reports.append(("images", import_images(p, images, progress)))
                for fmt, path, images_dir in jobs:
                    fmt = fmt or detect_format(path)
                    if fmt is None:
                        unknown.append((str(path), "not images nor a known annotation format"))
                    elif fmt != "images":
                        reports.append(
                            (
                                path.name,
                                import_annotations(p, fmt, path, images_dir, None, progress),
                            )
                        )
            return reports, unknown

        self.task = run_with_progress(self.window, "Importing", work, self._import_done)
        return self.task

    def _import_done(self, result: tuple[list[tuple[str, Any]], list[tuple[str, str]]]) -> None:
        reports, unknown = result
        self.window.refresh_all()
        lines = [f"{name}: {r.summary()}" for name, r in reports]
        skipped = [*unknown, *(s for _, r in reports for s in r.skipped)]
        warnings = [w for _, r in reports for w in r.warnings]
        if unknown:
            lines.append(f"{len(unknown)} dropped item(s) not recognised")
        details = [f"{f}: {why}" for f, why in skipped] + warnings
        self.last_report = "\n".join(lines + details)
        box = QMessageBox(
            QMessageBox.Icon.Warning if skipped else QMessageBox.Icon.Information,
            "Import finished",
            "\n".join(lines) or "Nothing to import.",
            QMessageBox.StandardButton.Ok,
            self.window,
        )
        if details:
            box.setInformativeText(f"{len(skipped)} skipped file(s), {len(warnings)} warning(s).")
            box.setDetailedText("\n".join(details))
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

    def export(self, fmt: str, out: Path, split: str | None = None) -> Task | None:
        project = self.window.project
        if project is None:
            return None
        folder = project.path

        def work(_progress: Progress) -> list[str]:
            from studio.core.importing import export_annotations
            from studio.core.project import Project

            with Project.open(folder) as p:
                return export_annotations(p, fmt, out, split)

        def done(warnings: list[str]) -> None:
            self.last_report = "\n".join([f"exported to {out}", *warnings])
            text = f"Exported {self.FORMAT_LABELS[fmt]} to {out}"
            if warnings:
                text += f" ({len(warnings)} warning(s); see the details)"
            self.window.statusBar().showMessage(text, 8000)
            if warnings:
                box = QMessageBox(QMessageBox.Icon.Warning, "Export", text,
                                  QMessageBox.StandardButton.Ok, self.window)  # fmt: skip
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

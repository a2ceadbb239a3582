"""The one way the window runs background work, with progress and cancel.

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
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from studio.core.errors import Cancelled
from studio.core.progress import Progress
from studio.ui.common.errors import show_error

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

"""A progress and cancel handle for long work (imports, exports, thumbnails).

Long functions take a `Progress` and call `step()`; the caller (the CLI's progress
bar, a worker thread of the window, a test) decides what to show and may ask the work
to stop. The work raises `Cancelled` at its next step, and cleans up after itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from studio.core.errors import Cancelled


class Progress:
    def __init__(self, callback: Callable[[int, int, str], None] | None = None):
        self._callback = callback
        self._cancel = threading.Event()
        self.done = 0
        self.total = 0
        self.text = ""

    def start(self, total: int, text: str = "") -> None:
        self.total, self.done, self.text = total, 0, text
        self._emit()

    def step(self, n: int = 1, text: str | None = None) -> None:
        """Count `n` more units done; raise `Cancelled` if a stop was asked for."""
        if self._cancel.is_set():
            raise Cancelled()
        self.done += n
        if text is not None:
            self.text = text
        self._emit()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def _emit(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total, self.text)

"""Reading an image's shapes a page at a time, between frames.

Opening an image with 3,000 polygons used to read every row and build every item in one
go (~200 ms with the GUI thread blocked). The annotation layer shows the first page at
once and hands the rest to a `PageReader`, which reads and delivers one page per turn of
the event loop, so that the image and the first shapes are painted, and input is
handled, while the rest arrive. Anything that needs every shape (a selection by id, a
hit test, a full re-read) calls `finish()` first, which reads what is left at once.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer

from studio.core.records import AnnotationRecord

# Shapes per page: a page of polygons is read, built and drawn in ~10-15 ms on a quiet
# 2-core machine (~25 ms under load), well inside the ~50 ms a turn may block.
PAGE_SIZE = 300
# Milliseconds from the first turn after `start` to the second page: a frame, so the
# image and the first page are painted in a turn of their own instead of one with a
# page to read as well (a timer started inside the slow `show_image` would have run
# out by the first turn).
FIRST_DELAY_MS = 16

ReadPage = Callable[[int, int], list[AnnotationRecord]]  # (after id, limit) -> records
Deliver = Callable[[list[AnnotationRecord]], None]


class PageReader:
    """Reads pages with `read(after_id, PAGE_SIZE)` (ids above `after_id`, in id order)
    and hands each to `deliver`, one per event-loop turn, until a page comes back short.
    `pages_read` counts pages (tests read it)."""

    def __init__(self, deliver: Deliver):
        self._deliver = deliver
        self._read: ReadPage | None = None
        self._after = 0
        self._waiting = False  # the first timeout only arms the delay before page 2
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._next)
        self.pages_read = 0

    @property
    def pending(self) -> bool:
        """Whether pages are left to read."""
        return self._read is not None

    def start(self, read: ReadPage, after_id: int) -> None:
        """Read the pages after `after_id` from the next turn on (any reading under way
        stops)."""
        self._read, self._after, self._waiting = read, after_id, True
        self._timer.start(0)

    def stop(self) -> None:
        """Forget the pages left (a new image, or everything was re-read)."""
        self._read = None
        self._timer.stop()

    def finish(self) -> None:
        """Read and deliver every page left, now."""
        self._timer.stop()
        while self._read is not None:
            self._next(schedule=False)

    def _next(self, schedule: bool = True) -> None:
        read = self._read
        if read is None:
            return
        if self._waiting and schedule:
            self._waiting = False
            self._timer.start(FIRST_DELAY_MS)
            return
        try:
            records = read(self._after, PAGE_SIZE)
        except Exception:
            self.stop()  # not pending for ever: what needs every shape would read again
            raise
        self.pages_read += 1
        if len(records) < PAGE_SIZE:
            self._read = None  # the last page: the reader is done before it delivers
        else:
            self._after = records[-1].id
            if schedule:
                self._timer.start(0)  # the next turn, after pending paints and input
        self._deliver(records)

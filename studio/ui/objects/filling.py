"""Reading the shown image's shapes for the objects list a page per event-loop turn.

Reading all 3,000 rows of a dense image at once took ~40 ms, a block of the GUI thread
on top of the canvas's own work when an image opens (and again after every burst of
edits). `RowFiller` reads `PAGE_SIZE` rows at a time, as many pages per turn as fit in
`TURN_SECONDS` by the time the last page took, and hands each page to its caller, which
keeps them until the last: the list then changes once (a change costs the view a layout
of every row), and a re-read of the same image keeps its selection and scroll position.
A caller that shows a page in sight `pause`s the reading until it has painted it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer

from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import AnnotationRecord

# Rows per read: ~1.5-2.5 ms for 100 polygons (their points are parsed too).
PAGE_SIZE = 100
# A turn reads no page it expects to end past this many seconds (the first page of a
# turn is always read). Less than the canvas's 6 ms: both may run in one pass of the
# event loop, before a paint, while an image opens.
TURN_SECONDS = 0.004
# After a page that lands in sight, the next read waits for the list's paint of it
# (`pause`, `resume`): the layout and paint (~4 ms) get an event-loop pass of their own
# instead of sharing one with the next read (~4 ms more). A list that does not paint
# (hidden) is read on after PAINT_WAIT_MS. RESUME_MS after the paint: a shorter wait
# (0 or 1 ms) fired in the paint's own pass, after the window's flush of it.
PAINT_WAIT_MS = 50
RESUME_MS = 8

Deliver = Callable[[list[AnnotationRecord], bool], None]  # (records, last page)


class RowFiller:
    """Reads the annotations of one image page by page over event-loop turns and calls
    `deliver(records, last)` for each page (`last`: every row is read). A read that
    fails with a `StudioError` (the project closed, the image went) delivers an empty
    last page.

    Counters for tests: `pages_read`, and per turn since the last `start`, the pages
    read (`per_turn`)."""

    def __init__(self, deliver: Deliver):
        self._deliver = deliver
        self._project: Project | None = None
        self._image_id = 0
        self._after = 0
        self._cost = 0.002  # seconds the last page took (at first: a guess)
        self._pause_ms = 0  # asked for by `pause` during this turn
        self._paused = False  # the next turn waits for `resume` (or PAINT_WAIT_MS)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._turn)
        self.pages_read = 0
        self.per_turn: list[int] = []

    @property
    def pending(self) -> bool:
        """Whether rows are left to read."""
        return self._project is not None

    def start(self, project: Project, image_id: int) -> None:
        """Read the rows of `image_id` from the next turn on; reading under way stops."""
        self._project, self._image_id, self._after = project, image_id, 0
        self.per_turn = []
        self._pause_ms, self._paused = 0, False
        self._timer.start(0)

    def stop(self) -> None:
        self._project = None
        self._pause_ms, self._paused = 0, False
        self._timer.stop()

    def pause(self, ms: int = PAINT_WAIT_MS) -> None:
        """Read no more this turn; the next page once `resume` is called (the caller
        painted the page just delivered), or `ms` after this turn at the latest."""
        self._pause_ms = ms

    def resume(self) -> None:
        """End a pause: the next page is read in a coming pass of the event loop."""
        if self._paused and self.pending:
            self._paused = False
            self._timer.start(RESUME_MS)

    def finish(self) -> None:
        """Read every row left now."""
        self._timer.stop()
        while self.pending:
            self._read_page()

    def _turn(self) -> None:
        started, pages = time.perf_counter(), 0
        self._paused = False
        while self.pending and not self._pause_ms:
            if pages and time.perf_counter() - started + self._cost > TURN_SECONDS:
                break
            t = time.perf_counter()
            self._read_page()
            self._cost = time.perf_counter() - t
            pages += 1
        self.per_turn.append(pages)
        if self.pending:  # after the paints and input waiting meanwhile
            self._paused = bool(self._pause_ms)
            self._timer.start(self._pause_ms)
        self._pause_ms = 0

    def _read_page(self) -> None:
        project = self._project
        assert project is not None
        try:
            records = project.store.annotations.page(self._image_id, self._after, PAGE_SIZE)
        except StudioError:
            records = []
            self._project = None
        else:
            self.pages_read += 1
            if len(records) < PAGE_SIZE:
                self._project = None
            else:
                self._after = records[-1].id
        self._deliver(records, self._project is None)

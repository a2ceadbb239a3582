"""Reading an image's shapes and building their items between frames, a time slice per
event-loop turn.

Opening an image with 3,000 polygons used to read every row and build every item in one
go (~200 ms with the GUI thread blocked), later a page of 300 per turn (25-45 ms each).
The annotation layer reads one page while the image opens and hands the rest to a
`PageReader`. Each event-loop turn it does units of work, reading a page of rows or
building and drawing a batch of items (`deliver`), and starts no unit that it expects
(from what that kind of unit took last) to end past `TURN_SECONDS`; so the image, the
first shapes and input get a turn at least every ~10 ms while the rest arrive. What
needs a few shapes now (a click's hit test, a selection by id) takes them out of the
buffer (`take`) and reads the rows not read yet that it needs by themselves (ids above
`after`); what needs every shape (a full re-read) calls `finish()`, which reads and
delivers what is left at once.

Records read but not delivered yet wait in a buffer; a caller that re-reads rows (an
edit, an undo) calls `forget(ids)` so that the older buffered copies of them are dropped.

The items of the image shown before go the same way (`ItemSweeper`): hidden at once,
taken off the scene and freed a time slice per turn (removing 3,000 items from the
scene's index and freeing them took ~25 ms of CPU, ~14 ms of it inside `show_image`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGraphicsItem

from studio.core.records import AnnotationRecord

# Rows per read: ~2.2 ms for 100 polygons on a quiet 2-core machine (~1.2 ms of it is
# the query itself, so much smaller pages would waste time; 200 took ~9 ms under load).
PAGE_SIZE = 100
# Items built and drawn between two looks at the clock (~1.5 ms for 25 polygons).
BATCH = 25
# A turn starts no unit of work it expects to end past this many seconds (the first
# unit of a turn always runs). A paint of the viewport (~4 ms) often runs in the same
# pass of the event loop, and the two must stay under 16 ms.
TURN_SECONDS = 0.006
# Milliseconds from the first turn after `start` to the second, and from the turn that
# delivers the first records to the next: a frame, so that the image, and then the
# picture of the first shapes (~4-10 ms to allocate), are painted in a pass of the event
# loop of their own (a timer started inside the slow `show_image` would have run out by
# the first turn).
FIRST_DELAY_MS = 16
# Old items taken off the scene and freed between two looks at the clock (~9 us each).
SWEEP_BATCH = 50
# A sweeping turn starts no batch past this many seconds: it may share a pass of the
# event loop with a turn of the reader (`TURN_SECONDS`) and a paint.
SWEEP_SECONDS = 0.003

ReadPage = Callable[[int, int], list[AnnotationRecord]]  # (after id, limit) -> records
Deliver = Callable[[list[AnnotationRecord]], None]


class Unit(Enum):
    """The two kinds of work a turn does."""

    READ = "read"  # a page of rows from the database
    BUILD = "build"  # a batch of records handed to `deliver`


class PageReader:
    """Reads pages with `read(after_id, PAGE_SIZE)` (ids above `after_id`, in id order)
    and hands the records to `deliver`, `BATCH` at a time, over event-loop turns, until
    a page comes back short and the buffer is empty. Before the first delivery it holds
    back until `hold` records are known (read) or every row is read, so that the caller
    knows how many shapes there are at least (`known`) before it builds any.

    Counters for tests and the benchmark: `pages_read`, and since the last `start`,
    `delivered` (records handed over), `units` (per turn, the units it did) and
    `seconds` (per turn, how long it took by its own clock)."""

    def __init__(self, deliver: Deliver):
        self._deliver = deliver
        self._read: ReadPage | None = None  # None: every row is read
        self._after = 0
        self._buffer: deque[AnnotationRecord] = deque()
        self._hold = 0
        self._waiting = False  # the first timeout only arms the delay before the next
        # Seconds the last unit of each kind took (at first: on a quiet machine).
        self._cost = {Unit.READ: 0.0025, Unit.BUILD: 0.0015}
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._turn)
        self.pages_read = 0
        self.delivered = 0
        self.units: list[list[Unit]] = []
        self.seconds: list[float] = []
        self._done: list[Callable[[], None]] = []  # see `when_done`

    @property
    def pending(self) -> bool:
        """Whether records are left to read or to deliver."""
        return self._read is not None or bool(self._buffer)

    @property
    def buffered(self) -> int:
        """Records read and not delivered yet."""
        return len(self._buffer)

    @property
    def unread(self) -> bool:
        """Whether rows may be left in the database that were not read yet."""
        return self._read is not None

    @property
    def after(self) -> int:
        """The id after which rows are not read yet (see `unread`)."""
        return self._after

    def take(self, wanted: Callable[[AnnotationRecord], bool]) -> list[AnnotationRecord]:
        """Take the buffered records `wanted` accepts out of the buffer (the caller
        delivers them itself, now), in id order."""
        taken = [r for r in self._buffer if wanted(r)]
        if taken:
            ids = {r.id for r in taken}
            self._buffer = deque(r for r in self._buffer if r.id not in ids)
        return taken

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once every record is delivered (by the turn that delivers
        the last, or by `finish`); `start` and `stop` forget it (another image)."""
        self._done.append(callback)

    def _call_done(self) -> None:
        done, self._done = self._done, []
        for callback in done:
            callback()

    def start(self, read: ReadPage, first: list[AnnotationRecord], hold: int = 0) -> None:
        """Deliver `first` (a full page just read) and read the pages after it, from the
        next turn on; any reading under way stops. Deliver nothing until `hold` records
        are known or every row is read."""
        self._read, self._after, self._waiting = read, first[-1].id if first else 0, True
        self._buffer = deque(first)
        self._hold = hold
        self.units, self.seconds, self.delivered, self._done = [], [], 0, []
        self._timer.start(0)

    def stop(self) -> None:
        """Forget the records left (a new image, or everything was re-read)."""
        self._read = None
        self._buffer.clear()
        self._timer.stop()
        self._done = []

    def forget(self, ids: Iterable[int]) -> None:
        """Drop buffered records of these ids: the caller re-read their rows, so the
        copies read before are out of date (or deleted)."""
        gone = set(ids)
        if self._buffer and gone:
            self._buffer = deque(r for r in self._buffer if r.id not in gone)

    def finish(self) -> None:
        """Read and deliver every record left, now."""
        self._timer.stop()
        while self._read is not None:
            self._read_page()
        self._hold = 0
        records, self._buffer = list(self._buffer), deque()
        if records:
            self.delivered += len(records)
            self._deliver(records)
        self._call_done()

    # --- turns -------------------------------------------------------------------------

    def _next_unit(self) -> Unit | None:
        if self._read is not None and (not self._buffer or len(self._buffer) < self._hold):
            return Unit.READ
        return Unit.BUILD if self._buffer else None

    def _turn(self) -> None:
        """One event-loop turn: units of work until the next would end past
        `TURN_SECONDS` (at least one), then the next turn is scheduled."""
        if self._waiting:
            self._waiting = False
            self._timer.start(FIRST_DELAY_MS)
            return
        started = time.perf_counter()
        done: list[Unit] = []
        self.units.append(done)
        first = self.delivered == 0
        while (unit := self._next_unit()) is not None:
            if done and time.perf_counter() - started + self._cost[unit] > TURN_SECONDS:
                break
            t = time.perf_counter()
            if unit is Unit.READ:
                self._read_page()
            else:
                self._build_batch()
            self._cost[unit] = time.perf_counter() - t
            done.append(unit)
        self.seconds.append(time.perf_counter() - started)
        if self.pending:
            # The next turn, after pending paints and input; after the first delivery,
            # a frame later.
            self._timer.start(FIRST_DELAY_MS if first and self.delivered else 0)
        else:
            self._call_done()

    def _read_page(self) -> None:
        read = self._read
        assert read is not None
        try:
            records = read(self._after, PAGE_SIZE)
        except Exception:
            self.stop()  # not pending for ever: what needs every shape would read again
            raise
        self.pages_read += 1
        if len(records) < PAGE_SIZE:
            self._read = None
        else:
            self._after = records[-1].id
        self._buffer.extend(records)

    def _build_batch(self) -> None:
        self._hold = 0
        n = min(BATCH, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(n)]
        self.delivered += n
        self._deliver(batch)


class ItemSweeper:
    """Takes items off their scene and frees them over event-loop turns, a batch at a
    time until `SWEEP_SECONDS` have passed in a turn, after hiding them at once (~1 us
    each): hidden, they are neither painted nor hit (every hit test and the raster skip
    invisible items).

    Counters for tests: `swept` (items removed so far) and `per_turn` (items removed in
    each turn)."""

    def __init__(self) -> None:
        self._items: deque[QGraphicsItem] = deque()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._turn)
        self.swept = 0
        self.per_turn: list[int] = []

    @property
    def pending(self) -> int:
        """Items still to take off the scene."""
        return len(self._items)

    def drop(self, items: Iterable[QGraphicsItem]) -> None:
        """Hide `items` now; take them off their scene and free them over the next
        turns. The caller keeps no other reference to them."""
        items = list(items)
        for item in items:
            item.setVisible(False)
        self._items.extend(items)
        if self._items:
            self._timer.start(0)

    def finish(self) -> None:
        """Take every item left off its scene now (before the scene goes)."""
        self._timer.stop()
        self._sweep(len(self._items))

    def _turn(self) -> None:
        started, before = time.perf_counter(), self.swept
        while self._items:
            self._sweep(SWEEP_BATCH)
            if time.perf_counter() - started > SWEEP_SECONDS:
                break
        self.per_turn.append(self.swept - before)
        if self._items:
            self._timer.start(0)

    def _sweep(self, n: int) -> None:
        batch = [self._items.popleft() for _ in range(min(n, len(self._items)))]
        for item in batch:
            try:
                scene = item.scene()
            except RuntimeError:  # the scene went first and took the item with it
                continue
            if scene is not None:
                scene.removeItem(item)  # Python owns it again: freed with `batch`
        self.swept += len(batch)

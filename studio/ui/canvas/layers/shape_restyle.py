"""Restyling every shape item of the shown image in time slices.

A change of every shape's look (a class colour, the fill opacity, the dense style) sets
a pen and a brush on each item; a new pen makes Qt re-index the item, ~5-10 us each, so
3,000 polygons took 20-45 ms in one go. A `Restyler` restyles as many items as fit in
`FIRST_SECONDS` at once (a few hundred: all of a small image) and the rest over the next
event-loop turns, then says whether a plain shape's look changed, so that the picture of
plain shapes is redrawn once, after the last (see `ShapeRaster.redraw`). Items restyled
meanwhile for another reason (a hover, a selection) get the current style anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer

from studio.ui.canvas.scene_items import ShapeItem

# A turn restyles until this many seconds have passed (checked after every `BATCH`);
# the call that starts it less, as the frame showing the change follows in the same turn.
TURN_SECONDS = 0.008
FIRST_SECONDS = 0.004
BATCH = 100  # items restyled between two looks at the clock (~0.5-1 ms)

RestyleOne = Callable[[ShapeItem], bool]  # True if a plain shape's look changed
Done = Callable[[bool], None]  # called once all are restyled: whether any plain one changed


class Restyler:
    """Calls `restyle_one(item)` for every item handed to `start`, a time slice per
    event-loop turn, then `done(changed)`. `turns` counts the slices (tests read it)."""

    def __init__(self, restyle_one: RestyleOne, done: Done):
        self._restyle_one = restyle_one
        self._done = done
        self._items: list[ShapeItem] = []
        self._next = 0
        self._changed = False
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._turn)
        self.turns = 0

    @property
    def pending(self) -> bool:
        """Whether items are left to restyle."""
        return self._next < len(self._items)

    def start(self, items: list[ShapeItem], changed: bool = False) -> None:
        """Restyle `items` (every shape: any restyle under way is replaced), the first
        now; `changed`: report a change even if no item's look changes."""
        carried = self._changed and self.pending  # changed items of the run replaced
        self._items, self._next = items, 0
        self._changed = changed or carried
        self._timer.stop()
        self._slice(deadline=time.perf_counter() + min(FIRST_SECONDS, TURN_SECONDS))

    def stop(self) -> None:
        """Forget the items left (another image is shown)."""
        self._items, self._next, self._changed = [], 0, False
        self._timer.stop()

    def finish(self) -> None:
        """Restyle every item left, now."""
        self._timer.stop()
        if self.pending:
            self._slice(deadline=None)

    def _turn(self) -> None:
        self._slice(deadline=time.perf_counter() + TURN_SECONDS)

    def _slice(self, deadline: float | None) -> None:
        self.turns += 1
        items, restyle = self._items, self._restyle_one
        while self._next < len(items):
            end = min(self._next + BATCH, len(items))
            for item in items[self._next : end]:
                self._changed = restyle(item) or self._changed
            self._next = end
            if deadline is not None and time.perf_counter() > deadline:
                break
        if self.pending:
            self._timer.start(0)
            return
        changed, self._changed, self._items, self._next = self._changed, False, [], 0
        self._done(changed)

"""Which image comes next when the user says "done": the next one in the browser's
order that is not marked done yet, wrapping around."""

from __future__ import annotations

from collections.abc import Container, Sequence

from studio.core import browse
from studio.core.kinds import ImageStatus
from studio.core.project import Project

NOT_DONE = tuple(s.value for s in ImageStatus if s != ImageStatus.DONE)


def next_in_order(order: Sequence[int], current: int | None, wanted: Container[int]) -> int | None:
    """The first id after `current` in `order` (wrapping around) that is in `wanted`,
    never `current` itself; None when there is none. From the start when `current` is
    not in `order`."""
    if not order:
        return None
    try:
        start = order.index(current) + 1 if current is not None else 0
    except ValueError:
        start = 0
    for i in (*order[start:], *order[:start]):
        if i != current and i in wanted:
            return i
    return None


def next_not_done(project: Project, order: Sequence[int], current: int | None) -> int | None:
    """The image after `current` in `order` whose status is not "done" (imported labels
    count as started, not finished, so images with shapes are not skipped)."""
    return next_in_order(order, current, set(browse.query_images(project, status=NOT_DONE)))

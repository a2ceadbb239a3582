"""Which image comes next when the user says "done": the next one in the browser's
order that is not marked done yet, wrapping around."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

from studio.core import browse
from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus
from studio.core.project import Project
from studio.core.undo.commands import step_focus

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


def step_and_show(
    project: Project,
    which: str,
    current: int | None,
    show_image: Callable[[int], None],
    select: Callable[[list[int]], None],
    message: Callable[[str, int], None],
) -> None:
    """Run `project.undo()` or `project.redo()` (`which`), then go to the image the step
    changed and select the shapes it left, so that no step changes an image unseen."""
    focus = step_focus(project.undo_stack, which)
    try:
        text = getattr(project, which)()
    except StudioError as e:
        message(f"Cannot {which}: {e}", 5000)
        return
    if focus is not None:
        image_id = focus.image_id
        if focus.select:
            rows = project.annotations(ids=focus.select)
            image_id = rows[0].image_id if rows else image_id
        if image_id is not None:
            if image_id != current:
                show_image(image_id)
            select(list(focus.select))
    if text:
        message(f"{which.capitalize()}: {text}", 2000)

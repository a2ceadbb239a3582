"""Which image comes next when the user says "done": the next one in the browser's
order that is not marked done yet, wrapping around."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus
from studio.core.project import Project
from studio.core.undo.commands import step_focus

NOT_DONE = tuple(s.value for s in ImageStatus if s != ImageStatus.DONE)


def next_not_done(project: Project, order: Sequence[int], current: int | None) -> int | None:
    """The image after `current` in `order` whose status is not "done" (imported labels
    count as started, not finished, so images with shapes are not skipped). Statuses are
    read a chunk at a time from there on: the next one is nearly always close, and a
    query of every not-done id took 0.27 s per press at 100,000 images."""
    if not order:
        return None
    try:
        start = order.index(current) + 1 if current is not None else 0
    except ValueError:
        start = 0
    ring = [*order[start:], *order[:start]]
    for i in range(0, len(ring), _CHUNK):
        chunk = [x for x in ring[i : i + _CHUNK] if x != current]
        open_ids = {im.id for im in project.images(ids=chunk) if im.status in NOT_DONE}
        found = next((x for x in chunk if x in open_ids), None)
        if found is not None:
            return found
    return None


_CHUNK = 400  # ids per status query (under SQLite's bound-parameter limit)


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

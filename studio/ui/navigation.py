"""Which image comes next when the user says "done": the next one in the browser's
order that is not marked done yet, wrapping around."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from studio.core import browse
from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus
from studio.core.project import Project
from studio.core.undo.commands import step_focus

NOT_DONE = tuple(s.value for s in ImageStatus if s != ImageStatus.DONE)


def next_not_done(project: Project, order: Sequence[int], current: int | None) -> int | None:
    """The image after `current` in `order` whose status is not "done" (imported labels
    count as started, not finished, so images with shapes are not skipped). The ids just
    after `current` are asked first (the next one is nearly always close: a query of
    every not-done id took 0.27 s per press at 100,000 images); when they are all done,
    the not-done ids at once (few by then, as at the end of a labelling pass)."""
    if not order:
        return None
    try:
        start = order.index(current) + 1 if current is not None else 0
    except ValueError:
        start = 0
    ring = [*order[start:], *order[:start]]
    near = [x for x in ring[:_NEAR] if x != current]
    wanted = set(browse.query_images(project, ids=near, status=NOT_DONE)) if near else set()
    if not wanted and len(ring) > _NEAR:
        wanted = set(browse.query_images(project, status=NOT_DONE))
    return next((x for x in ring if x != current and x in wanted), None)


_NEAR = 400  # ids asked about first (under SQLite's bound-parameter limit)


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

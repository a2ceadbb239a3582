"""The labeller's commands that span the window's parts: step through the browser's
order, copy the previous image's shapes, give a class, undo and redo.

Stepping keeps the order the browser had when the image was shown: labelling the
image under a filter such as "Unlabelled" takes it out of the list at once, and D must
still go to the image after it, not back to the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus
from studio.ui.navigation import next_not_done, step_and_show

if TYPE_CHECKING:
    from studio.ui.main_window import MainWindow


def neighbour(
    ids: Sequence[int],
    seen: Sequence[int],
    current: int | None,
    delta: int,
    row_of: Callable[[int], int | None],
    *,
    enter: bool = True,
) -> int | None:
    """The image `delta` (+1 or -1) away from `current` in the list `ids` (`row_of`
    gives an id's row there, or None). When `current` has left the list, the nearest
    image in that direction that `seen` (the list when `current` was shown) had and
    `ids` still has. None at either end. When `current` is in neither list: with
    `enter`, the first (or last) image, as a way into the list; else None."""
    if not ids:
        return None
    row = row_of(current) if current is not None else None
    if row is not None:
        return ids[row + delta] if 0 <= row + delta < len(ids) else None
    try:
        pos = list(seen).index(current)
    except ValueError:
        if not enter:
            return None
        return ids[0] if delta > 0 else ids[-1]
    walk = seen[pos + 1 :] if delta > 0 else reversed(seen[:pos])
    return next((i for i in walk if row_of(i) is not None), None)


class Labelling:
    """Commands of the labelling window (`w`), for its actions."""

    def __init__(self, w: MainWindow):
        self.w = w
        self._seen: Sequence[int] = ()  # the browser's order when the image was shown

    def image_shown(self) -> None:
        self._seen = self.w.browser.ids()  # the model replaces its list, never edits it

    def _neighbour(self, delta: int, enter: bool = True) -> int | None:
        browser = self.w.browser
        ids = browser.ids()
        current = self.w.current_image_id()
        return neighbour(ids, self._seen, current, delta, browser.model.row_of, enter=enter)

    def step(self, delta: int) -> None:
        if not self.w.browser.ids():
            return
        target = self._neighbour(delta)
        if target is None:
            self.w.status_bar.showMessage("Last image" if delta > 0 else "First image", 2000)
        else:
            self.w.show_image(target)

    def images_changed(self, current: int | None) -> None:
        """The project's images changed (imported, deleted, undone) while `current`
        was shown: show the first of a project that had none; if `current` was
        deleted, the image that followed it in the list (before it, at the end), or,
        with none left, nothing, its name and shapes cleared."""
        w = self.w
        ids = w.browser.ids()
        if current is None:
            if ids:
                w.show_image(ids[0])  # the first images of an empty project
            return
        try:
            w.project.image(current)  # type: ignore[union-attr]
            return
        except StudioError:
            pass
        row_of = w.browser.model.row_of
        target = neighbour(ids, self._seen, current, +1, row_of, enter=False)
        if target is None:
            target = neighbour(ids, self._seen, current, -1, row_of, enter=False)
        if target is None and ids:
            target = ids[0]
        if target is None:
            w.forget_image(current)
        else:
            w.show_image(target)

    def mark_done_and_next(self) -> None:
        w, current = self.w, self.w.current_image_id()
        if w.project is None or current is None:
            return
        target = next_not_done(w.project, w.browser.ids(), current)
        if w.project.image(current).status != ImageStatus.DONE:  # no empty undo step
            w.project.set_status([current], ImageStatus.DONE)
        if target is None:
            w.status_bar.showMessage("Marked done. Every image in the list is done.", 4000)
        else:
            w.show_image(target)

    def copy_from_previous(self) -> None:
        if self.w.current_image_id() is None:
            return
        previous = self._neighbour(-1, enter=False)  # never an unrelated image
        if previous is None:
            self.w.status_bar.showMessage("No previous image in the list to copy from", 3000)
        else:
            self.w.canvas.copy_from_previous(previous)

    def pick_class_key(self, n: int) -> None:
        class_id = self.w.class_dock.class_for_key(n)
        if class_id is None:
            self.w.status_bar.showMessage(f"No class {n}: add classes in the Classes dock", 3000)
        else:
            self.pick_class(class_id)

    def pick_class(self, class_id: int) -> None:
        """Use `class_id` for new shapes, and give it to the selected shapes; while a
        polygon is being drawn, only that polygon gets it."""
        w = self.w
        if w.project is None:
            return
        w.class_dock.set_current_class(class_id)
        w.canvas.set_current_class(class_id)
        if w.canvas.interaction.draft is not None:
            return
        # Locked shapes keep their class (the editor says so in the status bar).
        selected = w.canvas.editor.editable(w.canvas.selected_annotation_ids())
        if selected:
            change = [a.id for a in w.project.annotations(ids=selected) if a.class_id != class_id]
            if change:
                w.project.set_annotation_class(change, class_id)

    def reveal_class(self, class_id: int) -> None:
        """A shape of a hidden class was drawn or pasted: show the class again."""
        self.w.class_dock.set_hidden(class_id, False)
        classes = self.w.project.classes() if self.w.project is not None else []
        name = next((c.name for c in classes if c.id == class_id), "")
        self.w.status_bar.showMessage(f"Class {name!r} was hidden: shown again", 4000)

    def undo_redo(self, which: str) -> None:
        """Undo or redo, then show what changed: its image, its shapes selected. While
        a polygon is being drawn, undo takes back its last point instead (as in
        labelme) and redo waits for the polygon."""
        w = self.w
        if w.project is None:
            return
        if w.canvas.interaction.draft is not None:
            if which == "undo":
                w.canvas.remove_last_vertex()
            else:
                w.status_bar.showMessage("Finish the polygon (Enter) or cancel it (Esc)", 3000)
            return
        step_and_show(w.project, which, w.current_image_id(), w.show_image,
                      w.canvas.select, w.status_bar.showMessage)  # fmt: skip

"""Change events of a project. psygnal works without Qt, so the core stays Qt-free and
the window connects to these signals (and hops to its own thread where needed)."""

from __future__ import annotations

from psygnal import Signal, SignalGroup


class ProjectEvents(SignalGroup):
    # Lists of image ids whose rows changed (status, split, added, deleted); None = many.
    images_changed = Signal(object)
    # Lists of image ids whose annotations changed; None = any image's.
    annotations_changed = Signal(object)
    # The ids of the annotation rows a write added, changed or deleted, sent just
    # before that write's `annotations_changed` and only by writes that know them (the
    # row-level writes undo and redo use). A listener that can refresh rows one by one
    # keeps these and applies them on the `annotations_changed` that follows; a change
    # that comes without them (a class merge, an import) touched rows nobody listed.
    annotation_rows_changed = Signal(object)
    classes_changed = Signal()
    # A run id, or None when the list of runs changed.
    runs_changed = Signal(object)
    # The undo stack changed: (can_undo, can_redo).
    undo_changed = Signal(bool, bool)

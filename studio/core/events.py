"""Change events of a project. psygnal works without Qt, so the core stays Qt-free and
the window connects to these signals (and hops to its own thread where needed)."""

from __future__ import annotations

from psygnal import Signal, SignalGroup


class ProjectEvents(SignalGroup):
    # Lists of image ids whose rows changed (status, split, added, deleted); None = many.
    images_changed = Signal(object)
    # Lists of image ids whose annotations changed.
    annotations_changed = Signal(object)
    classes_changed = Signal()
    # A run id, or None when the list of runs changed.
    runs_changed = Signal(object)
    # The undo stack changed: (can_undo, can_redo).
    undo_changed = Signal(bool, bool)

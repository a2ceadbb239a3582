"""The one bridge from the project's psygnal events to Qt signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal


class ProjectBridge(QObject):
    """Re-emits a project's psygnal events as Qt signals, queued to the GUI thread.

    Project events fire inside whichever thread wrote; widgets must only be touched from
    the GUI thread, and a slot that re-queries the database should not run in the middle
    of the write that triggered it. Queued signals give both.
    """

    images_changed = Signal(object)
    annotations_changed = Signal(object)
    # Annotation ids a write touched, just before its `annotations_changed` (see
    # ProjectEvents): the same order here, since both are queued or both direct.
    annotation_rows_changed = Signal(object)
    classes_changed = Signal()
    runs_changed = Signal(object)
    undo_changed = Signal(bool, bool)

    def __init__(self, events: Any, parent: QObject | None = None):
        super().__init__(parent)
        self._events = events
        self._links = [
            (events.images_changed, self._images),
            (events.annotation_rows_changed, self._annotation_rows),
            (events.annotations_changed, self._annotations),
            (events.classes_changed, self._classes),
            (events.runs_changed, self._runs),
            (events.undo_changed, self._undo),
        ]
        for signal, slot in self._links:
            signal.connect(slot)

    def disconnect_project(self) -> None:
        for signal, slot in self._links:
            signal.disconnect(slot)
        self._links = []

    def connect_queued(self, name: str, slot: Callable[..., Any]) -> None:
        getattr(self, name).connect(slot, Qt.ConnectionType.QueuedConnection)

    def _images(self, ids: object) -> None:
        self.images_changed.emit(ids)

    def _annotations(self, ids: object) -> None:
        self.annotations_changed.emit(ids)

    def _annotation_rows(self, ann_ids: object) -> None:
        self.annotation_rows_changed.emit(ann_ids)

    def _classes(self) -> None:
        self.classes_changed.emit()

    def _runs(self, run_id: object) -> None:
        self.runs_changed.emit(run_id)

    def _undo(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_changed.emit(can_undo, can_redo)

"""The browser's model-error controls: the "Errors" filter, the error sort keys and the
"Showing N images from Inspect ✕" chip.

They work after the SQL query (`studio.core.browse.query_images` gives the ids in
browser order), in Python over that id list and the per-image counts the Inspect dock
emits (`studio.ml.analysis.per_image.ErrorIndex`, built once per set of counts): a few
numpy passes, milliseconds for 100,000 ids, so moving the score slider never queries the
database again. The controls only appear while there are counts (the filter) or a
pinned set of images (the chip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QPushButton, QWidget

from studio.ml.analysis.per_image import ErrorFilter, ErrorIndex, ErrorSort, ImageErrors

FILTER_LABELS = {
    ErrorFilter.ANY: "Any errors",
    ErrorFilter.FALSE_POSITIVES: "With false positives",
    ErrorFilter.MISSED: "With missed labels",
    ErrorFilter.ANY_ERROR: "With any error",
    ErrorFilter.CORRECT: "Correct",
}
SORT_LABELS = {
    ErrorSort.FALSE_POSITIVES: "False positives",
    ErrorSort.MISSED: "Missed",
    ErrorSort.LOWEST_CONFIDENCE: "Lowest confidence",
    ErrorSort.DISAGREEMENT: "Disagreement",
}
SQL_SORT = "name"  # the SQL order under an error sort: ties stay in name order


def error_sort(data: object) -> ErrorSort | None:
    """The error sort a sort combo's item data stands for (None: an SQL sort). Qt hands
    item data back as plain strings, so the enum is rebuilt from its value."""
    try:
        return ErrorSort(str(data))
    except ValueError:
        return None


class ErrorFilterBar(QObject):
    """Owns `combo` (the Errors filter) and `chip` (the pinned-images button); adds the
    error sort keys to the browser's `sort_combo` while counts exist. Emits `changed`
    when what `apply` returns may have changed."""

    changed = Signal()

    def __init__(self, sort_combo: QComboBox, parent: QWidget | None = None):
        super().__init__(parent)
        self.counts: Mapping[int, ImageErrors] = {}
        self.index = ErrorIndex.of({})
        self.pinned: frozenset[int] | None = None
        self.pin_source = ""
        self.sort_combo = sort_combo
        self.combo = QComboBox(parent)
        self.combo.setToolTip("Images by the model's errors against the labels (Inspect)")
        for key, label in FILTER_LABELS.items():
            self.combo.addItem(label, key.value)
        self.combo.activated.connect(lambda _i: self.changed.emit())
        self.combo.setVisible(False)
        self.chip = QPushButton(parent)
        self.chip.setToolTip("Show every image again")
        self.chip.setVisible(False)
        self.chip.clicked.connect(self.clear_pin)

    # --- state ---

    def set_counts(self, counts: Mapping[int, ImageErrors]) -> None:
        """New per-image counts ({}: none). Without counts the filter and the error
        sorts go away (and the browser falls back to "any" and name order)."""
        self.counts = counts or {}
        self.index = ErrorIndex.of(self.counts)
        has = bool(self.counts)
        self.combo.setVisible(has)
        if not has:
            self.combo.setCurrentIndex(0)
        self._label_filter_items()
        self._sync_sort_items(has)
        self.changed.emit()

    def set_filter(self, which: ErrorFilter) -> None:
        """Choose an Errors filter option (what a click in the combo does)."""
        self.combo.setCurrentIndex(max(0, self.combo.findData(ErrorFilter(which).value)))
        self.changed.emit()

    def current_filter(self) -> ErrorFilter:
        return ErrorFilter(self.combo.currentData() or ErrorFilter.ANY)

    def pin(self, image_ids: Sequence[int], source: str = "Inspect") -> None:
        """Show only `image_ids` (in browser order) until the chip is clicked."""
        self.pinned = frozenset(int(i) for i in image_ids)
        self.pin_source = source
        self.chip.setVisible(True)
        self.changed.emit()

    def clear_pin(self) -> None:
        if self.pinned is None:
            return
        self.pinned = None
        self.chip.setVisible(False)
        self.changed.emit()

    # --- applying ---

    def sql_order(self, sort_data: object, descending: bool) -> tuple[str, bool]:
        """(sort, descending) for the SQL query: under an error sort, name ascending
        (the error sort then orders and reverses in Python)."""
        if error_sort(sort_data) is not None:
            return SQL_SORT, False
        return str(sort_data), descending

    def apply(self, ids: Sequence[int], sort_data: object, descending: bool) -> list[int]:
        """`ids` (the SQL result in browser order) narrowed to the pinned images and the
        Errors filter, then ordered by the error sort if one is chosen."""
        out = list(ids)
        if self.pinned is not None:
            pinned = self.pinned
            out = [i for i in out if i in pinned]
        if self.counts:
            out = self.index.filter(out, self.current_filter())
            key = error_sort(sort_data)
            if key is not None:
                out = self.index.sort(out, key, descending)
        if self.pinned is not None:
            n = len(out)
            self.chip.setText(
                f"Showing {n:,} image{'' if n == 1 else 's'} from {self.pin_source}  ✕"
            )
        return out

    # --- combos ---

    def _label_filter_items(self) -> None:
        for i in range(self.combo.count()):
            which = ErrorFilter(self.combo.itemData(i))
            label = FILTER_LABELS[which]
            if self.counts and which != ErrorFilter.ANY:
                label = f"{label} ({int(self.index.passes(which).sum()):,})"
            self.combo.setItemText(i, label)

    def _sync_sort_items(self, has: bool) -> None:
        combo = self.sort_combo
        present = [i for i in range(combo.count()) if error_sort(combo.itemData(i)) is not None]
        if has and not present:
            combo.insertSeparator(combo.count())
            for key, label in SORT_LABELS.items():
                combo.addItem(label, key.value)
        elif not has and present:
            if error_sort(combo.currentData()) is not None:
                combo.setCurrentIndex(0)  # back to the first SQL sort (name)
            for i in reversed(present):
                combo.removeItem(i)
            combo.removeItem(present[0] - 1)  # the separator

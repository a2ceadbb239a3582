"""Review the shown image's predictions: a list of those drawn (best score first, with
their outcome), and Accept / Accept all / Reject. Keys: A accepts the selected
prediction (or the selected pre-labelled shapes on the canvas), R rejects it.

The panel works on the canvas's predictions layer through its public methods (it is
handed the layer object; the canvas package is not imported, see the import contracts).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.project import Project
from studio.ui.analysis.review import (
    accept_predictions,
    accept_prelabelled,
    reject_prelabelled,
)

ACCEPT_KEY, REJECT_KEY = "Shift+A", "R"  # the defaults of review.accept / review.reject


class ReviewPanel(QWidget):
    """The predictions of the shown image, for review."""

    accepted = Signal(list)  # new annotation ids
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self.layer: Any = None  # the canvas's PredictionLayer
        self.canvas: Any = None  # for the selected pre-labelled shapes
        self._build()

    def _build(self) -> None:
        self.counts = QLabel("")
        self.counts.setWordWrap(True)
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._on_current)
        self.btn_accept = QPushButton(f"Accept ({ACCEPT_KEY})")
        self.btn_all = QPushButton("Accept all shown")
        self.btn_reject = QPushButton(f"Reject ({REJECT_KEY})")
        self.btn_accept.clicked.connect(self.accept_selected)
        self.btn_all.clicked.connect(self.accept_all)
        self.btn_reject.clicked.connect(self.reject_selected)
        row = QHBoxLayout()
        for b in (self.btn_accept, self.btn_all, self.btn_reject):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.counts)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        self.accept_action = self._key_action(ACCEPT_KEY, self.accept_selected)
        self.reject_action = self._key_action(REJECT_KEY, self.reject_selected)

    def _key_action(self, key: str, slot: Any) -> QAction:
        # Window-wide, so the key works while the canvas has the focus.
        action = QAction(self)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        action.changed.connect(self._label_buttons)
        self.addAction(action)
        return action

    def bind_keys(self, registry: Any) -> None:
        """Take the keys of review.accept and review.reject from the window's
        ShortcutRegistry (listed in Help ▸ Keyboard shortcuts, changeable there)."""
        registry.bind(self.accept_action, "review.accept")
        registry.bind(self.reject_action, "review.reject")

    def _label_buttons(self) -> None:
        """The buttons say the keys their actions have now (the user can change them)."""
        for button, text, action in ((self.btn_accept, "Accept", self.accept_action),
                                     (self.btn_reject, "Reject", self.reject_action)):  # fmt: skip
            keys = action.shortcuts()
            shown = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
            button.setText(f"{text} ({shown})" if shown else text)

    # --- the list ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rebuild the list from the layer (after a new image, threshold or IoU)."""
        layer = self.layer
        keep = layer.selected if layer is not None else None
        self.list.blockSignals(True)
        self.list.clear()
        if layer is None or layer.run_id is None:
            self.counts.setText("Choose a run with predictions.")
            self.list.blockSignals(False)
            return
        names = layer.class_names
        for pred_id in layer.visible_ids():
            r = layer.row(pred_id)
            name = names.get(r["class_id"], str(r["class_id"]))
            text = f"{name}  {r['score']:.2f}  {layer.outcome_of(pred_id).upper()}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, pred_id)
            self.list.addItem(item)
            if pred_id == keep:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        c = layer.counts()
        self.counts.setText(
            f"This image: {self.list.count()} shown · TP {c['tp']} · FP {c['fp']} · "
            f"missed {c['fn']}"
        )

    def _on_current(self, item: QListWidgetItem | None, _prev: object) -> None:
        if self.layer is not None:
            self.layer.select(item.data(Qt.ItemDataRole.UserRole) if item else None)
        if item is not None and self.canvas is not None:
            self.canvas.select([])  # the prediction picked last is what Shift+A and R take

    def canvas_selected(self, ids: list[int]) -> None:
        """The canvas's selection changed: shapes picked there come before a
        prediction picked earlier in the list."""
        if ids and self.list.currentItem() is not None:
            self.list.blockSignals(True)
            self.list.setCurrentRow(-1)
            self.list.blockSignals(False)
            if self.layer is not None:
                self.layer.select(None)

    def _canvas_selection(self) -> list[int]:
        return self.canvas.selected_annotation_ids() if self.canvas is not None else []

    def select_prediction(self, pred_id: int | None) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == pred_id:
                self.list.setCurrentRow(i)
                return

    def _selected_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    # --- actions -------------------------------------------------------------------------

    def accept_selected(self) -> list[int]:
        """Accept the selected prediction as a label (one undo step); without one, the
        canvas's selected pre-labelled shapes. Then select the next prediction."""
        if self.project is None or self.layer is None:
            return []
        pred_id = self._selected_id()
        if pred_id is None:
            ids = accept_prelabelled(self.project, self._canvas_selection())
            self._done(ids, f"accepted {len(ids)} pre-labelled shapes")
            return ids
        row = self.list.currentRow()
        ids = accept_predictions(self.project, [self.layer.row(pred_id)])
        self.layer.reload_labels()  # the prediction is a label now: the layer hides it
        self._done(ids, "accepted 1 prediction")
        self.list.setCurrentRow(min(row, self.list.count() - 1))
        return ids

    def accept_all(self) -> list[int]:
        """Accept every prediction drawn now (at or above the threshold) that adds an
        object, one undo step: one on a label of its class (a TP, or its duplicate) or
        on a higher-scoring prediction of its class is skipped, and said."""
        if self.project is None or self.layer is None:
            return []
        new = self.layer.new_object_ids()
        skipped = len(self.layer.visible_ids()) - len(new)
        ids = accept_predictions(self.project, [self.layer.row(i) for i in new])
        self.layer.reload_labels()
        extra = f" ({skipped} already labelled or duplicates, skipped)" if skipped else ""
        self._done(ids, f"accepted {len(ids)} predictions{extra}")
        return ids

    def reject_selected(self) -> None:
        """Hide the selected prediction for this session; without one, delete the
        canvas's selected pre-labelled shapes (one undo step)."""
        pred_id = self._selected_id()
        if pred_id is None and self.project is not None:
            ids = reject_prelabelled(self.project, self._canvas_selection())
            if ids:
                self.message.emit(f"rejected {len(ids)} pre-labelled shapes")
            return
        if pred_id is None or self.layer is None:
            return
        row = self.list.currentRow()
        self.layer.dismiss([pred_id])
        self.refresh()
        self.list.setCurrentRow(min(row, self.list.count() - 1))
        self.message.emit("rejected 1 prediction")

    def _done(self, ids: list[int], text: str) -> None:
        self.refresh()
        if ids:
            self.accepted.emit(ids)
            self.message.emit(text)

"""Reviewing shapes a model pre-labelled: R deletes the one selected on the canvas (it
did nothing, though the README promised it), and the object picked last, on the canvas
or in the review list, is the one Shift+A and R act on."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidgetItem

from studio.core.kinds import Source


def _prelabelled(window) -> tuple[int, int]:
    image = window.project.images()[4].id
    cid = window.project.classes()[0].id
    ann = window.project.add_annotation(
        image, cid, "box", bbox=(5, 5, 20, 15), source=Source.PREDICTED, score=0.8
    )
    window.show_image(image)
    return image, ann


def test_r_rejects_the_pre_labelled_shape_selected_on_the_canvas(window, qtbot):
    image, ann = _prelabelled(window)
    review = window.inspect_dock.review
    window.canvas.select([ann])
    review.reject_selected()
    assert window.project.annotations(ids=[ann]) == []
    window.project.undo()  # one step brings it back
    assert window.project.annotations(ids=[ann])[0].source == Source.PREDICTED


def test_a_shape_picked_on_the_canvas_comes_before_a_prediction_picked_earlier(window, qtbot):
    image, ann = _prelabelled(window)
    review = window.inspect_dock.review
    item = QListWidgetItem("tile 0.90")
    item.setData(Qt.ItemDataRole.UserRole, 12345)  # a stored prediction's id
    review.list.addItem(item)
    review.list.setCurrentRow(0)
    assert review._selected_id() == 12345
    window.canvas.select([ann])  # the user picks the pre-labelled shape after it
    assert review._selected_id() is None
    accepted = review.accept_selected()
    (label,) = window.project.annotations(ids=accepted)
    assert label.bbox == (5, 5, 20, 15) and label.source == Source.MANUAL

"""Importing annotations whose images are partly missing, from the window: the import
dialog's "skip images that are not found" check box (kept in the user's settings), the
report that lists what was left out by file name, and errors that never name a
command-line flag."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from studio.ui.project.import_dialogs import saved_skip_missing


def _labelme_folder(folder, missing=("gone.png", "lost.jpg")):
    """a.json with its 40x30 image beside it; one more .json per name in `missing`,
    each naming an image that is nowhere; every file holds one 'cat' rectangle."""
    folder.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "a_only.png")
    for stem, image in (("a", "a_only.png"), *((f"m{i}", n) for i, n in enumerate(missing))):
        doc = {
            "shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
            "imagePath": image, "imageHeight": 30, "imageWidth": 40,
        }  # fmt: skip
        (folder / f"{stem}.json").write_text(json.dumps(doc))


def _count(window, table: str) -> int:
    with sqlite3.connect(window.project.db_path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _accept(qtbot, dialog) -> None:
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_skip_missing_check_box_imports_the_rest_and_lists_the_missing_by_name(
    window, qtbot, tmp_path
):
    folder = tmp_path / "labels"
    _labelme_folder(folder)
    before = _count(window, "annotations")
    transfers = window.transfers
    dialog = transfers.import_annotations_interactive("labelme")
    assert not dialog.skip_missing.isChecked()  # off until the user turns it on
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    dialog.source.setText(str(folder))
    qtbot.mouseClick(dialog.skip_missing, Qt.MouseButton.LeftButton)
    _accept(qtbot, dialog)
    qtbot.waitUntil(lambda: transfers.report_dialog is not None, timeout=10_000)
    report = transfers.report_dialog
    # One transaction: the image that is there and its shape, nothing of the others.
    assert _count(window, "annotations") == before + 1
    listed = [
        report.missing.topLevelItem(i).text(0) for i in range(report.missing.topLevelItemCount())
    ]
    assert listed == ["gone.png", "lost.jpg"]
    assert report.missing.topLevelItem(0).text(1).endswith("m0.json: imagePath")
    assert report.missing.isVisibleTo(report)
    assert "gone.png" in report.text() and "lost.jpg" in report.text()
    # The choice is kept: the next dialog starts ticked, and drops skip too.
    assert saved_skip_missing()
    again = transfers.import_annotations_interactive("coco")
    assert again.skip_missing.isChecked()
    again.reject()


def test_without_the_check_box_nothing_is_imported_and_the_rest_is_offered(window, qtbot, tmp_path):
    folder = tmp_path / "labels"
    _labelme_folder(folder, missing=("gone.png",))
    before = _count(window, "annotations")
    transfers = window.transfers
    dialog = transfers.import_annotations_interactive("labelme")
    dialog.source.setText(str(folder))
    _accept(qtbot, dialog)
    qtbot.waitUntil(lambda: transfers.missing_box is not None, timeout=10_000)
    box = transfers.missing_box
    text = box.text() + box.informativeText()
    assert "gone.png" in text and "Nothing was imported" in text
    assert "--" not in text and "Skip images that are not found" in text
    assert _count(window, "annotations") == before
    transfers.retry_button.click()
    qtbot.waitUntil(lambda: transfers.report_dialog is not None, timeout=10_000)
    assert _count(window, "annotations") == before + 1
    assert transfers.report_dialog.missing.topLevelItem(0).text(0) == "gone.png"


def test_yolo_labels_without_images_say_so_without_a_flag(window, qtbot, tmp_path):
    labels = tmp_path / "yolo" / "labels"
    labels.mkdir(parents=True)
    (labels.parent / "classes.txt").write_text("cat\n")
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    images_before = _count(window, "images")
    transfers = window.transfers
    dialog = transfers.import_annotations_interactive("yolo")
    dialog.source.setText(str(labels.parent))
    _accept(qtbot, dialog)
    qtbot.waitUntil(lambda: transfers.error_box is not None, timeout=10_000)
    text = transfers.error_box.text()
    assert "no image found for any of its 1 label files (a.txt)" in text
    assert "--" not in text and "Nothing was imported" in text
    assert _count(window, "images") == images_before

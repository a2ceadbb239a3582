"""Bringing labelled folders into the window: an annotation import whose images are
partly missing says so in the window's words and offers to import the rest."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
from PIL import Image


def _labelme_folder(folder):
    """a.json with its image beside it; b.json whose image is nowhere."""
    folder.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "a_only.png")
    for stem, image in (("a", "a_only.png"), ("b", "gone.png")):
        doc = {
            "shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
            "imagePath": image, "imageHeight": 30, "imageWidth": 40,
        }  # fmt: skip
        (folder / f"{stem}.json").write_text(json.dumps(doc))


def test_missing_images_offer_to_import_the_rest(window, qtbot, tmp_path):
    folder = tmp_path / "labels"
    _labelme_folder(folder)
    with sqlite3.connect(window.project.db_path) as conn:
        before = conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0]
    transfers = window.transfers
    task = transfers._import([("labelme", folder, None)])
    qtbot.waitUntil(lambda: task.done, timeout=10_000)
    qtbot.waitUntil(lambda: getattr(transfers, "missing_box", None) is not None, timeout=5000)
    box = transfers.missing_box
    text = box.text() + box.informativeText()
    assert "gone.png" in text and "Nothing was imported" in text
    assert "--" not in text  # no command-line flags for a window user
    with sqlite3.connect(window.project.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == before
    transfers.retry_button.click()
    qtbot.waitUntil(lambda: "imported 1 images, 1 shapes" in transfers.last_report, timeout=10_000)
    assert "gone.png" in transfers.last_report and "image not found" in transfers.last_report
    with sqlite3.connect(window.project.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == before + 1

"""Bringing labelled folders into the window: an annotation import whose images are
partly missing says so in the window's words and offers to import the rest."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
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
    qtbot.waitUntil(lambda: "imported 1 image, 1 shape" in transfers.last_report, timeout=10_000)
    assert "gone.png" in transfers.last_report and "image not found" in transfers.last_report
    with sqlite3.connect(window.project.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == before + 1


# --- File > Open folder, File > New, `studio FOLDER` ---------------------------------------


def _labelme_shot(folder, stem, box):
    """A labelme save: the image and a same-name .json whose rectangle is `box`
    (x0, y0, x1, y1) in pixels of the 40x30 image."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((30, 40, 3), 80, np.uint8)).save(folder / f"{stem}.jpg")
    x0, y0, x1, y1 = box
    doc = {
        "shapes": [{"label": "cat", "points": [[x0, y0], [x1, y1]], "shape_type": "rectangle"}],
        "imagePath": f"{stem}.jpg", "imageHeight": 30, "imageWidth": 40,
    }  # fmt: skip
    (folder / f"{stem}.json").write_text(json.dumps(doc))


def _boxes(project_dir):
    with sqlite3.connect(project_dir / "studio.db") as conn:
        return sorted(conn.execute("SELECT x, y, w, h FROM annotations").fetchall())


def test_file_open_folder_makes_the_project_and_reopens_it(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "shots"
    _labelme_shot(folder, "a", (2, 3, 12, 13))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    opener = window.folders
    assert window.shortcuts.keys("file.open_folder")[0].toString() == "Ctrl+U"
    window.actions["file.open_folder"].trigger()
    qtbot.waitUntil(lambda: opener.task is not None and opener.task.done, timeout=10_000)
    qtbot.waitUntil(lambda: opener.report_box is not None, timeout=5000)
    project_dir = folder.resolve() / ".studio"
    assert window.project is not None and window.project.path == project_dir
    assert window.project.image_count() == 1 and window.browser.ids()
    assert _boxes(project_dir) == [(2.0, 3.0, 10.0, 10.0)]
    assert "created project" in opener.report_box.text()
    assert "imported 1 image, 1 shape" in opener.last_report
    # A new labelled image arrives; the second open imports only it, into the same project.
    _labelme_shot(folder, "b", (5, 5, 9, 9))
    first_task = opener.task
    window.actions["file.open_folder"].trigger()
    qtbot.waitUntil(lambda: opener.task is not first_task and opener.task.done, timeout=10_000)
    qtbot.waitUntil(lambda: "opened project" in opener.last_report, timeout=5000)
    assert window.project.path == project_dir and window.project.image_count() == 2
    assert _boxes(project_dir) == [(2.0, 3.0, 10.0, 10.0), (5.0, 5.0, 4.0, 4.0)]
    assert window.browser.model.rowCount() == 2


def test_file_new_creates_the_folder_it_is_given(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    target = tmp_path / "not" / "there" / "yet"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    # A dialog that only picks existing folders cannot name this one.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    window.actions["file.new"].trigger()
    assert (target / "studio.db").is_file()
    assert window.project is not None and window.project.path == target.resolve()


def test_cli_studio_folder_imports_then_opens_the_window(tmp_path, monkeypatch, capsys):
    from studio.cli import main

    folder = tmp_path / "shots"
    _labelme_shot(folder, "a", (2, 3, 12, 13))
    opened = []
    monkeypatch.setattr("studio.ui.app.run_app", lambda p, demo=False: opened.append(p) or 0)
    assert main([str(folder)]) == 0
    assert opened == [folder.resolve() / ".studio"]
    err = capsys.readouterr().err
    assert "created project" in err and "imported 1 image, 1 shape" in err
    assert _boxes(opened[0]) == [(2.0, 3.0, 10.0, 10.0)]
    assert main([str(folder)]) == 0  # reopened: nothing new, nothing doubled
    assert "no new label files" in capsys.readouterr().err
    assert _boxes(opened[0]) == [(2.0, 3.0, 10.0, 10.0)]


def test_cli_studio_folder_with_a_bad_sidecar_exits_2(tmp_path, monkeypatch, capsys):
    from studio.cli import main

    folder = tmp_path / "bad"
    _labelme_shot(folder, "a", (2, 3, 12, 13))
    (folder / "a.json").write_text('{"shapes": [{"label": "cat", "points": "oops"}]}')
    monkeypatch.setattr("studio.ui.app.run_app", lambda p, demo=False: pytest.fail("opened"))
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("studio: error:") and "a.json" in err and err.count("\n") == 1
    assert not (folder / ".studio").exists()

"""Imports, exports and Open folder from the window, as a user meets them: a drop of
several items lands whole or says what landed, the missing-image box imports only when
asked, a project folder is not images, long reports stay on the screen, nothing
imported is said, and an export never leaves half a dataset."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from studio.core.project import Project


def _count(window, table: str) -> int:
    with sqlite3.connect(window.project.db_path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def _voc_folder(folder, n: int = 3):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((30, 40, 3), (40 * i) % 256, np.uint8)).save(folder / f"v{i}.png")
        (folder / f"v{i}.xml").write_text(
            f"<annotation><filename>v{i}.png</filename><size><width>40</width>"
            "<height>30</height><depth>3</depth></size><object><name>car</name><bndbox>"
            "<xmin>2</xmin><ymin>3</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>"
            "</annotation>"
        )
    return folder


def _wait_done(qtbot, transfers) -> None:
    qtbot.waitUntil(lambda: transfers.task is not None and transfers.task.done, timeout=15_000)
    qtbot.wait(50)


def test_a_drop_with_a_bad_file_lands_nothing_and_says_so(window, qtbot, tmp_path):
    voc = _voc_folder(tmp_path / "voc")
    bad = tmp_path / "corrupt.json"
    bad.write_text('{"images": [1, 2')
    images, shapes = _count(window, "images"), _count(window, "annotations")
    window.transfers.import_paths([voc, bad])
    qtbot.waitUntil(lambda: window.transfers.error_box is not None, timeout=15_000)
    text = window.transfers.error_box.text()
    assert "corrupt.json" in text and "Nothing was imported." in text
    assert (_count(window, "images"), _count(window, "annotations")) == (images, shapes)


def test_ok_on_the_missing_image_box_imports_nothing(window, qtbot, tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    doc = {"shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
           "imagePath": "gone.png", "imageHeight": 30, "imageWidth": 40}  # fmt: skip
    (folder / "m.json").write_text(json.dumps(doc))
    before = _count(window, "annotations")
    transfers = window.transfers
    transfers.import_paths([folder / "m.json"])
    qtbot.waitUntil(lambda: transfers.missing_box is not None, timeout=15_000)
    box = transfers.missing_box
    roles = {b.text(): box.buttonRole(b) for b in box.buttons()}
    assert "OK" not in roles and set(roles) == {"Import the rest", "Cancel"}
    assert box.defaultButton().text() == "Cancel"  # Enter leaves the project as it was
    box.defaultButton().click()
    qtbot.wait(200)
    assert _count(window, "annotations") == before


def test_a_dropped_project_folder_is_not_imported_as_images(window, qtbot, tmp_path):
    other = tmp_path / "other"
    Project.create(other).close()
    (other / "cache" / "thumbs").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(other / "cache" / "thumbs" / "abc.jpg")
    before = _count(window, "images")
    window.transfers.import_paths([other])
    _wait_done(qtbot, window.transfers)
    assert _count(window, "images") == before
    assert "a Studio project: open it with File ▸ Open project" in window.transfers.last_report


def test_a_drop_of_many_files_reports_totals_that_fit_the_screen(window, qtbot, tmp_path):
    voc = _voc_folder(tmp_path / "many", n=20)
    window.transfers.import_paths(sorted(voc.iterdir()))
    _wait_done(qtbot, window.transfers)
    report = window.transfers.last_report.splitlines()
    assert report[0].startswith("21 imports: imported 20 images, 20 shapes")  # the images, 20 XML
    assert len(report) <= 6
    box = next(w for w in window.findChildren(QMessageBox) if w.isVisible())
    assert box.sizeHint().height() < 700


def test_an_import_that_brought_nothing_is_no_success(window, qtbot, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    window.transfers.import_paths([empty / "readme.txt"])
    _wait_done(qtbot, window.transfers)
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert any(b.windowTitle() == "Nothing was imported" for b in boxes) or (
        window.transfers.report_dialog is not None
        and window.transfers.report_dialog.windowTitle() == "Nothing was imported"
    )


def test_an_export_with_a_missing_image_writes_nothing(window, qtbot, tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.text()) or 0)
    gone = window.project.images()[0].abs_path
    gone.unlink()
    out = tmp_path / "voc_out"
    window.transfers.export("voc", out)
    qtbot.waitUntil(lambda: bool(shown), timeout=15_000)
    assert f"{gone}: image not found" in shown[0] and "nothing was exported" in shown[0]
    assert not out.exists() or not any(out.rglob("*"))


def test_a_folder_project_is_titled_by_its_folder(qtbot, tmp_path, window_write_images):
    from studio.core.open_folder import open_folder
    from studio.ui.main_window import MainWindow

    window_write_images(tmp_path / "holiday photos", 2)
    opened = open_folder(tmp_path / "holiday photos")
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    w.open_project(Project.open(opened.project_dir))
    assert w.windowTitle() == "holiday photos — Studio"
    w.close()


def test_yolo_without_class_names_gives_the_window_no_flag(tmp_path) -> None:
    from studio.core.errors import FormatError
    from studio.core.formats import read_yolo
    from studio.ui.project.import_dialogs import for_window

    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(FormatError) as exc:
        read_yolo(tmp_path / "y")
    assert "--classes" in str(exc.value) and "--" not in str(for_window(exc.value))


def test_annotations_dropped_with_their_images_find_them_by_name(window, qtbot, tmp_path):
    """A COCO file in Downloads naming "a.png", dropped together with the photos folder
    that holds it: the file is read before the images land, and still finds them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(photos / "dropped_a.png")
    coco = {
        "images": [{"id": 1, "file_name": "dropped_a.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 9, 9],
                         "area": 81, "iscrowd": 0, "segmentation": []}],
        "categories": [{"id": 1, "name": "cat"}],
    }  # fmt: skip
    (tmp_path / "Downloads").mkdir()
    (tmp_path / "Downloads" / "instances.json").write_text(json.dumps(coco))
    before = _count(window, "annotations")
    window.transfers.import_paths([photos, tmp_path / "Downloads" / "instances.json"])
    _wait_done(qtbot, window.transfers)
    assert _count(window, "annotations") == before + 1


def test_shapes_of_classes_an_import_added_are_drawn_in_their_colours(window, qtbot, tmp_path):
    """New classes from an import through the window: the canvas drew every shape of
    them in its fallback colour until the project was opened again."""
    folder = _voc_folder(tmp_path / "voc")
    window.transfers.import_paths([folder])
    _wait_done(qtbot, window.transfers)
    (car,) = [c for c in window.project.classes() if c.name == "car"]
    image = next(im for im in window.project.images() if im.path.endswith("v0.png"))
    window.show_image(image.id)
    layer = window.canvas.editor.shapes
    qtbot.waitUntil(lambda: car.id in layer.styles, timeout=5000)
    assert layer.styles[car.id].color.name() == car.color.lower()

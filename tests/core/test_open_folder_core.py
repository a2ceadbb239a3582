"""Opening a folder of images with sidecar labels in one step (labelme, LabelImg VOC and
YOLO): the project lands beside the images, shapes at the right pixels, and a second
open imports only what is new."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import StudioError
from studio.core.open_folder import PROJECT_DIR_NAME, find_sidecars, open_folder
from studio.core.project import Project

W, H = 40, 30


def _image(path: Path, w: int = W, h: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path)


def _labelme(folder: Path, stem: str, shapes: list[dict]) -> None:
    """What labelme saves beside an image: same name, .json, imagePath relative."""
    _image(folder / f"{stem}.jpg")
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg",
           "imageData": None, "imageHeight": H, "imageWidth": W}  # fmt: skip
    (folder / f"{stem}.json").write_text(json.dumps(doc))


def _rect(label: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"label": label, "points": [[x0, y0], [x1, y1]], "group_id": None,
            "shape_type": "rectangle", "flags": {}}  # fmt: skip


def _voc(folder: Path, stem: str, objects: list[tuple[str, int, int, int, int]]) -> None:
    """What LabelImg saves in PascalVOC mode: an .xml beside the image, with a <path>
    of the machine it was made on."""
    _image(folder / f"{stem}.png")
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objects
    )
    (folder / f"{stem}.xml").write_text(
        f"<annotation><folder>imgs</folder><filename>{stem}.png</filename>"
        f"<path>C:\\Users\\someone\\imgs\\{stem}.png</path><source><database>Unknown"
        f"</database></source><size><width>{W}</width><height>{H}</height><depth>3</depth>"
        f"</size><segmented>0</segmented>{objs}</annotation>"
    )


def _yolo(folder: Path, stem: str, lines: list[str], classes=("cat", "dog")) -> None:
    """What LabelImg saves in YOLO mode: a .txt beside the image and classes.txt."""
    _image(folder / f"{stem}.jpg")
    (folder / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")


def _shapes(project_dir: Path) -> list[tuple[str, str, str, float, float, float, float]]:
    """(image file name, class, kind, x, y, w, h) of every shape, sorted."""
    with sqlite3.connect(project_dir / "studio.db") as conn:
        rows = conn.execute(
            "SELECT i.path, c.name, a.kind, a.x, a.y, a.w, a.h FROM annotations a "
            "JOIN images i ON i.id = a.image_id JOIN label_classes c ON c.id = a.class_id"
        ).fetchall()
    return sorted((Path(p).name, *rest) for p, *rest in rows)


def _count(project_dir: Path, table: str) -> int:
    with sqlite3.connect(project_dir / "studio.db") as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_labelme_folder_opens_with_its_shapes(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    _labelme(folder, "a", [_rect("cat", 2, 3, 12, 13)])
    _labelme(folder / "sub", "b", [_rect("dog", 30, 20, 5, 4),  # corners in any order
                                   {"label": "cat", "points": [[1, 1], [9, 1], [5, 8]],
                                    "shape_type": "polygon", "group_id": None}])  # fmt: skip
    _image(folder / "unlabelled.jpg")
    (folder / "notes.json").write_text('{"not": "labelme"}')  # passed over, not an error
    opened = open_folder(folder)
    assert opened.created and opened.project_dir == folder.resolve() / PROJECT_DIR_NAME
    assert _count(opened.project_dir, "images") == 3
    assert _shapes(opened.project_dir) == [
        ("a.jpg", "cat", "box", 2.0, 3.0, 10.0, 10.0),
        ("b.jpg", "cat", "polygon", 1.0, 1.0, 8.0, 7.0),
        ("b.jpg", "dog", "box", 5.0, 4.0, 25.0, 16.0),
    ]
    # The user's folder gained one entry, the hidden project folder.
    assert sorted(p.name for p in folder.iterdir()) == [
        ".studio", "a.jpg", "a.json", "notes.json", "sub", "unlabelled.jpg"
    ]  # fmt: skip


def test_labelimg_voc_folder_finds_images_despite_a_foreign_path(tmp_path: Path) -> None:
    folder = tmp_path / "voc"
    _voc(folder, "street", [("car", 4, 5, 20, 25), ("person", 30, 2, 38, 28)])
    _voc(folder, "empty", [])
    (folder / "settings.xml").write_text("<config><x>1</x></config>")  # not VOC
    opened = open_folder(folder)
    assert _shapes(opened.project_dir) == [
        ("street.png", "car", "box", 4.0, 5.0, 16.0, 20.0),
        ("street.png", "person", "box", 30.0, 2.0, 8.0, 26.0),
    ]
    assert _count(opened.project_dir, "images") == 2


def test_labelimg_yolo_folder_uses_classes_txt(tmp_path: Path) -> None:
    folder = tmp_path / "yolo"
    _yolo(folder, "a", ["1 0.5 0.5 0.5 0.2", "0 0.25 0.25 0.1 0.2"])
    _yolo(folder, "b", [])
    opened = open_folder(folder)
    assert _shapes(opened.project_dir) == [
        ("a.jpg", "cat", "box", 8.0, 4.5, 4.0, 6.0),
        ("a.jpg", "dog", "box", 10.0, 12.0, 20.0, 6.0),
    ]
    assert [fmt for fmt, _ in opened.labels] == ["yolo"]


def test_yolo_labels_in_their_own_folder_beside_the_images(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    _image(folder / "a.jpg")
    (folder / "labels").mkdir()
    (folder / "labels" / "a.txt").write_text("0 0.5 0.5 1 1\n")
    (folder / "labels" / "classes.txt").write_text("cat\n")
    opened = open_folder(folder)
    assert _shapes(opened.project_dir) == [("a.jpg", "cat", "box", 0.0, 0.0, 40.0, 30.0)]


def test_second_open_imports_only_new_files(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    _labelme(folder, "a", [_rect("cat", 2, 3, 12, 13)])
    _yolo(folder / "y", "c", ["0 0.5 0.5 0.5 0.5"])
    first = open_folder(folder)
    assert first.added_annotations == 2
    # The user moves the imported box in Studio: the old sidecar must not bring it back.
    with Project.open(first.project_dir) as p:
        ann = p.annotations()[0]
        p.update_annotation(ann.id, bbox=(20, 10, 5, 5))
    again = open_folder(folder)
    assert not again.created and again.labels == [] and again.sidecar_files == 0
    assert again.images.added_images == 0 and again.images.present_images == 2
    assert _count(first.project_dir, "annotations") == 2
    # New files arrive: only they are imported.
    _labelme(folder, "d", [_rect("cat", 1, 1, 5, 5)])
    _yolo(folder / "y", "e", ["1 0.5 0.5 0.5 0.5"])
    third = open_folder(folder)
    assert third.images.added_images == 2 and third.sidecar_files == 2
    assert third.added_annotations == 2
    assert _count(first.project_dir, "annotations") == 4
    assert "no new label files" in "\n".join(again.summary_lines())


def test_malformed_sidecar_names_the_file_and_creates_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    _labelme(folder, "a", [{"label": "cat", "points": "oops", "shape_type": "polygon"}])
    with pytest.raises(StudioError, match="a.json"):
        open_folder(folder)
    assert not (folder / PROJECT_DIR_NAME).exists()


def test_project_inside_the_folder_must_be_hidden(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    _image(folder / "a.jpg")
    with pytest.raises(StudioError, match="hidden"):
        open_folder(folder, folder / "proj")
    opened = open_folder(folder, tmp_path / "elsewhere")
    assert opened.project_dir == (tmp_path / "elsewhere").resolve()
    assert _count(opened.project_dir, "images") == 1


def test_sidecars_are_recognised_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "mix"
    _labelme(folder, "a", [])
    _voc(folder, "b", [])
    (folder / "coco.json").write_text('{"images": [], "annotations": []}')
    (folder / ".studio").mkdir()
    (folder / ".studio" / "x.json").write_text('{"shapes": []}')  # hidden: never read
    found = find_sidecars(folder)
    assert [p.name for p in found.labelme] == ["a.json"]
    assert [p.name for p in found.voc] == ["b.xml"]
    assert found.yolo == []

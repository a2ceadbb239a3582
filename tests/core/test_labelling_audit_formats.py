"""labelme's not-a-class labels in a classes file, and import errors that carry their
command-line hint apart from their message (the window shows them without it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from studio.core.importing import import_annotations
from studio.core.project import Project


def _labelme_shot(folder: Path, make_jpeg) -> Path:
    folder.mkdir()
    make_jpeg(folder / "a.jpg", 50, 40)
    doc = {"shapes": [{"label": "person", "points": [[1, 1], [20, 20]],
                       "shape_type": "rectangle"}],
           "imagePath": "a.jpg", "imageHeight": 40, "imageWidth": 50}  # fmt: skip
    (folder / "a.json").write_text(json.dumps(doc))
    return folder


def test_labelme_labels_txt_makes_no_ignore_or_background_class(
    project: Project, tmp_path: Path, make_jpeg
) -> None:
    folder = _labelme_shot(tmp_path / "lm", make_jpeg)
    # labelme's own examples ship this labels.txt (labelme2coco/labelme2voc read it).
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n_background_\nperson\ncar\n")
    report = import_annotations(project, "labelme", folder, classes_file=labels)
    assert [c.name for c in project.classes()] == ["person", "car"]
    assert report.added_annotations == 1
    assert any("__ignore__, _background_ left out" in w for w in report.warnings)


def test_voc_class_names_txt_of_labelme2voc_makes_no_background_class(
    project: Project, tmp_path: Path, make_jpeg
) -> None:
    make_jpeg(tmp_path / "a.jpg", 40, 30)
    obj = "<object><name>car</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>9</xmax>"
    obj += "<ymax>8</ymax></bndbox></object>"
    (tmp_path / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{obj}</annotation>")
    names = tmp_path / "class_names.txt"
    names.write_text("_background_\ncar\nbus\n")
    import_annotations(project, "voc", tmp_path / "a.xml", classes_file=names)
    assert [c.name for c in project.classes()] == ["car", "bus"]


def test_images_folder_error_keeps_its_flag_apart(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    folder.mkdir()
    with pytest.raises(StudioError) as exc:
        import_annotations(project, "labelme", folder, images_dir=tmp_path / "nowhere")
    assert str(exc.value).endswith("(given as --images)")  # the command line's message
    window_text = str(exc.value.without_hint)  # type: ignore[attr-defined]
    assert "nowhere" in window_text and "--" not in window_text


def test_yolo_labels_without_images_keep_the_flag_apart(project: Project, tmp_path: Path) -> None:
    labels = tmp_path / "y" / "labels"
    labels.mkdir(parents=True)
    (labels.parent / "classes.txt").write_text("cat\n")
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(StudioError) as exc:
        import_annotations(project, "yolo", labels.parent)
    assert "pass --images with the folder that holds the images" in str(exc.value)
    window_text = str(exc.value.without_hint)  # type: ignore[attr-defined]
    assert window_text.endswith("label files (a.txt)") and "--" not in window_text
    assert project.image_count() == 0

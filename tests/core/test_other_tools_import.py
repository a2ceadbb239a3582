"""Files as CVAT, labelme and X-AnyLabeling write them, and exports another tool can
open: what a user moving to Studio, or away from it, hits first.

Every file here is written by the tests, in the shape the real tools write."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from studio.core.exporting import export_annotations
from studio.core.importing import import_annotations
from studio.core.project import Project


def _coco_doc(anns: list[dict], w: int = 200, h: int = 100) -> dict:
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "",
                 "version": "", "year": ""},
        "categories": [{"id": 1, "name": "car", "supercategory": ""}],
        "images": [{"id": 1, "width": w, "height": h, "file_name": "a.jpg", "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0}],
        "annotations": anns,
    }  # fmt: skip


def _cvat_ann(i: int, bbox: list[float], **attributes: object) -> dict:
    return {"id": i, "image_id": 1, "category_id": 1, "segmentation": [], "area": 0.0,
            "bbox": bbox, "iscrowd": 0, "attributes": {"occluded": False, **attributes}}  # fmt: skip


def test_a_cvat_coco_export_folder_imports_with_its_rotated_boxes_turned(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """CVAT's "COCO 1.0" export unzipped: annotations/instances_default.json beside
    images/. Given the folder, Studio finds the file; a box CVAT rotated (the box before
    turning plus "rotation" in degrees, clockwise on screen) lands as the turned
    rectangle, a 4-point polygon, and the report says so."""
    export = tmp_path / "task_1-coco"
    make_jpeg(export / "images" / "a.jpg", 200, 100)
    (export / "annotations").mkdir()
    doc = _coco_doc(
        [_cvat_ann(1, [20, 30, 40, 10]), _cvat_ann(2, [100, 40, 60, 20], rotation=90.0)]
    )
    (export / "annotations" / "instances_default.json").write_text(json.dumps(doc))
    report = import_annotations(project, "coco", export)
    assert report.added_images == 1 and report.added_annotations == 2
    assert any("1 rotated box" in w and "4-point polygons" in w for w in report.warnings)
    plain, turned = sorted(project.annotations([project.images()[0].id]), key=lambda a: a.id)
    assert plain.kind == "box" and plain.bbox == (20.0, 30.0, 40.0, 10.0)
    # 90 degrees about the centre (130, 50): a 60x20 box becomes a 20x60 one.
    assert turned.kind == "polygon"
    assert turned.bbox == pytest.approx((120.0, 20.0, 20.0, 60.0))
    corners = turned.polygons[0]
    # The top-left corner before turning (100, 40) goes to (140, 20): clockwise on screen.
    assert corners[:2] == pytest.approx([140.0, 20.0])


def test_a_cvat_rotation_of_a_box_turns_it_about_its_centre(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "a.jpg", 200, 100)
    f = tmp_path / "c.json"
    f.write_text(json.dumps(_coco_doc([_cvat_ann(1, [80, 30, 40, 40], rotation=45)])))
    import_annotations(project, "coco", f)
    (a,) = project.annotations([project.images()[0].id])
    half = 20 * math.sqrt(2)
    assert a.bbox == pytest.approx((100 - half, 50 - half, 2 * half, 2 * half))


def test_more_than_one_coco_file_in_annotations_is_named_in_the_error(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "d" / "images" / "a.jpg", 200, 100)
    (tmp_path / "d" / "annotations").mkdir()
    for name in ("person_keypoints_val.json", "captions_val.json"):
        (tmp_path / "d" / "annotations" / name).write_text(json.dumps(_coco_doc([])))
    with pytest.raises(Exception, match="more than one .json file here.*captions_val.json"):
        import_annotations(project, "coco", tmp_path / "d")
    assert project.image_count() == 0


def test_labelme_json_with_another_machines_image_path_finds_the_image_beside_it(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """labelme saves imagePath as it was on the labeller's machine; copied elsewhere
    with its image, the JSON still imports without --images."""
    make_jpeg(tmp_path / "lm" / "w1.jpg", 64, 48)
    doc = {
        "version": "5.4.1", "flags": {}, "imageData": None, "imageHeight": 48,
        "imageWidth": 64, "imagePath": "D:\\photos\\batch1\\w1.jpg",
        "shapes": [{"label": "cat", "points": [[4, 5], [20, 30]], "group_id": None,
                    "description": "", "shape_type": "rectangle", "flags": {}, "mask": None}],
    }  # fmt: skip
    (tmp_path / "lm" / "w1.json").write_text(json.dumps(doc))
    report = import_annotations(project, "labelme", tmp_path / "lm")
    assert report.added_annotations == 1
    assert project.images()[0].abs_path == tmp_path / "lm" / "w1.jpg"


def test_a_coco_export_folder_moves_whole_to_another_machine(
    demo_project: Project, tmp_path: Path
) -> None:
    """Exported to a folder, the images travel inside it; moved away from the project
    (the project deleted), the folder imports into a new project with every shape."""
    out = tmp_path / "export"
    export_annotations(demo_project, "coco", out)
    n_images, n_shapes = demo_project.image_count(), demo_project.annotation_count()
    (tmp_path / "elsewhere").mkdir()
    moved = out.rename(tmp_path / "elsewhere" / "export")
    with Project.create(tmp_path / "fresh") as fresh:
        report = import_annotations(fresh, "coco", moved)
        assert report.added_images == n_images
        assert report.added_annotations == n_shapes
        assert all(str(im.abs_path).startswith(str(moved)) for im in fresh.images())

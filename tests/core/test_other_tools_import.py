"""Files as CVAT, labelme and X-AnyLabeling write them, and exports another tool can
open: what a user moving to Studio, or away from it, hits first.

Every file here is written by the tests, in the shape the real tools write."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
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


# --- Ultralytics -------------------------------------------------------------------------


def _yolo_dataset(root: Path, make_jpeg, yaml_text: str, label: str) -> Path:
    make_jpeg(root / "images" / "train" / "a.jpg", 100, 50)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text(label)
    (root / "data.yaml").write_text(yaml_text)
    return root


def test_an_ultralytics_pose_dataset_imports_its_boxes_and_says_the_keypoints_stay_out(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """Pose lines are "class cx cy w h" then kpt_shape's numbers: read as a polygon
    through the keypoints before."""
    d = _yolo_dataset(
        tmp_path / "pose", make_jpeg,
        "path: .\ntrain: images/train\nval: images/train\nkpt_shape: [2, 3]\nnames: [person]\n",
        "0 0.5 0.5 0.4 0.6 0.45 0.3 2 0.55 0.7 1\n",
    )  # fmt: skip
    report = import_annotations(project, "yolo", d)
    (a,) = project.annotations([project.images()[0].id])
    assert a.kind == "box" and a.bbox == pytest.approx((30.0, 10.0, 40.0, 30.0))
    assert any("pose dataset" in w and "keypoints left out" in w for w in report.warnings)
    (d / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.4 0.6 0.45 0.3 2\n")
    with Project.create(tmp_path / "p2") as p2, pytest.raises(Exception, match="5 \\+ 6"):
        import_annotations(p2, "yolo", d)


def test_a_class_name_listed_twice_in_data_yaml_is_said(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    d = _yolo_dataset(
        tmp_path / "dup", make_jpeg,
        "path: .\ntrain: images/train\nval: images/train\nnames: [car, truck, car]\n",
        "0 0.2 0.2 0.1 0.1\n2 0.7 0.7 0.1 0.1\n",
    )  # fmt: skip
    report = import_annotations(project, "yolo", d)
    assert [c.name for c in project.classes()] == ["car", "truck"]
    assert any("'car' used by more than one class index" in w for w in report.warnings)


# --- X-AnyLabeling and labelme 5.5 --------------------------------------------------------


def _mask_png(w: int, h: int) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (w, h), 1).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_x_anylabeling_and_labelme_55_shapes_keep_what_they_say(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """X-AnyLabeling writes "difficult" and "score" beside the flags and turned boxes as
    "rotation"; labelme 5.5 writes AI masks as "mask" (a PNG of a box) and keeps circles."""
    make_jpeg(tmp_path / "x" / "y1.jpg", 200, 100)
    shapes = [
        {"label": "car", "points": [[10, 10], [60, 10], [60, 40], [10, 40]], "group_id": None,
         "description": "", "difficult": True, "score": 0.87, "shape_type": "rectangle",
         "flags": {}, "attributes": {}, "kie_linking": []},
        {"label": "ship", "points": [[100, 10], [120, 20], [110, 40], [90, 30]],
         "shape_type": "rotation", "direction": 0.46, "flags": {}},
        {"label": "blob", "points": [[150, 50], [159, 59]], "shape_type": "mask",
         "mask": _mask_png(10, 10), "flags": {}},
        {"label": "ball", "points": [[30, 70], [40, 70]], "shape_type": "circle", "flags": {}},
    ]  # fmt: skip
    doc = {"version": "2.4.4", "flags": {}, "shapes": shapes, "imagePath": "y1.jpg",
           "imageData": None, "imageHeight": 100, "imageWidth": 200}  # fmt: skip
    (tmp_path / "x" / "y1.json").write_text(json.dumps(doc))
    import_annotations(project, "labelme", tmp_path / "x")
    by_class = {c.id: c.name for c in project.classes()}
    got = {by_class[a.class_id]: a for a in project.annotations([project.images()[0].id])}
    assert got["car"].attributes.difficult and got["car"].score == pytest.approx(0.87)
    assert got["ship"].kind == "polygon" and got["ship"].bbox == (90, 10, 30, 30)
    assert got["blob"].kind == "mask" and got["blob"].bbox == (150, 50, 10, 10)
    assert got["ball"].kind == "polygon"
    assert got["ball"].bbox == pytest.approx((20, 60, 20, 20), abs=0.01)


def test_a_labelme_folder_brings_its_unlabelled_images_too(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """labelme writes no JSON for an image left unlabelled; they are still the folder's."""
    for name in ("a.jpg", "b.jpg", "sub/c.jpg"):
        make_jpeg(tmp_path / "lm" / name, 40, 30)
    doc = {"shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
           "imagePath": "a.jpg", "imageHeight": 30, "imageWidth": 40}  # fmt: skip
    (tmp_path / "lm" / "a.json").write_text(json.dumps(doc))
    report = import_annotations(project, "labelme", tmp_path / "lm")
    assert report.added_images == 3 and report.added_annotations == 1
    assert any("2 images have no labelme file" in w for w in report.warnings)


def test_opening_a_folder_with_a_corrupt_labelled_image_lands_the_rest(
    make_jpeg, tmp_path: Path
) -> None:
    """A corrupt photo named by its labelme file used to stop every label of the folder
    from landing, on every open; now its shapes alone stay out, and the JSON is named."""
    from studio.core.open_folder import open_folder

    folder = tmp_path / "photos"
    make_jpeg(folder / "a.jpg", 64, 48)
    (folder / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>64</width><height>48</height>"
        "<depth>3</depth></size><object><name>dog</name><bndbox><xmin>2</xmin><ymin>3</ymin>"
        "<xmax>20</xmax><ymax>30</ymax></bndbox></object></annotation>"
    )
    (folder / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG any more" * 3)
    doc = {"shapes": [{"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
           "imagePath": "b.jpg", "imageHeight": 48, "imageWidth": 64}  # fmt: skip
    (folder / "b.json").write_text(json.dumps(doc))
    opened = open_folder(folder)
    with Project.open(opened.project_dir) as p:
        assert [c.name for c in p.classes()] == ["dog"]
        assert p.annotation_count() == 1
    lines = "\n".join(opened.details())
    assert "b.json: b.jpg" in lines and "cannot be read" in lines


# --- exports other tools read --------------------------------------------------------------


def test_crowd_regions_and_voc_less_attributes_are_said_on_export(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "a.jpg", 200, 100)
    crowd = {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 100,
             "bbox": [50, 50, 10, 10], "segmentation": {"size": [100, 200], "counts": [5050, 10, 90, 10, 14840]}}  # fmt: skip
    noted = _cvat_ann(1, [20, 30, 40, 10], notes="front car", group_id=4)
    f = tmp_path / "c.json"
    f.write_text(json.dumps(_coco_doc([noted, crowd])))
    import_annotations(project, "coco", f)
    voc = export_annotations(project, "voc", tmp_path / "voc")
    assert any("1 crowd regions (iscrowd) written as difficult" in w for w in voc)
    assert any("group ids and notes of 1 shapes not written" in w for w in voc)
    xml = next((tmp_path / "voc" / "Annotations").glob("*.xml")).read_text()
    assert xml.count("<difficult>1</difficult>") == 1
    labelme = export_annotations(project, "labelme", tmp_path / "lm")
    assert any("1 crowd regions (iscrowd) left out" in w for w in labelme)
    (doc,) = [json.loads(p.read_text()) for p in (tmp_path / "lm").rglob("*.json")]
    assert len(doc["shapes"]) == 1


def test_a_mask_on_an_exif_rotated_photo_turns_with_its_box(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """A tool that ignores EXIF writes the stored size and stored pixels: boxes were
    turned to the displayed pixels, masks refused as "size differs". Now both turn."""
    from pycocotools import mask as mask_utils

    from studio.core.geometry import mask_from_rle

    make_jpeg(tmp_path / "r.jpg", 400, 300, orientation=6)  # displayed 300 x 400
    stored = np.zeros((300, 400), np.uint8)
    stored[20:70, 10:110] = 1
    rle = mask_utils.encode(np.asfortranarray(stored))
    rle["counts"] = rle["counts"].decode()
    doc = _coco_doc(
        [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": rle, "area": 5000,
          "bbox": [10, 20, 100, 50], "iscrowd": 0},
         {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [], "area": 5000,
          "bbox": [10, 20, 100, 50], "iscrowd": 0}], w=400, h=300,
    )  # fmt: skip
    doc["images"][0]["file_name"] = "r.jpg"
    (tmp_path / "c.json").write_text(json.dumps(doc))
    report = import_annotations(project, "coco", tmp_path / "c.json")
    assert report.added_annotations == 2, report.summary()
    mask, box = sorted(project.annotations([project.images()[0].id]), key=lambda a: a.id)
    assert box.bbox == (230, 10, 50, 100)  # turned 90 degrees clockwise, as displayed
    assert mask.kind == "mask" and mask.bbox == box.bbox
    pixels = mask_from_rle(mask.rle)
    assert pixels.shape == (400, 300) and int(pixels.sum()) == 5000


def test_exported_files_are_readable_by_others_as_any_new_file(
    demo_project: Project, tmp_path: Path
) -> None:
    """Written through a temporary file, exports came out owner-only (0600): a colleague
    or a training container under another user could not read them."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        for fmt in ("coco", "yolo", "voc", "labelme"):
            export_annotations(demo_project, fmt, tmp_path / fmt)
            written = [
                p
                for p in (tmp_path / fmt).rglob("*")
                if p.suffix in (".json", ".xml", ".txt", ".yaml")
            ]
            assert written, fmt
            modes = {stat.S_IMODE(p.stat().st_mode) for p in written}
            assert modes == {0o644}, (fmt, sorted(map(oct, modes)))
    finally:
        os.umask(old)


def test_a_labelme_mask_on_a_huge_declared_image_is_refused_not_allocated(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """A 2 x 2 mask in a file declaring a 1,000,000-pixel square image asked for 931 GB."""
    from studio.core.errors import FormatError

    make_jpeg(tmp_path / "m" / "a.jpg", 10, 8)
    shape = {"label": "blob", "points": [[1, 1], [2, 2]], "shape_type": "mask",
             "mask": _mask_png(2, 2), "flags": {}}  # fmt: skip
    doc = {"shapes": [shape], "imagePath": "a.jpg", "imageHeight": 1_000_000,
           "imageWidth": 1_000_000}  # fmt: skip
    (tmp_path / "m" / "a.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="too large to read"):
        import_annotations(project, "labelme", tmp_path / "m")
    assert project.image_count() == 0


def test_opening_an_ultralytics_dataset_folder_brings_its_labels(make_jpeg, tmp_path: Path) -> None:
    """Open folder found only LabelImg's classes.txt layout: a data.yaml dataset came in
    as bare images, "no new label files", with nothing said."""
    from studio.core.open_folder import open_folder

    d = _yolo_dataset(
        tmp_path / "ds", make_jpeg,
        "path: .\ntrain: images/train\nval: images/train\nnames: [car]\n",
        "0 0.5 0.5 0.2 0.2\n",
    )  # fmt: skip
    opened = open_folder(d)
    with Project.open(opened.project_dir) as p:
        assert p.image_count() == 1 and p.annotation_count() == 1
    again = open_folder(d)  # the dataset is not read twice
    with Project.open(again.project_dir) as p:
        assert p.annotation_count() == 1


def _cancel_at_image_headers(done: int, total: int, text: str) -> None:
    from studio.core.progress import Cancelled

    if "image headers" in text:  # after the project is made, before an image lands
        raise Cancelled()


def test_a_cancelled_first_open_leaves_no_project_behind(make_jpeg, tmp_path: Path) -> None:
    from studio.core.open_folder import default_project_dir, open_folder
    from studio.core.progress import Cancelled, Progress

    for i in range(3):
        make_jpeg(tmp_path / "f" / f"{i}.jpg", 20, 10, seed=i)
    with pytest.raises(Cancelled):
        open_folder(tmp_path / "f", progress=Progress(_cancel_at_image_headers))
    assert not default_project_dir(tmp_path / "f").exists()


def test_a_cancelled_open_into_a_chosen_folder_keeps_what_it_held(
    make_jpeg, tmp_path: Path
) -> None:
    """The project may go into a folder the user chose (their Documents, the images'
    parent): cancelling removes what making the project made, nothing of theirs."""
    from studio.core.open_folder import open_folder
    from studio.core.progress import Cancelled, Progress

    home = tmp_path / "home"
    for i in range(3):
        make_jpeg(home / "pics" / f"{i}.jpg", 20, 10, seed=i)
    (home / "thesis.docx").write_text("years of work")
    with pytest.raises(Cancelled):
        open_folder(home / "pics", project_dir=home, progress=Progress(_cancel_at_image_headers))
    assert sorted(p.name for p in home.iterdir()) == ["pics", "thesis.docx"]
    assert len(list((home / "pics").iterdir())) == 3


def test_a_yaml_that_is_no_dataset_does_not_stop_an_open(make_jpeg, tmp_path: Path) -> None:
    from studio.core.open_folder import open_folder

    make_jpeg(tmp_path / "f" / "a.jpg", 20, 10)
    (tmp_path / "f" / "data.yaml").write_text("lr: 0.01\nepochs: 30\n")
    opened = open_folder(tmp_path / "f")
    assert opened.images.added_images == 1


def test_a_project_folder_is_refused_as_images(project: Project, tmp_path: Path) -> None:
    from studio.core.errors import StudioError
    from studio.core.importing import detect_format, import_images

    other = tmp_path / "other"
    Project.create(other).close()
    assert detect_format(other) == "project"
    with pytest.raises(StudioError, match="is a Studio project, not a folder of images"):
        import_images(project, [other])

"""Annotation sets as other tools write them (LabelImg / X-AnyLabeling VOC XML,
X-AnyLabeling's YOLO layout and COCO export, COCO128-like polygons, labelme JSON) import
right: no label gained or lost silently, the same pixels in every tool, areas kept.

Every file here is written by the tests, in the shape the real tools write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio import cli
from studio.core.errors import FormatError
from studio.core.exporting import export_annotations
from studio.core.importing import import_annotations
from studio.core.project import Project


def labelimg_xml(image: Path, w: int, h: int, objects: list[tuple[str, int, int, int, int]]) -> str:
    """A Pascal VOC file as LabelImg and X-AnyLabeling save it (pixel-edge numbers)."""
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
        f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for n, x0, y0, x1, y1 in objects
    )
    return (
        f"<annotation><folder>{image.parent.name}</folder><filename>{image.name}</filename>"
        f"<path>{image}</path><source><database>Unknown</database></source>"
        f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objs}</annotation>"
    )


def run(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """`studio ARGS` in this process: (exit status, stdout, stderr). A traceback would
    fail the test (main lets only StudioError become a message)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --- 1. duplicates ---------------------------------------------------------------------------


def test_byte_identical_images_keep_their_own_boxes(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    """A VOC set with a pair of byte-identical photos under two names, each with its own
    XML: both are imported, each keeps its own box, the pair is reported, and twins in
    different splits are warned about."""
    voc = tmp_path / "raccoons"
    a = make_jpeg(voc / "JPEGImages" / "raccoon-1.jpg", 64, 48, seed=1)
    b = voc / "JPEGImages" / "raccoon-1-copy.jpg"
    b.write_bytes(a.read_bytes())
    make_jpeg(voc / "JPEGImages" / "raccoon-2.jpg", 64, 48, seed=2)
    ann = voc / "Annotations"
    ann.mkdir()
    (ann / "raccoon-1.xml").write_text(labelimg_xml(a, 64, 48, [("raccoon", 10, 8, 40, 30)]))
    (ann / "raccoon-1-copy.xml").write_text(labelimg_xml(b, 64, 48, [("raccoon", 11, 9, 41, 31)]))
    (ann / "raccoon-2.xml").write_text(
        labelimg_xml(voc / "JPEGImages" / "raccoon-2.jpg", 64, 48, [("raccoon", 1, 2, 3, 4)])
    )
    sets = voc / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("raccoon-1\nraccoon-2\n")
    (sets / "val.txt").write_text("raccoon-1-copy\n")

    report = import_annotations(project, "voc", ann)
    assert report.added_images == 3 and report.added_annotations == 3
    by_path = {im.path: im for im in project.images()}
    boxes = {by_path_id: [] for by_path_id in (im.id for im in by_path.values())}
    for x in project.annotations():
        boxes[x.image_id].append(x.bbox)
    copy = project.stored_path(b)
    orig = project.stored_path(a)
    assert boxes[by_path[orig].id] == [(10.0, 8.0, 30.0, 22.0)]
    assert boxes[by_path[copy].id] == [(11.0, 9.0, 30.0, 22.0)]
    assert report.duplicates == [(copy, orig)] or report.duplicates == [(orig, copy)]
    assert any("two splits leaks validation" in w for w in report.warnings)
    assert "1 duplicate pairs" in report.summary()

    # Re-importing the same files adds nothing.
    again = import_annotations(project, "voc", ann)
    assert (again.added_images, again.added_annotations) == (0, 0)
    assert (again.present_images, again.present_annotations) == (3, 3)
    assert project.annotation_count() == 3


# --- 2. YOLO labels and images in two folders -----------------------------------------------


def _xany_yolo(tmp_path: Path, make_jpeg) -> tuple[Path, Path, Path]:
    """X-AnyLabeling's YOLO export: images in one folder, labels/NAME.txt, classes.txt."""
    images = tmp_path / "xany"
    make_jpeg(images / "demo.jpg", 100, 50, seed=3)
    make_jpeg(images / "street.jpg", 80, 40, seed=4)
    labels = images / "labels"
    labels.mkdir()
    (labels / "demo.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n")
    (labels / "street.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("person\ncar\n")
    return images, labels, classes


def test_yolo_labels_beside_images_in_two_folders(
    project: Project, make_jpeg, tmp_path: Path, capsys
) -> None:
    images, labels, classes = _xany_yolo(tmp_path, make_jpeg)
    code, out, err = run(
        capsys, "import", project.path, "--format", "yolo", labels,
        "--images", images, "--classes", classes,
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0] == "imported 2 images, 3 shapes, 2 new classes"
    boxes = sorted((round(a.bbox[0], 6), round(a.bbox[2], 6)) for a in project.annotations())
    assert boxes == [(20.0, 10.0), (20.0, 40.0), (40.0, 20.0)]
    # Without --images, the same folder of images with labels/ inside imports too.
    with Project.create(tmp_path / "p2") as p2:
        report = import_annotations(p2, "yolo", images, classes_file=classes)
        assert (report.added_images, report.added_annotations) == (2, 3)


def test_yolo_labels_without_their_images_fail_naming_them(
    project: Project, make_jpeg, tmp_path: Path, capsys
) -> None:
    _, labels, classes = _xany_yolo(tmp_path, make_jpeg)
    elsewhere = tmp_path / "other_images"
    make_jpeg(elsewhere / "unrelated.jpg", 10, 10)
    code, out, err = run(
        capsys, "import", project.path, "--format", "yolo", labels,
        "--images", elsewhere, "--classes", classes,
    )  # fmt: skip
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"studio: error: {labels}")
    assert "no image found for any of its 2 label files (demo.txt, street.txt)" in line
    assert project.image_count() == 0 and project.classes() == []


# --- 3. COCO file_name without extension ----------------------------------------------------


def test_coco_file_name_without_extension_matches_by_stem(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "xany" / "demo.jpg", 60, 40)
    doc = {
        "images": [{"id": 1, "file_name": "demo", "width": 60, "height": 40}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 6, 10, 12], "area": 120,
             "iscrowd": 0, "segmentation": []},
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": ""}],
    }  # fmt: skip
    f = tmp_path / "xany" / "annotations.json"
    f.write_text(json.dumps(doc))
    report = import_annotations(project, "coco", f)
    assert report.added_images == 1
    assert project.images()[0].abs_path == tmp_path / "xany" / "demo.jpg"
    # Two images with that stem: ambiguous, said so, nothing imported.
    make_jpeg(tmp_path / "xany" / "demo.png", 60, 40)
    with Project.create(tmp_path / "p2") as p2:
        with pytest.raises(FormatError, match="has no extension and 2 images have that name"):
            import_annotations(p2, "coco", f)
        assert p2.image_count() == 0


# --- 4. crowd regions in a YOLO export ------------------------------------------------------


def test_crowd_regions_are_left_out_of_yolo_exports(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "c" / "a.jpg", 40, 40)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 40}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 100,
             "segmentation": [[1, 1, 11, 1, 11, 11, 1, 11]], "bbox": [1, 1, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 64,
             "segmentation": {"size": [40, 40], "counts": [800, 8, 32, 8, 752]},
             "bbox": [20, 0, 2, 8]},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }  # fmt: skip
    (tmp_path / "c" / "annotations.json").write_text(json.dumps(doc))
    import_annotations(project, "coco", tmp_path / "c" / "annotations.json")
    assert project.annotation_count() == 2
    warnings = export_annotations(project, "yolo", tmp_path / "y")
    lines = (tmp_path / "y" / "labels" / "train" / "a.txt").read_text().splitlines()
    if not lines:  # the image's split may be val
        lines = (tmp_path / "y" / "labels" / "val" / "a.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("0 ")
    assert any(w.startswith("1 crowd regions (iscrowd) left out") for w in warnings)


# --- 5. VOC numbers are pixel edges ---------------------------------------------------------


def test_voc_box_lands_on_the_same_pixels_as_in_labelimg(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    img = make_jpeg(tmp_path / "v" / "JPEGImages" / "big.jpg", 1400, 900)
    xml = tmp_path / "v" / "Annotations" / "big.xml"
    xml.parent.mkdir(parents=True)
    xml.write_text(labelimg_xml(img, 1400, 900, [("dog", 1294, 300, 1350, 420)]))
    import_annotations(project, "voc", xml)
    assert [a.bbox for a in project.annotations()] == [(1294.0, 300.0, 56.0, 120.0)]
    export_annotations(project, "coco", tmp_path / "out.json")
    (ann,) = json.loads((tmp_path / "out.json").read_text())["annotations"]
    assert ann["bbox"] == [1294.0, 300.0, 56.0, 120.0]
    export_annotations(project, "voc", tmp_path / "voc_out")
    text = (tmp_path / "voc_out" / "Annotations" / "big.xml").read_text()
    for tag, v in (("xmin", 1294), ("ymin", 300), ("xmax", 1350), ("ymax", 420)):
        assert f"<{tag}>{v}</{tag}>" in text


# --- 6. COCO areas survive a round trip -----------------------------------------------------


def test_coco_areas_are_kept_until_the_shape_is_edited(
    project: Project, make_jpeg, tmp_path: Path, sql
) -> None:
    """COCO128-like small polygons: the file's area (the polygon's own area, not the
    rasterised pixel count) comes back unchanged; an edit recomputes it; undo restores."""
    make_jpeg(tmp_path / "c128" / "images" / "000000000009.jpg", 64, 48)
    tri = [10.5, 10.5, 14.25, 10.5, 10.5, 13.75]
    doc = {
        "images": [{"id": 9, "file_name": "000000000009.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 9, "category_id": 1, "iscrowd": 0, "area": 6.09375,
             "segmentation": [tri], "bbox": [10.5, 10.5, 3.75, 3.25]},
            {"id": 2, "image_id": 9, "category_id": 1, "iscrowd": 0, "area": 77.5,
             "segmentation": [], "bbox": [30, 20, 10, 8]},
        ],
        "categories": [{"id": 1, "name": "bowl"}],
    }  # fmt: skip
    f = tmp_path / "c128" / "annotations.json"
    f.write_text(json.dumps(doc))
    import_annotations(project, "coco", f)
    assert sorted(r[0] for r in sql(project.db_path, "SELECT area FROM annotations")) == [
        6.09375,
        77.5,
    ]
    out = tmp_path / "again.json"
    export_annotations(project, "coco", out)
    areas = {a["bbox"][0]: a["area"] for a in json.loads(out.read_text())["annotations"]}
    assert areas == {10.5: 6.09375, 30.0: 77.5}

    poly = next(a for a in project.annotations() if a.kind == "polygon")
    moved = [v + 1 for v in tri]
    project.update_annotation(poly.id, polygons=[moved], bbox=(11.5, 11.5, 3.75, 3.25))
    assert project.annotations(ids=[poly.id])[0].area is None
    export_annotations(project, "coco", out)
    areas = {a["bbox"][0]: a["area"] for a in json.loads(out.read_text())["annotations"]}
    assert areas[11.5] == pytest.approx(3.75 * 3.25 / 2)  # shoelace of the triangle
    project.undo()
    assert project.annotations(ids=[poly.id])[0].area == 6.09375


# --- 7. re-importing the same annotation file -----------------------------------------------


def test_reimporting_a_coco_file_adds_nothing(
    project: Project, make_jpeg, tmp_path: Path, capsys
) -> None:
    make_jpeg(tmp_path / "d" / "a.jpg", 50, 50)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 50}],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": 1, "bbox": [i, i, 5, 5], "iscrowd": 0}
            for i in (1, 2, 3)
        ],
        "categories": [{"id": 1, "name": "x"}],
    }
    f = tmp_path / "d" / "annotations.json"
    f.write_text(json.dumps(doc))
    assert run(capsys, "import", project.path, "--format", "coco", f)[0] == 0
    code, out, err = run(capsys, "import", project.path, "--format", "coco", f, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["images"] == {
        "added": 0, "already_present": 1, "duplicates": [], "skipped": [], "missing": []
    }  # fmt: skip
    assert summary["annotations"] == {
        "added": 0, "already_present": 3, "clipped": 0, "rejected": {}
    }  # fmt: skip
    assert project.annotation_count() == 3


# --- labelme's not-a-class labels -----------------------------------------------------------


def test_labelme_ignore_and_background_labels_are_skipped_and_counted(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    make_jpeg(tmp_path / "lm" / "2011_000003.jpg", 50, 40)
    shapes = [
        {"label": "person", "points": [[1, 1], [20, 1], [20, 20]], "group_id": None,
         "description": "", "shape_type": "polygon", "flags": {}},
        {"label": "__ignore__", "points": [[30, 5], [40, 5], [40, 15]], "group_id": None,
         "description": "", "shape_type": "polygon", "flags": {}},
        {"label": "_background_", "points": [[0, 0], [5, 5]], "group_id": None,
         "description": "", "shape_type": "rectangle", "flags": {}},
    ]  # fmt: skip
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": "2011_000003.jpg",
           "imageData": None, "imageHeight": 40, "imageWidth": 50}  # fmt: skip
    (tmp_path / "lm" / "2011_000003.json").write_text(json.dumps(doc))
    report = import_annotations(project, "labelme", tmp_path / "lm")
    assert [c.name for c in project.classes()] == ["person"]
    assert report.added_annotations == 1
    assert report.rejected == {
        "shapes labelled __ignore__ skipped (labelme's not-a-class label)": 1,
        "shapes labelled _background_ skipped (labelme's not-a-class label)": 1,
    }
    assert "2 not imported" in report.summary()

"""Annotation attributes (occluded, truncated, difficult, group id, notes): set through
the project API as one undo step, and kept by every format that has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.errors import FormatError, StudioError
from studio.core.formats.coco import read_coco
from studio.core.formats.labelme import read_labelme
from studio.core.formats.voc import read_voc
from studio.core.importing import export_annotations, import_annotations
from studio.core.project import Project
from studio.core.records import NO_ATTRIBUTES, Attributes


def _attrs_by_box(p: Project) -> dict[tuple, Attributes]:
    """(image file name, rounded box) -> attributes, for every shape of `p`."""
    names = {im.id: im.name for im in p.images()}
    return {
        (names[a.image_id], tuple(round(v, 2) for v in a.bbox)): a.attributes
        for a in p.annotations()
    }


def _annotate(demo: Project) -> dict[tuple, Attributes]:
    """Give the demo's first shapes every kind of attribute; returns what it expects."""
    anns = demo.annotations()
    demo.set_attributes([anns[0].id, anns[1].id], occluded=True)
    demo.set_attributes([anns[2].id], truncated=True, difficult=True, group_id=7)
    demo.set_attributes([anns[3].id], notes="half hidden by a pole", group_id=0)
    return _attrs_by_box(demo)


def test_set_attributes_is_one_undo_step(demo_project: Project, sql) -> None:
    a, b = (x.id for x in demo_project.annotations()[:2])
    demo_project.set_attributes([a, b], occluded=True, notes="check")
    rows = sql(
        demo_project.db_path,
        f"SELECT occluded, truncated, difficult, group_id, notes FROM annotations "
        f"WHERE id IN ({a}, {b}) ORDER BY id",
    )
    assert [tuple(r) for r in rows] == [(1, 0, 0, None, "check")] * 2
    got = demo_project.annotations(ids=[a])[0].attributes
    assert got == Attributes(occluded=True, notes="check")
    assert demo_project.undo() is not None
    assert [x.attributes for x in demo_project.annotations(ids=[a, b])] == [NO_ATTRIBUTES] * 2
    demo_project.redo()
    assert demo_project.annotations(ids=[b])[0].attributes.occluded is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"occluded": 1}, "attribute occluded must be true or false"),
        ({"group_id": -1}, "group id must be a whole number >= 0"),
        ({"group_id": True}, "group id must be a whole number >= 0"),
        ({"notes": 5}, "notes must be text"),
        ({"blurry": True}, "unknown attribute 'blurry'"),
    ],
)
def test_bad_attribute_values_change_nothing(
    demo_project: Project, fields: dict, message: str
) -> None:
    a = demo_project.annotations()[0].id
    with pytest.raises(StudioError, match=message):
        demo_project.set_attributes([a], **fields)
    assert demo_project.annotations(ids=[a])[0].attributes == NO_ATTRIBUTES
    assert demo_project.undo_stack.can_undo is False


def test_deleting_and_undoing_keeps_attributes(demo_project: Project) -> None:
    a = demo_project.annotations()[0].id
    demo_project.set_attributes([a], difficult=True, group_id=3)
    demo_project.delete_annotations([a])
    demo_project.undo()
    assert demo_project.annotations(ids=[a])[0].attributes == Attributes(difficult=True, group_id=3)


def test_geometry_edit_keeps_attributes(demo_project: Project) -> None:
    ann = next(x for x in demo_project.annotations() if x.kind == "box")
    demo_project.set_attributes([ann.id], truncated=True)
    x, y, w, h = ann.bbox
    demo_project.update_annotation(ann.id, bbox=(x + 1, y, w, h))
    assert demo_project.annotations(ids=[ann.id])[0].attributes.truncated is True


@pytest.mark.parametrize("fmt", ["voc", "labelme", "coco"])
def test_attributes_round_trip(demo_project: Project, tmp_path: Path, fmt: str) -> None:
    want = _annotate(demo_project)
    out = tmp_path / fmt
    export_annotations(demo_project, fmt, out)
    src = out / "annotations.json" if fmt == "coco" else out
    with Project.create(tmp_path / "new") as new:
        images_dir = demo_project.path / "images" if fmt == "coco" else None
        import_annotations(new, fmt, src, images_dir=images_dir)
        got = _attrs_by_box(new)
    if fmt == "voc":
        # VOC has the three flags only: no group id, no notes.
        want = {k: Attributes(v.occluded, v.truncated, v.difficult) for k, v in want.items()}
    assert got == want
    assert sum(v != NO_ATTRIBUTES for v in got.values()) >= 3


def test_yolo_export_says_attributes_are_not_kept(demo_project: Project, tmp_path: Path) -> None:
    _annotate(demo_project)
    warnings = export_annotations(demo_project, "yolo", tmp_path / "y")
    assert any(
        w.startswith("attributes of 4 shapes") and "YOLO label files have no place" in w
        for w in warnings
    )


def test_voc_reads_labelimg_and_cvat_flags(tmp_path: Path, make_jpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", 40, 30)
    obj = (
        "<object><name>car</name><truncated>1</truncated><difficult>0</difficult>"
        "<occluded>true</occluded><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>9</xmax>"
        "<ymax>8</ymax></bndbox></object>"
    )
    (tmp_path / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{obj}</annotation>")
    (ann,) = read_voc(tmp_path / "a.xml").annotations
    assert ann.attributes == Attributes(occluded=True, truncated=True)


def test_labelme_group_id_description_and_flags(tmp_path: Path, make_jpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", 40, 30)
    shape = {
        "label": "person", "points": [[1, 1], [9, 9]], "shape_type": "rectangle",
        "group_id": 4, "description": "rider", "flags": {"occluded": True, "blurry": True},
    }  # fmt: skip
    bag = dict(shape, label="bag", description="", flags={})
    doc = {"shapes": [shape, bag], "imagePath": "a.jpg", "imageHeight": 30, "imageWidth": 40}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    person, bag_ann = read_labelme(tmp_path / "a.json").annotations
    assert person.attributes == Attributes(occluded=True, group_id=4, notes="rider")
    assert bag_ann.attributes == Attributes(group_id=4)
    doc["shapes"][0]["group_id"] = "x"
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"shapes\[0\]\.group_id"):
        read_labelme(tmp_path / "a.json")


def test_coco_reads_cvat_attributes_and_keeps_iscrowd_apart(tmp_path: Path, make_jpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", 40, 30)
    ann = {
        "id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 5], "iscrowd": 0,
        "attributes": {"occluded": True, "rotation": 0.0, "track_id": 3},
    }  # fmt: skip
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [ann],
    }
    (tmp_path / "c.json").write_text(json.dumps(data))
    (got,) = read_coco(tmp_path / "c.json").annotations
    assert got.attributes == Attributes(occluded=True)
    assert got.iscrowd is False
    ann["attributes"] = ["occluded"]
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match="attributes must be an object"):
        read_coco(tmp_path / "c.json")

"""CVAT's own XML ("CVAT for images 1.1"), written here as CVAT writes it: every shape
kind lands on the pixels CVAT drew it on, or is counted as left out; tracks are refused
with what to export instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import FormatError
from studio.core.geometry import mask_from_rle
from studio.core.importing import detect_format, import_annotations
from studio.core.project import Project

LABELS = "".join(
    f"<label><name>{n}</name><color>#fa3253</color><type>any</type><attributes/></label>"
    for n in ("car", "road", "tree")
)


def cvat_xml(images: str, tracks: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        f"  <meta><task><id>7</id><name>streets</name><labels>{LABELS}</labels></task>"
        "<dumped>2024-05-01 10:00:00.000000+00:00</dumped></meta>\n"
        f"{images}{tracks}</annotations>\n"
    )


IMAGE = """  <image id="0" name="sub/f1.jpg" subset="Validation" width="640" height="480">
    <box label="car" source="manual" occluded="0" xtl="100.00" ytl="100.00" xbr="300.00" ybr="200.00" z_order="0">
      <attribute name="truncated">true</attribute>
    </box>
    <box label="car" source="manual" occluded="1" xtl="400.00" ytl="200.00" xbr="500.00" ybr="240.00" rotation="90.00" z_order="0"/>
    <polygon label="road" source="manual" occluded="0" points="0.00,400.00;640.00,400.00;640.00,480.00" z_order="0"/>
    <polyline label="road" source="manual" occluded="0" points="0.00,0.00;100.00,100.00" z_order="0"/>
    <points label="car" source="manual" occluded="0" points="10.00,10.00" z_order="0"/>
    <ellipse label="car" source="manual" occluded="0" cx="320.00" cy="240.00" rx="20.00" ry="10.00" z_order="0"/>
    <mask label="road" source="semi-auto" occluded="0" rle="10, 20, 30" left="50" top="60" width="5" height="12" z_order="0"/>
    <tag label="tree" source="manual"/>
  </image>
"""


@pytest.fixture
def task(make_jpeg, tmp_path: Path) -> Path:
    """An unzipped "CVAT for images 1.1" task export: annotations.xml and images/."""
    folder = tmp_path / "task_7"
    make_jpeg(folder / "images" / "sub" / "f1.jpg", 640, 480)
    (folder / "annotations.xml").write_text(cvat_xml(IMAGE))
    return folder


def test_every_cvat_shape_lands_where_cvat_drew_it(project: Project, task: Path) -> None:
    assert detect_format(task) == "cvat"
    assert detect_format(task / "annotations.xml") == "cvat"
    report = import_annotations(project, "cvat", task)
    assert report.added_images == 1 and report.added_annotations == 5
    # The task's labels are its classes, the unused one too (as COCO's categories).
    assert [c.name for c in project.classes()] == ["car", "road", "tree"]
    assert report.rejected == {
        "CVAT points shapes skipped (Studio has no such shape)": 1,
        "CVAT polyline shapes skipped (Studio has no such shape)": 1,
        "CVAT image tags skipped (Studio labels shapes, not whole images)": 1,
    }
    (im,) = project.images()
    assert im.split == "val"  # CVAT's subset
    box, turned, road, ellipse, mask = sorted(project.annotations([im.id]), key=lambda a: a.id)
    assert box.kind == "box" and box.bbox == (100, 100, 200, 100)
    assert box.attributes.truncated and not box.attributes.occluded
    # Turned 90 degrees about its centre (450, 220): 100 x 40 becomes 40 x 100.
    assert turned.kind == "polygon" and turned.attributes.occluded
    assert turned.bbox == pytest.approx((430, 170, 40, 100))
    assert road.kind == "polygon" and road.polygons == [[0, 400, 640, 400, 640, 480]]
    assert ellipse.kind == "polygon" and ellipse.bbox == pytest.approx((300, 230, 40, 20))
    # Run lengths over the 5 x 12 box, row by row from background: rows 2-5 are set.
    assert mask.kind == "mask" and mask.bbox == (50, 62, 5, 4)
    pixels = mask_from_rle(mask.rle)
    assert pixels.shape == (480, 640) and int(pixels.sum()) == 20
    assert np.all(pixels[62:66, 50:55] == 1)


def test_cvat_for_video_is_refused_with_what_to_export(project: Project, task: Path) -> None:
    track = '<track id="0" label="car"><box frame="0" xtl="1" ytl="1" xbr="9" ybr="9" outside="0" occluded="0" keyframe="1" z_order="0"/></track>'
    (task / "annotations.xml").write_text(cvat_xml("", track))
    with pytest.raises(FormatError, match='export the task from CVAT as "CVAT for images 1.1"'):
        import_annotations(project, "cvat", task)
    assert project.image_count() == 0


def test_a_bad_mask_names_its_shape_and_nothing_lands(project: Project, task: Path) -> None:
    (task / "annotations.xml").write_text(
        cvat_xml(IMAGE.replace('rle="10, 20, 30"', 'rle="10, 20"'))
    )
    with pytest.raises(FormatError, match=r"image\[0\]\.mask\[6\]\.rle"):
        import_annotations(project, "cvat", task)
    assert project.image_count() == 0 and project.annotation_count() == 0


def test_cvat_xml_given_as_voc_says_what_it_is(project: Project, task: Path) -> None:
    with pytest.raises(FormatError, match="it is CVAT's XML: import it as cvat"):
        import_annotations(project, "voc", task)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (('rotation="90.00"', 'rotation="abc"'), r"image\[0\]\.box\[1\]\.rotation"),
        (('width="640" height="480"', 'width="900000" height="900000"'), "too large"),
    ],
)
def test_a_bad_number_is_a_clear_error_not_a_traceback(
    project: Project, task: Path, change, where
) -> None:
    (task / "annotations.xml").write_text(cvat_xml(IMAGE.replace(*change)))
    with pytest.raises(FormatError, match=where):
        import_annotations(project, "cvat", task)
    assert project.image_count() == 0


def test_a_mask_reaching_past_the_image_is_cut_there(project: Project, task: Path) -> None:
    """CVAT can place a mask's box partly outside the image (left or top below 0)."""
    (task / "annotations.xml").write_text(
        cvat_xml(IMAGE.replace('left="50" top="60"', 'left="-2" top="-3"'))
    )
    import_annotations(project, "cvat", task)
    (mask,) = [a for a in project.annotations() if a.kind == "mask"]
    pixels = mask_from_rle(mask.rle)
    # Rows 2-5 of the 5 x 12 box, shifted up 3 and left 2: rows 0-2 and columns 0-2 remain.
    assert mask.bbox == (0, 0, 3, 3) and int(pixels.sum()) == 9

"""Importing image folders and annotation files: what lands, what is skipped and why, and
that a failed import leaves the project exactly as it was."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.errors import Cancelled, FormatError, StudioError
from studio.core.imageinfo import decode_image, orient_points
from studio.core.importing import (
    default_split,
    detect_format,
    import_annotations,
    import_dataset,
    import_images,
)
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import AnnotationSpec, DatasetSpec, ImageSpec

# --- image folders --------------------------------------------------------------------------


@pytest.fixture
def mixed_folder(project: Project, make_jpeg) -> Path:
    """A folder inside the project with good, odd and broken files, in nested folders."""
    src = project.path / "incoming"
    for o in range(1, 9):
        make_jpeg(src / f"o{o}.jpg", 60, 40, orientation=o, seed=o)
    deep = np.random.default_rng(1).integers(0, 65535, (30, 20)).astype(np.uint16)
    Image.fromarray(deep).save(src / "deep16.png")
    assert Image.open(src / "deep16.png").mode == "I;16"
    make_jpeg(src / "gray.jpg", 20, 10, mode="L", seed=11)
    make_jpeg(src / "cmyk.jpg", 24, 12, mode="CMYK", seed=12)
    assert Image.open(src / "cmyk.jpg").mode == "CMYK"
    make_jpeg(src / "sub" / "café_日本.jpg", 16, 8, seed=13)
    (src / "zero.jpg").write_bytes(b"")
    whole = make_jpeg(src.parent / "whole.jpg", 64, 64, seed=14).read_bytes()
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "sub" / "deep" / "trunc.jpg").write_bytes(whole[: len(whole) // 2])
    (src / "sub" / "deep" / "text.png").write_text("this is not a PNG file\n")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(src / "anim.gif")
    (src / "sub" / "deep" / "dup_of_o3.jpg").write_bytes((src / "o3.jpg").read_bytes())
    return src


def test_import_folder_adds_good_files_and_lists_bad_ones(
    project: Project, mixed_folder: Path, sql
) -> None:
    calls: list[tuple[int, int, str]] = []
    report = import_images(project, [mixed_folder], Progress(lambda *a: calls.append(a)))

    # A byte-identical copy under another name is its own image, reported as a pair.
    assert report.added_images == 13
    assert report.duplicates == [("incoming/sub/deep/dup_of_o3.jpg", "incoming/o3.jpg")]
    skipped = {Path(f).relative_to(mixed_folder).as_posix(): why for f, why in report.skipped}
    assert skipped == {
        "anim.gif": "unsupported extension",
        "sub/deep/text.png": "not an image or unsupported format",
        "sub/deep/trunc.jpg": "truncated file (no JPEG end marker)",
        "zero.jpg": "empty file (0 bytes)",
    }
    # 16 candidate image files (the .gif is not one): the callback saw every one.
    assert calls[-1][:2] == (16, 16)
    done = [c[0] for c in calls]
    assert done == sorted(done) and all(c[1] == 16 for c in calls)

    rows = {
        r[0]: r[1:]
        for r in sql(
            project.db_path,
            "SELECT path, width, height, orientation, file_size, status FROM images",
        )
    }
    assert len(rows) == 13 == project.image_count()
    for o in range(1, 9):
        w, h = (40, 60) if o >= 5 else (60, 40)
        path = mixed_folder / f"o{o}.jpg"
        assert rows[f"incoming/o{o}.jpg"] == (w, h, o, path.stat().st_size, "new")
    assert rows["incoming/deep16.png"][:3] == (20, 30, 1)
    assert rows["incoming/gray.jpg"][:3] == (20, 10, 1)
    assert rows["incoming/cmyk.jpg"][:3] == (24, 12, 1)
    assert rows["incoming/sub/café_日本.jpg"][:3] == (16, 8, 1)
    assert sorted(report.image_ids) == sorted(project.image_ids())

    digest = hashlib.blake2b((mixed_folder / "o5.jpg").read_bytes(), digest_size=16).hexdigest()
    assert sql(project.db_path, "SELECT checksum FROM images WHERE path = 'incoming/o5.jpg'") == [
        (digest,)
    ]
    (img,) = [im for im in project.images() if im.name == "café_日本.jpg"]
    assert img.abs_path == mixed_folder / "sub" / "café_日本.jpg" and img.abs_path.is_file()


def test_reimport_skips_what_is_there(project: Project, mixed_folder: Path) -> None:
    import_images(project, [mixed_folder])
    before = project.image_count()
    report = import_images(project, [mixed_folder])
    assert report.added_images == 0
    assert project.image_count() == before == 13
    assert report.present_images == 13
    assert report.duplicates == []
    reasons = dict(report.skipped)
    assert str(mixed_folder / "o1.jpg") not in reasons
    assert reasons[str(mixed_folder / "zero.jpg")] == "empty file (0 bytes)"
    assert "13 already present" in report.summary()
    # A copy with another name is its own image, reported with its twin.
    copy = project.path / "copy_of_o7.jpg"
    copy.write_bytes((mixed_folder / "o7.jpg").read_bytes())
    report = import_images(project, [copy])
    assert report.added_images == 1
    assert report.duplicates == [("copy_of_o7.jpg", "incoming/o7.jpg")]
    assert report.skipped == []


def test_explicit_unsupported_file_is_listed(project: Project, mixed_folder: Path) -> None:
    gif = mixed_folder / "anim.gif"
    report = import_images(project, [gif, mixed_folder / "o1.jpg"])
    assert report.added_images == 1
    assert report.skipped == [(str(gif), "unsupported extension")]


def test_missing_path_fails_and_imports_nothing(
    project: Project, mixed_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(StudioError) as e:
        import_images(project, [mixed_folder / "o1.jpg", tmp_path / "gone"])
    assert str(e.value) == f"{tmp_path / 'gone'}: no such file or folder"
    assert project.image_count() == 0


def test_unsupported_image_in_folder_is_listed_other_files_are_not(
    project: Project, mixed_folder: Path
) -> None:
    (mixed_folder / "notes.txt").write_text("a folder may hold other files")
    (mixed_folder / "labels.json").write_text("{}")
    report = import_images(project, [mixed_folder])
    skipped = dict(report.skipped)
    assert skipped[str(mixed_folder / "anim.gif")] == "unsupported extension"
    assert str(mixed_folder / "notes.txt") not in skipped
    assert str(mixed_folder / "labels.json") not in skipped


def test_paths_relative_inside_project_absolute_outside(
    project: Project, make_jpeg, tmp_path: Path, sql
) -> None:
    inside = make_jpeg(project.path / "imgs" / "deeper" / "in.jpg", 10, 10, seed=1)
    outside = make_jpeg(tmp_path / "outside" / "out.jpg", 10, 10, seed=2)
    report = import_images(project, [project.path / "imgs", tmp_path / "outside"])
    assert report.added_images == 2
    paths = sorted(r[0] for r in sql(project.db_path, "SELECT path FROM images"))
    assert paths == sorted(["imgs/deeper/in.jpg", str(outside)])
    assert os.path.isabs(str(outside))
    assert {im.abs_path for im in project.images()} == {inside, outside}


def test_path_inside_project_through_a_symlink_is_relative(tmp_path: Path, make_jpeg, sql) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with Project.create(tmp_path / "link" / "proj") as p:
        make_jpeg(tmp_path / "link" / "proj" / "imgs" / "a.jpg", 10, 10)
        import_images(p, [tmp_path / "link" / "proj" / "imgs"])
        assert sql(p.db_path, "SELECT path FROM images") == [("imgs/a.jpg",)]


def test_cancel_midway_writes_nothing(project: Project, mixed_folder: Path) -> None:
    progress = Progress()

    def on_step(done: int, total: int, text: str) -> None:
        if done == 5:
            progress.cancel()

    progress._callback = on_step
    with pytest.raises(Cancelled):
        import_images(project, [mixed_folder], progress)
    assert project.image_count() == 0


def test_new_images_get_the_split_their_checksum_gives(
    project: Project, mixed_folder: Path
) -> None:
    project.set_setting("split_fractions", {"val": 0.5, "test": 0.25})
    import_images(project, [mixed_folder])
    images = project.images()
    assert [im.split for im in images] == [default_split(im.checksum, 0.5, 0.25) for im in images]
    project.set_setting("split_fractions", {"val": 1.0, "test": 0.0})
    make_jpeg_path = project.path / "later.jpg"
    Image.new("RGB", (9, 9), (5, 6, 7)).save(make_jpeg_path)
    import_images(project, [make_jpeg_path])
    assert project.images(ids=[max(project.image_ids())])[0].split == "val"


# --- annotations: checks against the images --------------------------------------------------


def _spec(path: Path, *anns: AnnotationSpec, width=None, height=None) -> DatasetSpec:
    classes = list(dict.fromkeys(a.class_name for a in anns))
    return DatasetSpec(
        classes=classes,
        images=[ImageSpec("k", path, width, height, None, "file.json: images[0]")],
        annotations=list(anns),
    )


def test_shapes_are_clipped_rejected_and_reported(project: Project, make_jpeg, sql) -> None:
    img = make_jpeg(project.path / "a.jpg", 100, 80)
    spec = _spec(
        img,
        AnnotationSpec("k", "car", "box", (90, 70, 20, 20), where="a #0"),  # clipped
        AnnotationSpec("k", "car", "box", (-10, 10, 30, 5), where="a #1"),  # clipped
        AnnotationSpec("k", "car", "box", (10, 10, 0, 5), where="a #2"),  # zero area
        AnnotationSpec("k", "car", "box", (200, 200, 5, 5), where="a #3"),  # all outside
        AnnotationSpec("k", "car", "box", (5, 6, 7, 8), where="a #4"),  # fine
        AnnotationSpec(
            "k", "person", "polygon", (10, 10, 20, 20), polygons=[[10, 10, 20, 20, 30, 30]],
            where="a #5",
        ),  # collinear: zero area
        AnnotationSpec(
            "k", "person", "polygon", (0, 0, 1, 1), polygons=[[10, 10, 50, 10, 50, -20, 10, -20]],
            where="a #6",
        ),  # clipped
        AnnotationSpec(
            "k", "person", "polygon", (0, 0, 1, 1), polygons=[[1, 1, 2, 2]], where="a #7"
        ),  # two points
    )  # fmt: skip
    report = import_dataset(project, spec)
    assert report.added_images == 1
    assert report.added_annotations == 4
    assert report.problem_counts == {
        "boxes clipped to the image": 2,
        "zero-area boxes rejected": 1,
        "boxes outside the image rejected": 1,
        "degenerate polygons rejected (fewer than 3 points or zero area)": 2,
        "polygons clipped to the image": 1,
    }
    assert "zero-area boxes rejected: a #2" in report.warnings
    assert "boxes outside the image rejected: a #3" in report.warnings
    assert (
        "degenerate polygons rejected (fewer than 3 points or zero area): a #5" in report.warnings
    )
    assert (
        "degenerate polygons rejected (fewer than 3 points or zero area): a #7" in report.warnings
    )
    assert "boxes clipped to the image: a #0" in report.warnings
    assert "3 clipped to the image" in report.summary()
    assert report.clipped == 3
    assert report.rejected == {
        "zero-area boxes rejected": 1,
        "boxes outside the image rejected": 1,
        "degenerate polygons rejected (fewer than 3 points or zero area)": 2,
    }

    rows = sql(
        project.db_path, "SELECT kind, x, y, w, h, polygons, source FROM annotations ORDER BY id"
    )
    assert rows[:3] == [
        ("box", 90.0, 70.0, 10.0, 10.0, None, "imported"),
        ("box", 0.0, 10.0, 20.0, 5.0, None, "imported"),
        ("box", 5.0, 6.0, 7.0, 8.0, None, "imported"),
    ]
    kind, x, y, w, h, polys, _ = rows[3]
    assert (kind, x, y, w, h) == ("polygon", 10.0, 0.0, 40.0, 10.0)
    assert json.loads(polys) == [[10.0, 10.0, 50.0, 10.0, 50.0, 0.0, 10.0, 0.0]]
    assert [c.name for c in project.classes()] == ["car", "person"]


def _red_box_photo(path: Path) -> Path:
    """60x40 stored pixels, red block over stored x 10..30, y 5..15, EXIF orientation 6."""
    img = Image.new("RGB", (60, 40), (128, 128, 128))
    img.paste((255, 0, 0), (10, 5, 30, 15))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, quality=98, exif=exif)
    return path


def _red_extent(path: Path) -> tuple[float, float, float, float]:
    arr = decode_image(path).astype(int)
    rows, cols = np.nonzero((arr[..., 0] > 180) & (arr[..., 1] < 90) & (arr[..., 2] < 90))
    return (cols.min(), rows.min(), cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min())


def _coco_file(path: Path, images: list[dict], anns: list[dict], cats=("obj",)) -> Path:
    path.write_text(
        json.dumps(
            {
                "images": images,
                "categories": [{"id": i + 1, "name": n} for i, n in enumerate(cats)],
                "annotations": anns,
            }
        )
    )
    return path


def test_stored_pixel_coordinates_of_rotated_photo_are_rotated(
    project: Project, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = _red_box_photo(photos / "rot.jpg")
    tri = [10, 5, 30, 5, 10, 15]
    coco = _coco_file(
        tmp_path / "stored.json",
        [{"id": 7, "file_name": "rot.jpg", "width": 60, "height": 40}],  # the RAW size
        [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 10]},
            {"id": 2, "image_id": 7, "category_id": 1, "segmentation": [tri], "bbox": [0, 0, 1, 1]},
        ],
    )
    report = import_annotations(project, "coco", coco, images_dir=photos)
    assert report.added_annotations == 2 and report.warnings == []
    (img,) = project.images()
    assert (img.width, img.height, img.orientation) == (40, 60, 6)

    box, poly = project.annotations()
    corners = orient_points(np.array([[10.0, 5.0], [30.0, 15.0]]), 6, 60, 40)
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    assert box.bbox == pytest.approx((x0, y0, x1 - x0, y1 - y0))
    assert box.bbox == pytest.approx((25.0, 10.0, 10.0, 20.0))
    # The box covers the red block where a viewer shows it.
    assert np.allclose(box.bbox, _red_extent(photo), atol=1.0)
    expected = orient_points(np.array(tri, float).reshape(-1, 2), 6, 60, 40).ravel()
    assert poly.polygons[0] == pytest.approx(expected.tolist())


def test_displayed_pixel_coordinates_are_kept(project: Project, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _red_box_photo(photos / "rot.jpg")
    coco = _coco_file(
        tmp_path / "displayed.json",
        [{"id": 1, "file_name": "rot.jpg", "width": 40, "height": 60}],  # the displayed size
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [25, 10, 10, 20]}],
    )
    report = import_annotations(project, "coco", coco, images_dir=photos)
    assert report.warnings == []
    assert project.annotations()[0].bbox == (25.0, 10.0, 10.0, 20.0)


def test_raw_orientation_flag_rotates_without_declared_size(
    project: Project, tmp_path: Path
) -> None:
    photo = _red_box_photo(tmp_path / "rot.jpg")
    spec = _spec(photo, AnnotationSpec("k", "obj", "box", (10, 5, 20, 10)))
    spec.raw_orientation = True
    import_dataset(project, spec)
    assert project.annotations()[0].bbox == pytest.approx((25.0, 10.0, 10.0, 20.0))


def test_other_declared_size_is_warned_about_and_kept(project: Project, make_jpeg) -> None:
    img = make_jpeg(project.path / "a.jpg", 100, 80)
    spec = _spec(img, AnnotationSpec("k", "obj", "box", (1, 2, 3, 4)), width=50, height=50)
    report = import_dataset(project, spec)
    assert any("declared size 50x50 differs from the image's 100x80" in w for w in report.warnings)
    assert project.annotations()[0].bbox == (1.0, 2.0, 3.0, 4.0)


def test_annotations_attach_to_images_already_in_the_project(
    project: Project, make_jpeg, tmp_path: Path
) -> None:
    a = make_jpeg(project.path / "imgs" / "a.jpg", 50, 50, seed=1)
    import_images(project, [a])
    (existing,) = project.image_ids()
    copy = tmp_path / "copy_of_a.jpg"
    copy.write_bytes(a.read_bytes())
    spec = DatasetSpec(
        classes=["x"],
        images=[ImageSpec("same", a), ImageSpec("copy", copy)],
        annotations=[
            AnnotationSpec("same", "x", "box", (1, 1, 5, 5)),
            AnnotationSpec("copy", "x", "box", (2, 2, 5, 5)),
        ],
    )
    report = import_dataset(project, spec)
    # The same path is the same image; a byte-identical copy elsewhere is its own image,
    # keeping its own box (merging would put two boxes on one picture).
    assert report.added_images == 1 and report.present_images == 1
    (copy_id,) = set(project.image_ids()) - {existing}
    assert [(a.image_id, a.bbox) for a in project.annotations()] == [
        (existing, (1.0, 1.0, 5.0, 5.0)),
        (copy_id, (2.0, 2.0, 5.0, 5.0)),
    ]
    assert report.image_ids == [existing, copy_id]
    assert report.duplicates == [(project.stored_path(copy), "imgs/a.jpg")]


def test_import_dataset_status_and_source(project: Project, make_jpeg) -> None:
    img = make_jpeg(project.path / "a.jpg", 40, 30)
    import_dataset(
        project,
        _spec(img, AnnotationSpec("k", "o", "box", (1, 1, 5, 5))),
        source="manual",
        status="done",
    )
    assert project.images()[0].status == "done"
    assert project.annotations()[0].source == "manual"


# --- failed imports leave the project as it was -----------------------------------------------


@pytest.fixture
def labelled(project: Project, make_jpeg, tmp_path: Path) -> tuple[Project, Path]:
    """A project with two images, a class and a shape; a folder with a third image."""
    make_jpeg(project.path / "imgs" / "a.jpg", 50, 40, seed=1)
    make_jpeg(project.path / "imgs" / "b.jpg", 50, 40, seed=2)
    import_images(project, [project.path / "imgs"])
    cid = project.add_class("old")
    project.add_annotation(project.image_ids()[0], cid, "box", bbox=(1, 1, 10, 10))
    photos = tmp_path / "photos"
    make_jpeg(photos / "c.jpg", 64, 48, seed=3)
    return project, photos


def _everything(p: Project, table_dump) -> dict:
    return table_dump(
        p.db_path,
        (
            "images", "label_classes", "annotations", "runs", "metrics", "predictions",
            "settings", "alembic_version",
        ),
    )  # fmt: skip


def test_malformed_json_changes_nothing(labelled, tmp_path: Path, table_dump) -> None:
    p, photos = labelled
    before = _everything(p, table_dump)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1, "file_name": "c.jpg"}], "annotations": [')
    with pytest.raises(FormatError) as e:
        import_annotations(p, "coco", bad, images_dir=photos)
    assert str(bad) in str(e.value) and "invalid JSON" in str(e.value)
    assert _everything(p, table_dump) == before


def test_annotation_with_unknown_image_id_changes_nothing(
    labelled, tmp_path: Path, table_dump
) -> None:
    p, photos = labelled
    before = _everything(p, table_dump)
    coco = _coco_file(
        tmp_path / "dangling.json",
        [{"id": 1, "file_name": "c.jpg", "width": 64, "height": 48}],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 99, "category_id": 2, "bbox": [1, 1, 5, 5]},
        ],
        cats=("new1", "new2"),
    )
    with pytest.raises(FormatError) as e:
        import_annotations(p, "coco", coco, images_dir=photos)
    msg = str(e.value)
    assert str(coco) in msg and "annotations[1].image_id" in msg and "99" in msg
    assert _everything(p, table_dump) == before


def test_truncated_image_in_annotation_file_changes_nothing(
    labelled, tmp_path: Path, table_dump
) -> None:
    p, photos = labelled
    whole = (photos / "c.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    before = _everything(p, table_dump)
    coco = _coco_file(
        tmp_path / "cut.json",
        [
            {"id": 1, "file_name": "c.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "cut.jpg", "width": 64, "height": 48},
        ],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        cats=("new",),
    )
    with pytest.raises(StudioError) as e:
        import_annotations(p, "coco", coco, images_dir=photos)
    msg = str(e.value)
    assert str(photos / "cut.jpg") in msg and "truncated" in msg
    assert _everything(p, table_dump) == before


def test_missing_image_names_it_and_suggests_images_option(
    labelled, tmp_path: Path, table_dump
) -> None:
    p, photos = labelled
    before = _everything(p, table_dump)
    coco = _coco_file(
        tmp_path / "missing.json",
        [
            {"id": 1, "file_name": "c.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": "gone.jpg", "width": 64, "height": 48},
        ],
        [],
    )
    with pytest.raises(FormatError) as e:
        import_annotations(p, "coco", coco, images_dir=photos)
    msg = str(e.value)
    assert str(coco) in msg and "'gone.jpg' not found" in msg and "--images" in msg
    assert _everything(p, table_dump) == before


def test_unknown_format_and_missing_path(project: Project, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="unknown format 'pascal'"):
        import_annotations(project, "pascal", tmp_path)
    with pytest.raises(StudioError) as e:
        import_annotations(project, "coco", tmp_path / "nope.json")
    assert str(tmp_path / "nope.json") in str(e.value) and "no such file" in str(e.value)
    with pytest.raises(StudioError, match="the classes file is empty"):
        (tmp_path / "classes.txt").write_text("\n\n")
        (tmp_path / "yolo").mkdir()
        import_annotations(
            project, "yolo", tmp_path / "yolo", classes_file=tmp_path / "classes.txt"
        )


# --- detect_format --------------------------------------------------------------------------


def test_detect_format_of_files(tmp_path: Path, make_jpeg) -> None:
    img = make_jpeg(tmp_path / "a.JPG", 5, 5)
    (tmp_path / "c.json").write_text('{"images": [], "annotations": []}')
    (tmp_path / "l.json").write_text('{"shapes": [], "imagePath": "a.jpg"}')
    (tmp_path / "x.xml").write_text("<annotation/>")
    (tmp_path / "d.yaml").write_text("names: [a]")
    (tmp_path / "n.txt").write_text("hello")
    assert detect_format(img) == "images"
    assert detect_format(tmp_path / "c.json") == "coco"
    assert detect_format(tmp_path / "l.json") == "labelme"
    assert detect_format(tmp_path / "x.xml") == "voc"
    assert detect_format(tmp_path / "d.yaml") == "yolo"
    assert detect_format(tmp_path / "n.txt") is None
    assert detect_format(tmp_path / "missing") is None
    only_images = tmp_path / "only_images"
    make_jpeg(only_images / "sub" / "b.jpg", 5, 5)
    assert detect_format(only_images) == "images"
    (tmp_path / "empty").mkdir()
    assert detect_format(tmp_path / "empty") is None

"""Round trips and error reporting of the annotation formats (COCO, YOLO, VOC, labelme).

Everything is generated in tmp_path: a small project of images made with PIL and an
`ExportSnapshot` built by hand, written with each writer and read back with its reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from studio.core.errors import FormatError
from studio.core.formats import READERS, WRITERS
from studio.core.formats.coco import read_coco
from studio.core.formats.coco_writer import write_coco
from studio.core.formats.common import unique_stems
from studio.core.formats.labelme import read_labelme, write_labelme
from studio.core.formats.voc import read_voc, write_voc
from studio.core.formats.yolo import join_parts, read_yolo, write_yolo
from studio.core.geometry import polygons_from_rle
from studio.core.records import (
    AnnotationRecord,
    AnnotationSpec,
    ClassRecord,
    DatasetSpec,
    ExportSnapshot,
    ImageRecord,
)

TOL = 1e-3  # px

# pycocotools' decode trips numpy 2's copy-keyword deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# --- builders ------------------------------------------------------------------------------


def make_image(path: Path, w: int, h: int, seed: int, orientation: int = 1) -> Path:
    """Write a w x h (stored) image with distinct content, optionally with EXIF orientation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    kwargs = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    im.save(path, **kwargs)
    return path


def image_record(project: Path, iid: int, rel: str, w: int, h: int, split: str) -> ImageRecord:
    abs_path = make_image(project / rel, w, h, seed=iid)
    return ImageRecord(
        id=iid,
        path=rel,
        abs_path=abs_path,
        width=w,
        height=h,
        orientation=1,
        checksum="",
        file_size=abs_path.stat().st_size,
        status="new",
        split=split,
    )


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def ann(aid: int, image_id: int, class_id: int, kind: str, **kw) -> AnnotationRecord:
    if kind == "polygon":
        xs = [v for p in kw["polygons"] for v in p[0::2]]
        ys = [v for p in kw["polygons"] for v in p[1::2]]
        kw["bbox"] = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    elif kind == "mask":
        kw["bbox"] = tuple(float(v) for v in mask_utils.toBbox(kw["rle"]))
    return AnnotationRecord(id=aid, image_id=image_id, class_id=class_id, kind=kind, **kw)


def build_snapshot(tmp_path: Path, *, shapes: str = "all") -> ExportSnapshot:
    """Four images (one in a subfolder whose stem clashes, one background), three classes
    (one unused); boxes, polygons (one with two parts) and a mask unless shapes="boxes"."""
    project = tmp_path / "project"
    images = [
        image_record(project, 11, "a.jpg", 64, 48, "train"),
        image_record(project, 12, "sub/b.png", 80, 60, "val"),
        image_record(project, 13, "sub/a.png", 50, 40, "test"),
        image_record(project, 14, "c.png", 40, 30, "train"),
    ]
    classes = [
        ClassRecord(id=7, name="dog", color="#00ff00", position=1),
        ClassRecord(id=5, name="cat", color="#ff0000", position=0),
        ClassRecord(id=9, name="big bird: unused", color="#0000ff", position=2),
    ]
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 50:70] = 1
    mask[40:50, 5:15] = 1
    anns = [
        ann(101, 11, 5, "box", bbox=(2.5, 3.25, 20.0, 10.5)),
        ann(105, 13, 7, "box", bbox=(0.0, 0.0, 50.0, 40.0)),
        ann(106, 13, 5, "box", bbox=(1.123456, 2.654321, 7.000001, 3.3333333)),
    ]
    if shapes == "all":
        anns[1:1] = [
            ann(
                102, 11, 7, "polygon", polygons=[[10.0, 10.0, 30.5, 12.0, 25.0, 30.25, 12.0, 28.0]]
            ),
            ann(
                103,
                12,
                5,
                "polygon",
                polygons=[
                    [5.0, 5.0, 20.0, 5.0, 20.0, 20.0, 5.0, 20.0],
                    [30.0, 30.0, 40.0, 30.0, 35.5, 45.5],
                ],
            ),
            ann(104, 12, 7, "mask", rle=rle_of(mask)),
        ]
    return ExportSnapshot(project_dir=project, classes=classes, images=images, annotations=anns)


def by_image(snap: ExportSnapshot, spec: DatasetSpec) -> dict[int, list[AnnotationSpec]]:
    """Read-back annotations grouped by snapshot image id, matched by file content (the
    YOLO and VOC writers copy images under new names)."""
    content = {im.abs_path.read_bytes(): im.id for im in snap.images}
    key_to_id = {im.key: content[im.path.read_bytes()] for im in spec.images}
    assert len(set(key_to_id.values())) == len(spec.images) == len(snap.images)
    out: dict[int, list[AnnotationSpec]] = {im.id: [] for im in snap.images}
    for a in spec.annotations:
        out[key_to_id[a.image_key]].append(a)
    return out


def assert_close(got, want, tol: float = TOL) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) <= tol, (got, want)


def originals(snap: ExportSnapshot) -> dict[int, list[AnnotationRecord]]:
    out: dict[int, list[AnnotationRecord]] = {im.id: [] for im in snap.images}
    for a in snap.annotations:
        out[a.image_id].append(a)
    return out


def check_round_trip(snap: ExportSnapshot, spec: DatasetSpec, mask_as: str) -> None:
    """Compare read-back shapes with the originals, image by image, in order.

    mask_as: "mask" (kept exactly), "polygon" (outer contours) or "box"; multi-part
    polygons are compared exactly except where the format joins parts (YOLO), where only
    their bbox is compared.
    """
    names = {c.id: c.name for c in snap.classes}
    got_by_image = by_image(snap, spec)
    for iid, want_list in originals(snap).items():
        got_list = got_by_image[iid]
        assert len(got_list) == len(want_list), (iid, got_list)
        for got, want in zip(got_list, want_list, strict=True):
            assert got.class_name == names[want.class_id]
            if want.kind == "mask":
                assert got.kind == mask_as
                if mask_as == "mask":
                    assert got.rle == want.rle
                    assert_close(got.bbox, want.bbox)
                else:
                    # Contours run through the edge pixels' centres: within a pixel.
                    assert_close(got.bbox, want.bbox, tol=1.0)
                continue
            assert got.kind == want.kind, (got, want)
            assert_close(got.bbox, want.bbox)
            if want.kind == "polygon":
                if len(got.polygons) == len(want.polygons):
                    for gp, wp in zip(got.polygons, want.polygons, strict=True):
                        assert_close(gp, wp)
                else:
                    assert len(got.polygons) == 1  # joined into one outline


# --- COCO ----------------------------------------------------------------------------------


def shoelace(part: list[float]) -> float:
    xs, ys = np.asarray(part[0::2], float), np.asarray(part[1::2], float)
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(np.roll(xs, -1), ys)) / 2)


def test_coco_round_trip_and_pycocotools(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path)
    out = tmp_path / "export"
    out.mkdir()
    assert write_coco(snap, out) == []
    f = out / "annotations.json"
    coco = COCO(str(f))
    assert sorted(coco.getImgIds()) == sorted(im.id for im in snap.images)
    assert sorted(coco.getCatIds()) == sorted(c.id for c in snap.classes)
    assert sorted(coco.getAnnIds()) == sorted(a.id for a in snap.annotations)
    data = json.loads(f.read_text())
    assert "info" in data and data["licenses"] == []
    # The folder is whole: each image copied into images/ under the name file_name gives.
    for im, d in zip(snap.images, data["images"], strict=True):
        assert (out / "images" / d["file_name"]).read_bytes() == im.abs_path.read_bytes()
    for a in coco.loadAnns(coco.getAnnIds()):
        if not a["segmentation"]:
            continue
        img = coco.loadImgs(a["image_id"])[0]
        rle = coco.annToRLE(a)  # pycocotools' own rasterisation of the segmentation
        if isinstance(a["segmentation"], list):
            # COCO's convention: a polygon's own (shoelace) area, not its pixel count.
            assert a["area"] == pytest.approx(sum(shoelace(p) for p in a["segmentation"]))
        else:
            assert a["area"] == pytest.approx(float(mask_utils.area(rle)))
        assert_close(a["bbox"], mask_utils.toBbox(rle).tolist(), tol=1.0)
        assert rle["size"] == [img["height"], img["width"]]

    spec = read_coco(f)  # the images found in the export folder, no --images needed
    assert spec.classes == ["cat", "dog", "big bird: unused"]  # sorted by category id
    declared = {im.path.read_bytes(): (im.width, im.height) for im in spec.images}
    assert declared == {im.abs_path.read_bytes(): (im.width, im.height) for im in snap.images}
    check_round_trip(snap, spec, mask_as="mask")


def test_coco_out_path_json_file(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path, shapes="boxes")
    write_coco(snap, tmp_path / "x" / "mine.json")
    assert not (tmp_path / "x" / "images").exists()  # a file: no images copied
    # file_name leads from the file's folder to each image, with no --images needed.
    data = json.loads((tmp_path / "x" / "mine.json").read_text())
    for im, d in zip(snap.images, data["images"], strict=True):
        assert (tmp_path / "x" / d["file_name"]).resolve() == im.abs_path.resolve()
    spec = READERS["coco"](tmp_path / "x", None, None)  # folder with one .json
    check_round_trip(snap, spec, mask_as="mask")


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def coco_doc(tmp_path: Path, **ann_fields) -> dict:
    make_image(tmp_path / "images" / "a.png", 20, 10, seed=1)
    a = {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 0}
    a.update(ann_fields)
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
        "categories": [{"id": 3, "name": "x"}],
        "annotations": [a],
    }


def test_coco_reads_uncompressed_rle_as_mask(tmp_path: Path) -> None:
    m = np.zeros((10, 20), np.uint8)
    m[2:5, 3:9] = 1
    counts = []  # column-major run lengths, starting with zeros
    flat = m.flatten(order="F")
    cur, run = 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    seg = {"size": [10, 20], "counts": counts}
    f = write_json(tmp_path / "c.json", coco_doc(tmp_path, segmentation=seg, iscrowd=1))
    spec = read_coco(f)
    (a,) = spec.annotations
    assert a.kind == "mask" and a.iscrowd
    assert isinstance(a.rle["counts"], str)
    assert np.array_equal(mask_utils.decode(a.rle), m)
    assert_close(a.bbox, (3, 2, 6, 3))


def test_coco_polygon_bbox_is_tight_box_of_points(tmp_path: Path) -> None:
    seg = [[1, 1, 5, 1, 5, 4], [7.5, 2, 9, 2, 9, 8]]
    f = write_json(tmp_path / "c.json", coco_doc(tmp_path, segmentation=seg, bbox=[0, 0, 1, 1]))
    (a,) = read_coco(f).annotations
    assert a.kind == "polygon" and a.polygons == seg
    assert a.bbox == (1.0, 1.0, 8.0, 7.0)
    assert a.where == "c.json: annotations[0]"


def assert_format_error(exc: pytest.ExceptionInfo, file: Path, *parts: str) -> None:
    msg = str(exc.value)
    assert isinstance(exc.value, FormatError)
    assert file.name in msg, msg
    for p in parts:
        assert p in msg, msg


def test_coco_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{\n  "images": [\n    {"id": 1,,}\n  ]\n}\n')
    with pytest.raises(FormatError) as exc:
        read_coco(f)
    assert_format_error(exc, f, "line 3 column", "invalid JSON")


@pytest.mark.parametrize(
    ("fields", "where", "problem"),
    [
        ({"image_id": 42}, "annotations[0].image_id", "no image with id 42"),
        ({"category_id": 8}, "annotations[0].category_id", "no category with id 8"),
        ({"bbox": [1, 2, "3", 4]}, "annotations[0].bbox[2]", "not a finite number"),
        ({"segmentation": [[1, 2, 3, 4, 5, 6, 7]]}, "annotations[0].segmentation[0]", "odd"),
        ({"segmentation": [[1, 2, 3, None, 5, 6]]}, "segmentation[0][3]", "not a finite"),
        ({"iscrowd": "no"}, "annotations[0].iscrowd", "0 or 1"),
        ({"segmentation": {"size": [10, 20], "counts": [5, 7]}}, "counts", "add up"),
    ],
)
def test_coco_malformed_annotation(tmp_path: Path, fields: dict, where: str, problem: str) -> None:
    f = write_json(tmp_path / "c.json", coco_doc(tmp_path, **fields))
    with pytest.raises(FormatError) as exc:
        read_coco(f)
    assert_format_error(exc, f, where, problem)


def test_coco_duplicate_ids(tmp_path: Path) -> None:
    doc = coco_doc(tmp_path)
    doc["annotations"].append(dict(doc["annotations"][0]))
    f = write_json(tmp_path / "c.json", doc)
    with pytest.raises(FormatError) as exc:
        read_coco(f)
    assert_format_error(exc, f, "annotations[1].id", "duplicate")
    doc = coco_doc(tmp_path)
    doc["images"].append(dict(doc["images"][0]))
    f = write_json(tmp_path / "c.json", doc)
    with pytest.raises(FormatError) as exc:
        read_coco(f)
    assert_format_error(exc, f, "images[1].id", "duplicate")


def test_missing_image_tells_about_images_option(tmp_path: Path) -> None:
    doc = coco_doc(tmp_path)
    doc["images"][0]["file_name"] = "nowhere/zz.png"
    f = write_json(tmp_path / "c.json", doc)
    with pytest.raises(FormatError) as exc:
        read_coco(f)
    assert_format_error(exc, f, "images[0].file_name", "'nowhere/zz.png'", "--images")


def test_image_resolution_order(tmp_path: Path) -> None:
    # images_dir wins over the folder next to the annotation file.
    doc = coco_doc(tmp_path)  # makes tmp_path/images/a.png
    elsewhere = make_image(tmp_path / "other" / "a.png", 20, 10, seed=2)
    f = write_json(tmp_path / "c.json", doc)
    assert read_coco(f).images[0].path == tmp_path / "images" / "a.png"
    assert read_coco(f, images_dir=tmp_path / "other").images[0].path == elsewhere


# --- YOLO ----------------------------------------------------------------------------------


def test_yolo_round_trip_mixed_shapes(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path)
    out = tmp_path / "yolo"
    warnings = write_yolo(snap, out)
    assert any("1 masks written as polygons" in w for w in warnings)
    assert any("multi-part" in w for w in warnings)
    assert any("boxes written as 4-corner polygons" in w for w in warnings)

    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg["path"] == out.absolute().as_posix()
    assert (cfg["train"], cfg["val"], cfg["test"]) == ("images/train", "images/val", "images/test")
    assert cfg["nc"] == 3 and cfg["names"] == {0: "cat", 1: "dog", 2: "big bird: unused"}

    # Stems clash (a.jpg / sub/a.png): both get their folder prefix; labels match images.
    assert (out / "images/train/a.jpg").is_file() and (out / "images/test/sub__a.png").is_file()
    counts = {im.id: 0 for im in snap.images}
    for a in snap.annotations:
        counts[a.image_id] += 1
    stems = unique_stems(snap.images, nested=False)
    for im in snap.images:
        lines = (out / "labels" / im.split / f"{stems[im.id]}.txt").read_text().splitlines()
        assert len(lines) == counts[im.id]
        assert all(len(line.split()) >= 7 for line in lines)  # all polygons: no mixing
    assert (out / "labels/train/c.txt").read_text() == ""  # background image

    spec = read_yolo(out)
    assert spec.classes == ["cat", "dog", "big bird: unused"]
    assert {im.split for im in spec.images} == {"train", "val", "test"}
    assert spec.warnings == []
    check_round_trip(snap, spec, mask_as="polygon")


def test_yolo_boxes_only_writes_box_lines(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path, shapes="boxes")
    out = tmp_path / "yolo"
    write_yolo(snap, out)
    line = (out / "labels/train/a.txt").read_text().split()
    assert len(line) == 5 and line[0] == "0"
    assert_close([float(v) for v in line[1:]], [12.5 / 64, 8.5 / 48, 20 / 64, 10.5 / 48], 1e-8)
    spec = READERS["yolo"](out / "data.yaml", None, None)  # the YAML itself works too
    check_round_trip(snap, spec, mask_as="box")


def test_yolo_empty_val_points_at_train(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path, shapes="boxes")
    images = [
        ImageRecord(**{**{f: getattr(im, f) for f in ImageRecord.__slots__}, "split": "train"})
        for im in snap.images
    ]
    snap = ExportSnapshot(snap.project_dir, snap.classes, images, snap.annotations)
    out = tmp_path / "yolo"
    warnings = write_yolo(snap, out)
    assert any("val split is empty" in w for w in warnings)
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg["val"] == "images/train" and "test" not in cfg
    spec = read_yolo(out)
    assert len(spec.images) == 4  # listed twice (train and val), imported once
    assert any("more than one split" in w for w in spec.warnings)


def yolo_dataset(tmp_path: Path, label: str) -> tuple[Path, Path]:
    root = tmp_path / "ds"
    make_image(root / "images/train/a.png", 20, 10, seed=1)
    lbl = root / "labels/train/a.txt"
    lbl.parent.mkdir(parents=True)
    lbl.write_text(label)
    (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [p, q]\n")
    return root, lbl


@pytest.mark.parametrize(
    ("label", "where", "problem"),
    [
        ("0 0.5 0.5 0.2 0.2\n1 0.5 0.5\n", "line 2", "3 numbers"),
        ("99 0.5 0.5 0.2 0.2\n", "line 1", "class index 99 is out of range"),
        ("0 0.1 0.1 0.2 0.1 0.3\n", "line 1", "6 numbers"),
        ("0 0.5 zero 0.2 0.2\n", "line 1", "'zero' is not a number"),
    ],
)
def test_yolo_malformed_label(tmp_path: Path, label: str, where: str, problem: str) -> None:
    root, lbl = yolo_dataset(tmp_path, label)
    with pytest.raises(FormatError) as exc:
        read_yolo(root)
    assert_format_error(exc, lbl, where, problem)
    assert "labels/train/a.txt" in lbl.as_posix()


def test_yolo_uses_displayed_size_of_exif_rotated_image(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    make_image(root / "images/a.jpg", 40, 20, seed=1, orientation=6)  # displayed 20 x 40
    (root / "labels").mkdir()
    (root / "labels/a.txt").write_text("0 0.5 0.5 1 1\n0 0 0 1 0 1 1 0 1\n1 0 0 0.5 0 0.5 0.5\n")
    (root / "classes.txt").write_text("p\nq\n")
    spec = read_yolo(root)  # plain folder: names from classes.txt
    assert spec.classes == ["p", "q"]
    box, rect, tri = spec.annotations
    assert box.kind == "box" and box.bbox == (0.0, 0.0, 20.0, 40.0)
    assert rect.kind == "box" and rect.bbox == (0.0, 0.0, 20.0, 40.0)  # exact rectangle
    assert tri.kind == "polygon" and tri.polygons == [[0.0, 0.0, 10.0, 0.0, 10.0, 20.0]]
    assert tri.where == "labels/a.txt: line 3"


def test_yolo_plain_folder_needs_class_names(tmp_path: Path) -> None:
    make_image(tmp_path / "ds/a.png", 20, 10, seed=1)
    (tmp_path / "ds/a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    with pytest.raises(FormatError) as exc:
        read_yolo(tmp_path / "ds")
    assert "classes.txt" in str(exc.value)
    spec = read_yolo(tmp_path / "ds", class_names=["only"])
    assert spec.classes == ["only"] and len(spec.annotations) == 1
    assert spec.annotations[0].bbox == (5.0, 2.5, 10.0, 5.0)


def test_yolo_image_without_label_file(tmp_path: Path) -> None:
    root, lbl = yolo_dataset(tmp_path, "")
    lbl.unlink()
    spec = read_yolo(root)
    assert len(spec.images) == 1 and spec.images[0].split == "train"
    assert spec.annotations == []
    assert any("no label file" in w for w in spec.warnings)


def test_yolo_roboflow_relative_split_paths(tmp_path: Path) -> None:
    root = tmp_path / "rf"
    make_image(root / "train/images/a.png", 20, 10, seed=1)
    (root / "train/labels").mkdir(parents=True)
    (root / "train/labels/a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../train/images\nnc: 1\nnames: ['p']\n"
    )
    spec = read_yolo(root)
    assert [im.key for im in spec.images] == ["train/images/a.png"]
    assert spec.annotations[0].bbox == (5.0, 2.5, 10.0, 5.0)


def test_join_parts_keeps_every_point() -> None:
    a = [0.0, 0.0, 10.0, 0.0, 10.0, 10.0]
    b = [20.0, 20.0, 30.0, 20.0, 30.0, 30.0]
    joined = join_parts([a, b])
    pts = set(zip(joined[0::2], joined[1::2], strict=True))
    assert pts == set(zip(a[0::2], a[1::2], strict=True)) | set(zip(b[0::2], b[1::2], strict=True))
    assert len(joined) == len(a) + len(b) + 4  # the bridge out and back


# --- VOC -----------------------------------------------------------------------------------


def test_voc_round_trip(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path)
    out = tmp_path / "voc"
    warnings = write_voc(snap, out)
    assert warnings == ["1 masks written as their boxes (VOC has no masks)"]
    xml = (out / "Annotations/a.xml").read_text()
    # Pixel edges, as LabelImg and X-AnyLabeling write them: xmin = x, xmax = x + w;
    # integers without ".0".
    assert "<xmin>2.5</xmin>" in xml and "<ymax>13.75</ymax>" in xml
    full = (out / "Annotations/sub__a.xml").read_text()
    assert "<xmin>0</xmin>" in full and "<xmax>50</xmax>" in full and "<ymax>40</ymax>" in full
    assert (out / "ImageSets/Main/train.txt").read_text().split() == ["a", "c"]
    assert (out / "ImageSets/Main/test.txt").read_text().split() == ["sub__a"]

    spec = read_voc(
        out, class_names=[c.name for c in sorted(snap.classes, key=lambda c: c.position)]
    )
    assert spec.classes == ["cat", "dog", "big bird: unused"]
    splits = {im.key: im.split for im in spec.images}
    assert splits == {"Annotations/a": "train", "Annotations/b": "val",
                      "Annotations/sub__a": "test", "Annotations/c": "train"}  # fmt: skip
    check_round_trip(snap, spec, mask_as="box")


def test_voc_cut_off_xml(tmp_path: Path) -> None:
    f = tmp_path / "a.xml"
    f.write_text("<annotation>\n  <filename>a.png</filename>\n  <object><name>x</na")
    with pytest.raises(FormatError) as exc:
        read_voc(tmp_path)
    assert_format_error(exc, f, "line 3 column", "malformed XML")


@pytest.mark.parametrize(
    ("obj", "where", "problem"),
    [
        ("<object><bndbox><xmin>1</xmin></bndbox></object>", "object 2 <name>", "missing"),
        ("<object><name>x</name></object>", "object 2 <bndbox>", "missing"),
        (
            "<object><name>x</name><bndbox><xmin>1</xmin><ymin>a</ymin>"
            "<xmax>3</xmax><ymax>4</ymax></bndbox></object>",
            "object 2 <bndbox><ymin>",
            "not a number: 'a'",
        ),
    ],
)
def test_voc_malformed_object(tmp_path: Path, obj: str, where: str, problem: str) -> None:
    make_image(tmp_path / "a.png", 20, 10, seed=1)
    good = (
        "<object><name>x</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>5</xmax><ymax>5</ymax></bndbox></object>"
    )
    f = tmp_path / "a.xml"
    f.write_text(f"<annotation><filename>a.png</filename>{good}{obj}</annotation>")
    with pytest.raises(FormatError) as exc:
        read_voc(f)
    assert_format_error(exc, f, where, problem)
    f.write_text(f"<annotation><filename>a.png</filename>{good}</annotation>")
    spec = read_voc(f)
    assert spec.annotations[0].bbox == (1.0, 1.0, 4.0, 4.0)
    # <difficult> is kept as the shape's attribute now, so nothing to warn about.
    assert spec.annotations[0].attributes.difficult is True
    assert spec.warnings == []


# --- labelme -------------------------------------------------------------------------------


def test_labelme_round_trip(tmp_path: Path) -> None:
    snap = build_snapshot(tmp_path)
    out = tmp_path / "lm"
    warnings = write_labelme(snap, out)
    assert any("1 masks written as polygons" in w for w in warnings)
    doc = json.loads((out / "sub/a.json").read_text())
    assert doc["version"] == "5.5.0" and doc["imageData"] is None
    assert doc["imagePath"] == "../../project/sub/a.png"
    assert (doc["imageWidth"], doc["imageHeight"]) == (50, 40)
    assert doc["shapes"][0]["shape_type"] == "rectangle"
    assert doc["shapes"][0]["points"] == [[0.0, 0.0], [50.0, 40.0]]
    two_part = json.loads((out / "sub/b.json").read_text())["shapes"][:2]
    assert two_part[0]["group_id"] == two_part[1]["group_id"] == 1

    spec = read_labelme(out)
    assert set(spec.classes) == {"cat", "dog"}  # unused classes are not in labelme files
    assert {(im.width, im.height) for im in spec.images} == {
        (im.width, im.height) for im in snap.images
    }
    check_round_trip(snap, spec, mask_as="polygon")


def test_labelme_skips_unsupported_shapes_and_normalises_rectangles(tmp_path: Path) -> None:
    make_image(tmp_path / "a.png", 20, 10, seed=1)
    shapes = [
        {"label": "x", "points": [[9, 8], [1, 2]], "shape_type": "rectangle"},
        {"label": "x", "points": [[5, 5], [8, 5]], "shape_type": "circle"},
        {"label": "x", "points": [[1, 1], [2, 2]], "shape_type": "line"},
        {"label": "x", "points": [[1, 1], [2, 2]], "shape_type": "point"},
        {"label": "y", "points": [[1, 1], [5, 1], [5, 5]], "shape_type": "polygon"},
    ]
    doc = {"shapes": shapes, "imagePath": "a.png", "imageWidth": 20, "imageHeight": 10}
    spec = read_labelme(write_json(tmp_path / "a.json", doc))
    box, circle, poly = spec.annotations
    assert box.kind == "box" and box.bbox == (1.0, 2.0, 8.0, 6.0)
    # A circle (centre, a point on it) is a 32-point polygon around the centre.
    assert circle.kind == "polygon" and len(circle.polygons[0]) == 64
    assert circle.bbox == pytest.approx((2.0, 2.0, 6.0, 6.0), abs=0.01)
    assert poly.kind == "polygon" and poly.polygons == [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]]
    assert spec.rejected == {
        "shapes of type 'line' skipped (not supported)": 1,
        "shapes of type 'point' skipped (not supported)": 1,
    }


def test_labelme_errors(tmp_path: Path) -> None:
    f = write_json(tmp_path / "a.json", {"imagePath": "a.png", "version": "5.5.0"})
    with pytest.raises(FormatError) as exc:
        read_labelme(tmp_path)
    assert_format_error(exc, f, "shapes", "not a labelme file")
    write_json(f, {"shapes": [], "imagePath": "gone.png", "imageData": "aGVsbG8="})
    with pytest.raises(FormatError) as exc:
        read_labelme(f)
    assert_format_error(exc, f, "embedded", "next to the JSON")
    write_json(f, {"shapes": [], "imagePath": "gone.png", "imageData": None})
    with pytest.raises(FormatError) as exc:
        read_labelme(f)
    assert_format_error(exc, f, "imagePath", "--images")


# --- shared --------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(WRITERS) == {"coco", "yolo", "voc", "labelme"}
    assert set(READERS) == set(WRITERS) | {"cvat"}  # CVAT's XML is read, not written


def test_mask_to_polygons_covers_every_region() -> None:
    m = np.zeros((20, 30), np.uint8)
    m[2:8, 3:10] = 1
    m[15, 25] = 1  # a single pixel: no 3-point contour, kept as its pixel square
    parts = sorted(polygons_from_rle(rle_of(m)), key=len)
    assert parts[0] == [25.0, 15.0, 26.0, 15.0, 26.0, 16.0, 25.0, 16.0]
    xs, ys = parts[1][0::2], parts[1][1::2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (3.5, 9.5, 2.5, 7.5)
    assert not any(math.isnan(v) for p in parts for v in p)

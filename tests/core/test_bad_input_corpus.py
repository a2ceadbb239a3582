"""A corpus of malformed, truncated, wrongly typed and hostile inputs, generated here,
run through `studio import` of every format. For each case: exit status 2, one line
"studio: error: ..." naming the file, no traceback, the project unchanged, and
`PRAGMA integrity_check` ok."""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from studio import cli
from studio.core.project import Project

# A case writes its input under a folder and returns (import args, the path the message
# must name); the import args follow `studio import PROJECT`.
Case = Callable[[Path], tuple[list[str], Path]]

COCO = {
    "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 8], "iscrowd": 0,
         "segmentation": [[1, 2, 11, 2, 11, 10]], "area": 40},
    ],
    "categories": [{"id": 1, "name": "cat"}],
}  # fmt: skip


def _png(path: Path, w: int = 32, h: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (200, 10, 10)).save(path)
    return path


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that declares w x h pixels and holds none (a 20000x20000 'image')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def _coco(mutate: Callable[[dict], object], raw: str | bytes | None = None) -> Case:
    def make(d: Path) -> tuple[list[str], Path]:
        _png(d / "a.png")
        f = d / "annotations.json"
        if raw is not None:
            f.write_bytes(raw.encode() if isinstance(raw, str) else raw)
        else:
            doc = copy.deepcopy(COCO)
            out = mutate(doc)
            f.write_text(json.dumps(doc if out is None else out))
        return ["--format", "coco", str(f)], f

    return make


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A mutation setting doc[k1][k2]... (list indices as digits) to `value`."""

    def mutate(doc: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = doc
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return mutate


def _del(path: str) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        target = doc
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return mutate


def _box_only(bbox: object) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        doc["annotations"][0]["segmentation"] = []
        doc["annotations"][0]["bbox"] = bbox

    return mutate


NAN, INF = float("nan"), float("inf")
COCO_CASES: dict[str, Case] = {
    "bbox NaN": _coco(_box_only([NAN, 1, 2, 3])),
    "bbox Infinity": _coco(_box_only([1, INF, 2, 3])),
    "bbox -Infinity": _coco(_box_only([1, 1, -INF, 3])),
    "bbox 1e308 overflowing": _coco(_box_only([1e308, 0, 1e308, 5])),
    "bbox a string": _coco(_box_only("1,2,3,4")),
    "bbox 3 numbers": _coco(_box_only([1, 2, 3])),
    "bbox booleans": _coco(_box_only([True, True, True, True])),
    "bbox 400-digit integer": _coco(_box_only([10**400, 1, 2, 3])),
    "bbox null": _coco(_box_only(None)),
    "bbox missing": _coco(lambda d: (_box_only([1, 2, 3, 4])(d), _del("annotations.0.bbox")(d))),
    "bbox numbers as strings": _coco(_box_only(["1", "2", "3", "4"])),
    "image_id unknown": _coco(_set("annotations.0.image_id", 99)),
    "image_id a list": _coco(_set("annotations.0.image_id", [1])),
    "category_id unknown": _coco(_set("annotations.0.category_id", 7)),
    "category_id missing": _coco(_del("annotations.0.category_id")),
    "polygon odd count": _coco(_set("annotations.0.segmentation", [[1, 2, 3, 4, 5]])),
    "polygon with a string": _coco(_set("annotations.0.segmentation", [[1, 2, "x", 4, 5, 6]])),
    "polygon NaN": _coco(_set("annotations.0.segmentation", [[1, 2, NAN, 4, 5, 6]])),
    "polygon part not a list": _coco(_set("annotations.0.segmentation", [5, 6])),
    "segmentation a number": _coco(_set("annotations.0.segmentation", 12)),
    "RLE without size": _coco(_set("annotations.0.segmentation", {"counts": "ab"})),
    "RLE overlong counts": _coco(
        _set("annotations.0.segmentation", {"size": [24, 32], "counts": "0" + "o" * 400 + "1"})
    ),
    "RLE counts not RLE text": _coco(
        _set("annotations.0.segmentation", {"size": [24, 32], "counts": "\u00ff\u00fe"})
    ),
    "RLE negative size": _coco(
        _set("annotations.0.segmentation", {"size": [-24, 32], "counts": [768]})
    ),
    "RLE runs not covering the image": _coco(
        _set("annotations.0.segmentation", {"size": [24, 32], "counts": [10, 5]})
    ),
    "iscrowd 2": _coco(_set("annotations.0.iscrowd", 2)),
    "score a word": _coco(_set("annotations.0.score", "high")),
    "duplicate annotation id": _coco(lambda d: d["annotations"].append(dict(d["annotations"][0]))),
    "annotation not an object": _coco(_set("annotations.0", "box")),
    "annotations not a list": _coco(_set("annotations", {"0": 1})),
    "images not a list": _coco(_set("images", "a.png")),
    "images missing": _coco(_del("images")),
    "image id a float": _coco(_set("images.0.id", 1.5)),
    "image width negative": _coco(_set("images.0.width", -32)),
    "image width a word": _coco(_set("images.0.width", "wide")),
    "image width NaN": _coco(_set("images.0.width", NAN)),
    "file_name missing": _coco(_del("images.0.file_name")),
    "file_name not a string": _coco(_set("images.0.file_name", 5)),
    "file_name with quotes and a newline": _coco(_set("images.0.file_name", 'a "b"\n.png')),
    "file_name unicode, missing": _coco(_set("images.0.file_name", "猫 ü 🐈.png")),
    "file_name 300 characters": _coco(_set("images.0.file_name", "n" * 300 + ".png")),
    "categories not a list": _coco(_set("categories", "cat")),
    "category name empty": _coco(_set("categories.0.name", " ")),
    "category id duplicate": _coco(lambda d: d["categories"].append({"id": 1, "name": "dog"})),
    "top level a list": _coco(lambda d: [d]),
    "top level a string": _coco(lambda d: "coco"),
    "invalid JSON": _coco(None, raw='{"images": [,]}'),
    "truncated JSON": _coco(None, raw=json.dumps(COCO)[:70]),
    "empty file": _coco(None, raw=""),
    "binary garbage": _coco(None, raw=bytes(range(256)) * 4),
    "deeply nested JSON": _coco(None, raw="[" * 100_000 + "]" * 100_000),
    "5000-digit integer literal": _coco(None, raw='{"images": [{"id": ' + "9" * 5000 + "}]}"),
}


def _coco_image(make_image: Callable[[Path], object]) -> Case:
    def make(d: Path) -> tuple[list[str], Path]:
        make_image(d / "a.png")
        f = d / "annotations.json"
        f.write_text(json.dumps(COCO))
        return ["--format", "coco", str(f)], d / "a.png"

    return make


IMAGE_CASES: dict[str, Case] = {
    "image is a text file": _coco_image(lambda p: p.write_text("not a png")),
    "image truncated": _coco_image(lambda p: p.write_bytes(_png(p).read_bytes()[:60])),
    "image empty": _coco_image(lambda p: p.write_bytes(b"")),
    "image width 2e6 declared": _coco(_set("images.0.width", 2_000_000)),
}


def _yolo(files: dict[str, str | bytes], target: str = "labels", extra: list[str] = ()) -> Case:
    """A YOLO folder (images/a.png, the given files); `target` is the file to be named."""

    def make(d: Path) -> tuple[list[str], Path]:
        _png(d / "images" / "a.png")
        for name, content in files.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                (d / name).write_bytes(content)
            else:
                (d / name).write_text(content)
        return ["--format", "yolo", str(d), *extra], d / target

    return make


YAML = "path: .\ntrain: images\nval: images\nnames: [cat, dog]\n"
YOLO_CASES: dict[str, Case] = {
    "class index out of range": _yolo(
        {"data.yaml": YAML, "labels/a.txt": "5 0.5 0.5 0.1 0.1\n"}, "labels/a.txt"
    ),
    "label NaN": _yolo({"data.yaml": YAML, "labels/a.txt": "0 nan 0.5 0.1 0.1\n"}, "labels/a.txt"),
    "label inf": _yolo({"data.yaml": YAML, "labels/a.txt": "0 inf 0.5 0.1 0.1\n"}, "labels/a.txt"),
    "label not a number": _yolo(
        {"data.yaml": YAML, "labels/a.txt": "0 0.5 zero 0.1 0.1\n"}, "labels/a.txt"
    ),
    "label 3 numbers": _yolo({"data.yaml": YAML, "labels/a.txt": "0 0.5 0.5\n"}, "labels/a.txt"),
    "label odd polygon": _yolo(
        {"data.yaml": YAML, "labels/a.txt": "0 0.1 0.1 0.2 0.2 0.3\n"}, "labels/a.txt"
    ),
    "label binary": _yolo({"data.yaml": YAML, "labels/a.txt": b"\xff\xfe\x00\x81"}, "labels/a.txt"),
    "class index fractional": _yolo(
        {"data.yaml": YAML, "labels/a.txt": "0.5 0.5 0.5 0.1 0.1\n"}, "labels/a.txt"
    ),
    "yaml invalid": _yolo({"data.yaml": "names: [cat\ntrain: ]"}, "data.yaml"),
    "yaml a list": _yolo({"data.yaml": "- cat\n- dog\n"}, "data.yaml"),
    "yaml binary": _yolo({"data.yaml": b"\xff\xfe\xfa"}, "data.yaml"),
    "yaml without names": _yolo({"data.yaml": "train: images\n"}, "data.yaml"),
    "yaml nc disagrees": _yolo({"data.yaml": YAML + "nc: 5\n"}, "data.yaml"),
    "yaml train folder missing": _yolo(
        {"data.yaml": "train: nowhere\nval: images\nnames: [cat]\n"}, "data.yaml"
    ),
    "image list binary": _yolo(
        {"data.yaml": "train: train.txt\nnames: [cat]\n", "train.txt": b"\xff\xfe\x00"},
        "train.txt",
    ),
    "image list names a missing image": _yolo(
        {"data.yaml": "train: train.txt\nnames: [cat]\n", "train.txt": "images/gone.png\n"},
        "train.txt",
    ),
    "classes.txt binary": _yolo(
        {"labels/a.txt": "0 0.5 0.5 0.1 0.1\n", "cls.txt": b"\x80\x81\xfe"},
        "cls.txt",
        extra=["--classes", "CLS"],
    ),
    "classes.txt empty": _yolo(
        {"labels/a.txt": "0 0.5 0.5 0.1 0.1\n", "cls.txt": "\n\n"},
        "cls.txt",
        extra=["--classes", "CLS"],
    ),
    "no classes anywhere": _yolo({"images/a.txt": "0 0.5 0.5 0.1 0.1\n"}, ""),
}


def _voc(
    xml: str | bytes, extra: dict[str, str | bytes] | None = None, target: str = "a.xml"
) -> Case:
    def make(d: Path) -> tuple[list[str], Path]:
        _png(d / "a.png")
        f = d / "a.xml"
        f.write_bytes(xml.encode() if isinstance(xml, str) else xml)
        for name, content in (extra or {}).items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(content.encode() if isinstance(content, str) else content)
        return ["--format", "voc", str(f if not extra else d)], d / target

    return make


def _obj(
    box: str = "<xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>", name: str = "cat"
) -> str:
    return f"<object><name>{name}</name><bndbox>{box}</bndbox></object>"


def _ann(body: str, filename: str = "a.png") -> str:
    return f"<annotation><filename>{filename}</filename>{body}</annotation>"


VOC_CASES: dict[str, Case] = {
    "malformed XML": _voc("<annotation><filename>a.png</filename><object>"),
    "truncated XML": _voc(_ann(_obj())[:50]),
    "not XML at all": _voc(b"\x00\x01\x02binary"),
    "not an annotation": _voc("<html><body>hi</body></html>"),
    "filename missing": _voc("<annotation>" + _obj() + "</annotation>"),
    "image missing": _voc(_ann(_obj(), "gone.png")),
    "image name with a newline": _voc(_ann(_obj(), "a\nb.png")),
    "bndbox missing": _voc(_ann("<object><name>cat</name></object>")),
    "name missing": _voc(_ann("<object><bndbox><xmin>1</xmin></bndbox></object>")),
    "xmin a word": _voc(_ann(_obj("<xmin>a</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"))),
    "xmin NaN": _voc(_ann(_obj("<xmin>nan</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"))),
    "xmax Infinity": _voc(_ann(_obj("<xmin>1</xmin><ymin>1</ymin><xmax>inf</xmax><ymax>9</ymax>"))),
    "ymax missing": _voc(_ann(_obj("<xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"))),
    "width negative": _voc(_ann("<size><width>-3</width><height>5</height></size>" + _obj())),
    "polygon of 2 points": _voc(
        _ann(
            "<object><name>cat</name><polygon><pt><x>1</x><y>1</y></pt>"
            "<pt><x>3</x><y>3</y></pt></polygon></object>"
        )
    ),  # fmt: skip
    "ImageSets list binary": _voc(
        _ann(_obj()), {"ImageSets/Main/train.txt": b"\xff\xfe\x81"}, "ImageSets/Main/train.txt"
    ),
}


def _labelme(doc: object, raw: bytes | None = None) -> Case:
    def make(d: Path) -> tuple[list[str], Path]:
        _png(d / "a.png")
        f = d / "a.json"
        f.write_bytes(raw if raw is not None else json.dumps(doc).encode())
        return ["--format", "labelme", str(f)], f

    return make


def _lm(**changes: object) -> dict:
    shape = {"label": "cat", "points": [[1, 1], [9, 1], [9, 9]], "group_id": None,
             "shape_type": "polygon", "flags": {}}  # fmt: skip
    doc = {"version": "5.5.0", "flags": {}, "shapes": [shape], "imagePath": "a.png",
           "imageData": None, "imageHeight": 24, "imageWidth": 32}  # fmt: skip
    for k, v in changes.items():
        if k.startswith("shape_"):
            shape[k[6:]] = v
        else:
            doc[k] = v
    return doc


LABELME_CASES: dict[str, Case] = {
    "no shapes list": _labelme({"imagePath": "a.png"}),
    "shapes not a list": _labelme(_lm(shapes="cat")),
    "shape not an object": _labelme(_lm(shapes=[1])),
    "imagePath missing": _labelme(_lm(imagePath=None)),
    "image missing, embedded data": _labelme(_lm(imagePath="gone.png", imageData="iVBORw0KGgo=")),
    "label missing": _labelme(_lm(shape_label=None)),
    "label a number": _labelme(_lm(shape_label=3)),
    "points not a list": _labelme(_lm(shape_points="1,2")),
    "point NaN": _labelme(_lm(shape_points=[[NAN, 1], [9, 1], [9, 9]])),
    "point of one number": _labelme(_lm(shape_points=[[1], [9, 1], [9, 9]])),
    "point of booleans": _labelme(_lm(shape_points=[[True, False], [9, 1], [9, 9]])),
    "rectangle of one point": _labelme(_lm(shape_shape_type="rectangle", shape_points=[[1, 1]])),
    "imageWidth negative": _labelme(_lm(imageWidth=-32)),
    "imageWidth 1e308": _labelme(_lm(imageWidth=1e308)),
    "invalid JSON": _labelme(None, raw=b'{"shapes": [}'),
    "UTF-16 garbage": _labelme(None, raw=b"\xff\xfe\x00\xd8\x00"),
}


def _folder_case(make_folder: Callable[[Path], Path], fmt: str) -> Case:
    def make(d: Path) -> tuple[list[str], Path]:
        target = make_folder(d)
        return ["--format", fmt, str(target)], target

    return make


def _fifo_only(d: Path) -> Path:
    os.mkfifo(d / "a.json")
    return d


FOLDER_CASES: dict[str, Case] = {
    "images folder missing": _folder_case(lambda d: d / "nowhere", "images"),
    "images path 300 characters": _folder_case(lambda d: d / ("x" * 300), "images"),
    "labelme folder holding only a FIFO": _folder_case(_fifo_only, "labelme"),
    "coco given a FIFO": _folder_case(lambda d: (os.mkfifo(d / "c.json"), d / "c.json")[1], "coco"),
    "voc folder without XML": _folder_case(lambda d: d, "voc"),
    "coco folder with two JSON files": _folder_case(
        lambda d: ((d / "x.json").write_text("{}"), (d / "y.json").write_text("{}"), d)[2], "coco"
    ),
}

ALL_CASES = {
    **{f"coco: {k}": v for k, v in COCO_CASES.items()},
    **{f"image: {k}": v for k, v in IMAGE_CASES.items()},
    **{f"yolo: {k}": v for k, v in YOLO_CASES.items()},
    **{f"voc: {k}": v for k, v in VOC_CASES.items()},
    **{f"labelme: {k}": v for k, v in LABELME_CASES.items()},
    **{f"folder: {k}": v for k, v in FOLDER_CASES.items()},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled project, copied for each case."""
    folder = tmp_path_factory.mktemp("corpus") / "proj"
    with Project.create(folder) as p:
        _png(folder / "have.png", 16, 16)
        from studio.core.importing import import_images

        import_images(p, [folder / "have.png"])
        cid = p.add_class("kept")
        p.add_annotation(p.image_ids()[0], cid, "box", bbox=(1.0, 1.0, 4.0, 4.0))
    return folder


def _dump(db: Path) -> dict[str, list]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}"))) for t in tables}
    finally:
        con.close()


def test_bad_input_corpus(template: Path, tmp_path: Path, capsys) -> None:
    """Every case fails with one line naming its file, and changes nothing."""
    failures = []
    for i, (name, make) in enumerate(ALL_CASES.items()):
        proj = tmp_path / f"p{i}"
        shutil.copytree(template, proj)
        src = tmp_path / f"in{i}"
        src.mkdir()
        args, named = make(src)
        args = [str(src / "cls.txt") if a == "CLS" else a for a in args]
        before = _dump(proj / "studio.db")
        code = cli.main(["import", str(proj), *args])
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        problem = None
        if code != 2 or len(lines) != 1 or not lines[0].startswith("studio: error: "):
            problem = f"exit {code}, stderr {err!r}, stdout {out!r}"
        elif str(named) not in lines[0]:
            problem = f"message does not name {named}: {lines[0]!r}"
        elif _dump(proj / "studio.db") != before:
            problem = "the project changed"
        else:
            con = sqlite3.connect(proj / "studio.db")
            ok = con.execute("PRAGMA integrity_check").fetchone()
            con.close()
            if ok != ("ok",):
                problem = f"integrity_check: {ok}"
        if problem:
            failures.append(f"{name}: {problem}")
    assert not failures, "\n".join(failures)
    assert len(ALL_CASES) >= 100


def test_a_20000_by_20000_image_imports_from_its_header_alone(
    project: Project, tmp_path: Path
) -> None:
    """Only headers are read on import: a 400-megapixel image costs no pixel memory, and
    a box on it lands whole."""
    img = _png_header_only(tmp_path / "huge.png", 20000, 20000)
    doc = copy.deepcopy(COCO)
    doc["images"][0].update(file_name="huge.png", width=20000, height=20000)
    doc["annotations"][0]["segmentation"] = []
    doc["annotations"][0]["bbox"] = [19990, 19990, 10, 10]
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    from studio.core.importing import import_annotations

    report = import_annotations(project, "coco", tmp_path / "annotations.json")
    assert report.added_images == 1 and report.warnings == []
    assert [a.bbox for a in project.annotations()] == [(19990.0, 19990.0, 10.0, 10.0)]
    assert project.images()[0].abs_path == img

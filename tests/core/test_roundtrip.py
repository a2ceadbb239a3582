"""Export the demo project in each format, import it into a new project, and compare."""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from studio.core.importing import detect_format, export_annotations, import_annotations
from studio.core.project import Project

FORMATS = ("coco", "yolo", "voc", "labelme")
TOL = 1e-3  # pixels


def _by_file(p: Project) -> dict[str, list[tuple]]:
    """Image file name -> sorted (class, kind, coordinates) of its shapes."""
    names = {c.id: c.name for c in p.classes()}
    files = {im.id: im.name for im in p.images()}
    out: dict[str, list[tuple]] = defaultdict(list)
    for name in files.values():
        out[name] = []
    for a in p.annotations():
        coords = tuple(a.bbox) if a.kind == "box" else tuple(v for part in a.polygons for v in part)
        out[files[a.image_id]].append((names[a.class_id], a.kind, coords))
    return {
        k: sorted(v, key=lambda t: (t[0], t[1], [round(c, 2) for c in t[2]]))
        for k, v in out.items()
    }


def _assert_same_shapes(got: dict[str, list[tuple]], want: dict[str, list[tuple]]) -> None:
    assert sorted(got) == sorted(want)
    for name, shapes in want.items():
        other = got[name]
        assert [(c, k, len(xy)) for c, k, xy in other] == [
            (c, k, len(xy)) for c, k, xy in shapes
        ], name
        for (_, _, a), (_, _, b) in zip(other, shapes, strict=True):
            assert np.max(np.abs(np.subtract(a, b))) <= TOL, (name, a, b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_through_a_new_project(demo_project: Project, tmp_path: Path, fmt: str) -> None:
    demo = demo_project
    out = tmp_path / f"export_{fmt}"
    warnings = export_annotations(demo, fmt, out)
    if fmt == "yolo":
        # The demo mixes boxes and polygons: YOLO gets every shape as a polygon.
        (only,) = warnings
        assert "boxes written as 4-corner polygons" in only
    else:
        assert warnings == []
    src = out / "annotations.json" if fmt == "coco" else out
    with Project.create(tmp_path / f"new_{fmt}") as new:
        images_dir = demo.path / "images" if fmt == "coco" else None
        report = import_annotations(new, fmt, src, images_dir=images_dir)
        assert report.added_images == 24
        assert report.added_annotations == demo.annotation_count()
        assert report.problem_counts == {}
        assert sorted(report.added_classes) == sorted(c.name for c in demo.classes())
        want = _by_file(demo)
        got = _by_file(new)
        kinds = {k for shapes in want.values() for _, k, _ in shapes}
        assert kinds == {"box", "polygon"}
        _assert_same_shapes(got, want)
        # Image sizes as displayed come through too.
        sizes = {im.name: (im.width, im.height) for im in demo.images()}
        assert {im.name: (im.width, im.height) for im in new.images()} == sizes
        if fmt in ("yolo", "voc"):
            # These formats carry the split of every image.
            splits = {im.name: im.split for im in demo.images()}
            assert {im.name: im.split for im in new.images()} == splits


def test_roundtrip_one_split(demo_project: Project, tmp_path: Path) -> None:
    val_names = {im.name for im in demo_project.images(split="val")}
    assert val_names
    export_annotations(demo_project, "labelme", tmp_path / "val", split="val")
    with Project.create(tmp_path / "new") as new:
        import_annotations(new, "labelme", tmp_path / "val")
        assert {im.name for im in new.images()} == val_names
        want = {k: v for k, v in _by_file(demo_project).items() if k in val_names}
        _assert_same_shapes(_by_file(new), want)


@pytest.mark.parametrize("fmt", FORMATS)
def test_detect_format_of_exports(demo_project: Project, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / fmt
    export_annotations(demo_project, fmt, out)
    assert detect_format(out) == fmt


def test_coco_export_is_valid_for_pycocotools(demo_project: Project, tmp_path: Path, sql) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    out = tmp_path / "coco.json"
    assert export_annotations(demo_project, "coco", out) == []
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    data = json.loads(out.read_text())

    db_images = dict(sql(demo_project.db_path, "SELECT id, path FROM images"))
    db_classes = dict(sql(demo_project.db_path, "SELECT id, name FROM label_classes"))
    db_anns = {
        r[0]: r[1:]
        for r in sql(demo_project.db_path, "SELECT id, image_id, class_id, kind FROM annotations")
    }
    assert {im["id"]: (out.parent / im["file_name"]).resolve() for im in data["images"]} == {
        i: demo_project.abs_path(path).resolve() for i, path in db_images.items()
    }
    assert {c["id"]: c["name"] for c in data["categories"]} == db_classes
    assert {a["id"]: (a["image_id"], a["category_id"]) for a in data["annotations"]} == {
        k: v[:2] for k, v in db_anns.items()
    }
    assert sorted(coco.getImgIds()) == sorted(db_images)
    assert sorted(coco.getCatIds()) == sorted(db_classes)

    class_of = {c["id"]: c["name"] for c in data["categories"]}
    n_poly = n_tiles = 0
    for ann in coco.loadAnns(coco.getAnnIds()):
        kind = db_anns[ann["id"]][2]
        img = coco.imgs[ann["image_id"]]
        if kind == "polygon":
            n_poly += 1
            rle = coco.annToRLE(ann)
            assert list(rle["size"]) == [img["height"], img["width"]]
            # COCO's convention: the polygon's own area (shoelace), not the pixel count.
            shoelace = sum(
                abs(np.dot(p[0::2], np.roll(p[1::2], -1)) - np.dot(np.roll(p[0::2], -1), p[1::2]))
                / 2
                for p in map(np.asarray, ann["segmentation"])
            )
            assert ann["area"] == pytest.approx(shoelace)
            # "bbox" is the tight box of the points, as in COCO's own files ...
            pts = np.concatenate([np.reshape(s, (-1, 2)) for s in ann["segmentation"]])
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            assert ann["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
            # ... so the rasterised mask lies inside it (pycocotools rounds to half a pixel),
            # and for right-angled shapes it is within 1 px of the mask's box (corner by corner). Sharp tips
            # (triangles, stars) may be thinner than a pixel and miss the raster.
            rx, ry, rw, rh = mask_utils.toBbox(rle)
            assert rx >= x0 - 0.5 and ry >= y0 - 0.5, ann["id"]
            assert rx + rw <= x1 + 0.5 and ry + rh <= y1 + 0.5, ann["id"]
            if class_of[ann["category_id"]] == "tile":
                n_tiles += 1
                corners = [rx, ry, rx + rw, ry + rh]
                assert np.allclose(corners, [x0, y0, x1, y1], atol=1.0), ann["id"]
        else:
            assert ann["segmentation"] == []
            x, y, w, h = ann["bbox"]
            assert ann["area"] == pytest.approx(w * h)
            rec = demo_project.annotations(ids=[ann["id"]])[0]
            assert ann["bbox"] == pytest.approx(list(rec.bbox))
    assert n_poly > 20 and n_tiles > 5

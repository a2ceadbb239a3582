"""Make the README's pictures of the labelling window, light and dark, at 1920x1080.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py [--project DIR] [--out docs]

Builds (once, in DIR; default a temporary folder) a project shaped like COCO128: 30
generated 640x480 images and a COCO-format instances JSON with COCO's 80 categories (their
names and ids) and up to 42 overlapping polygons per image, imported through the COCO
importer as a user would import COCO128's labels; then a model's predictions (a few
shapes per image, with a score) are added, as pre-labelling would. Nothing is
downloaded. Then it opens the window offscreen on the busiest image, selects one shape
(so the objects list, the handles and the class tag show) and saves
docs/screenshot-labelling.png and docs/screenshot-labelling-dark.png.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QSize

from studio.core.importing import import_annotations
from studio.core.kinds import ShapeKind, Source
from studio.core.project import DB_NAME, Project, make_annotation_row
from studio.ui.app import screenshot
from studio.ui.theme import Theme

# COCO's 80 categories as instances_*.json lists them: (id, name); the ids skip 12, 26...
COCO_CATEGORIES = list(zip(
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
     27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
     52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
     78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90),
    "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,"
    "stop sign,parking meter,bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,"
    "backpack,umbrella,handbag,tie,suitcase,frisbee,skis,snowboard,sports ball,kite,"
    "baseball bat,baseball glove,skateboard,surfboard,tennis racket,bottle,wine glass,cup,"
    "fork,knife,spoon,bowl,banana,apple,sandwich,orange,broccoli,carrot,hot dog,pizza,donut,"
    "cake,chair,couch,potted plant,bed,dining table,toilet,tv,laptop,mouse,remote,keyboard,"
    "cell phone,microwave,oven,toaster,sink,refrigerator,book,clock,vase,scissors,"
    "teddy bear,hair drier,toothbrush".split(","),
    strict=True,
))  # fmt: skip
N_IMAGES, SIZE, MAX_SHAPES = 30, (640, 480), 42
PREDICTED_EVERY = 9  # one shape in this many also comes as a model's prediction


def blob(rng: np.random.Generator, w: int, h: int) -> list[float]:
    """A star-shaped polygon (flat x, y list in image pixels) somewhere in a w x h image."""
    r = float(rng.uniform(14, 110))
    cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
    n = int(rng.integers(7, 16))
    pts: list[float] = []
    for k in range(n):
        a = 2 * math.pi * k / n
        rr = r * rng.uniform(0.55, 1.0)
        pts += [round(cx + rr * math.cos(a), 2), round(cy + 0.8 * rr * math.sin(a), 2)]
    return pts


def coco_annotation(ann_id: int, image_id: int, category: int, pts: list[float]) -> dict:
    """One COCO instance: a polygon segmentation with its box and polygon area."""
    xs, ys = pts[0::2], pts[1::2]
    x0, y0 = min(xs), min(ys)
    area = 0.5 * abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))))
    return {"id": ann_id, "image_id": image_id, "category_id": category, "iscrowd": 0,
            "segmentation": [pts], "area": round(area, 2),
            "bbox": [round(x0, 2), round(y0, 2), round(max(xs) - x0, 2), round(max(ys) - y0, 2)]}  # fmt: skip


def write_coco128_like(folder: Path, rng: np.random.Generator) -> Path:
    """Images under folder/images and folder/instances.json (COCO format); returns it."""
    images = folder / "images"
    images.mkdir(parents=True)
    doc: dict = {"images": [], "annotations": [],
                 "categories": [{"id": i, "name": n, "supercategory": ""} for i, n in COCO_CATEGORIES]}  # fmt: skip
    for i in range(N_IMAGES):
        small = rng.integers(50, 210, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize(SIZE, Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        name = f"{i:012d}.jpg"
        doc["images"].append({"id": i + 1, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
        n = MAX_SHAPES if i == 0 else int(rng.integers(3, MAX_SHAPES))
        for _ in range(n):
            pts = blob(rng, *SIZE)
            colour = tuple(int(c) for c in rng.integers(20, 235, 3))
            draw.polygon(list(zip(pts[::2], pts[1::2], strict=True)), fill=colour)
            category = COCO_CATEGORIES[int(rng.integers(0, len(COCO_CATEGORIES)))][0]
            doc["annotations"].append(
                coco_annotation(len(doc["annotations"]) + 1, i + 1, category, pts)
            )
        img.save(images / name, quality=88)
    out = folder / "instances.json"
    out.write_text(json.dumps(doc))
    return out


def build_project(folder: Path, seed: int = 0) -> Path:
    """The COCO128-like project in `folder` (made once; reused when it exists): the
    labels imported from COCO JSON, then a few predictions with scores."""
    if (folder / DB_NAME).is_file():
        return folder
    rng = np.random.default_rng(seed)
    coco = write_coco128_like(folder / "coco128", rng)
    with Project.create(folder) as project:
        report = import_annotations(project, "coco", coco, images_dir=coco.parent / "images")
        assert report.added_annotations > 0 and not report.missing, report.summary()
        rows = []
        for k, a in enumerate(project.annotations()):
            if k % PREDICTED_EVERY == 4:  # the model found it too, slightly off
                pts = [v + float(rng.uniform(-3, 3)) for v in a.polygons[0]]
                score = round(float(rng.uniform(0.3, 0.99)), 2)
                rows.append(make_annotation_row(a.image_id, a.class_id, ShapeKind.POLYGON,
                                                polygons=[pts], source=Source.PREDICTED,
                                                score=score))  # fmt: skip
        project.add_annotations(rows)
        project.undo_stack.clear()
    return folder


def select_busiest_shape(window) -> None:
    """Select a mid-sized predicted shape, so the objects list (scrolled to its row, its
    score showing), the handles and the class tag are in the picture."""
    recs = sorted(window.canvas.shapes.records(), key=lambda r: r.bbox[2] * r.bbox[3])
    recs = [r for r in recs if r.source == Source.PREDICTED] or recs
    if recs:
        window.canvas.select([recs[len(recs) // 2].id])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="where to build the project (kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    folder = args.project or Path(tempfile.mkdtemp(prefix="studio-shots-")) / "coco128-like"
    build_project(folder)
    with Project.open(folder) as project:
        counts: dict[int, int] = {}
        for a in project.annotations():
            counts[a.image_id] = counts.get(a.image_id, 0) + 1
    busiest = max(counts, key=lambda i: counts[i])
    for theme, name in ((Theme.LIGHT, "screenshot-labelling.png"),
                        (Theme.DARK, "screenshot-labelling-dark.png")):  # fmt: skip
        out = screenshot(folder, args.out / name, QSize(1920, 1080), image_id=busiest,
                         max_bytes=900_000, theme=theme, before_grab=select_busiest_shape)  # fmt: skip
        print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Make the README's pictures of the labelling window, light and dark, at 1920x1080.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py [--project DIR] [--out docs]

Builds (once, in DIR; default a temporary folder) a project like COCO128: COCO's 80
class names and 30 generated 640x480 images, each with many overlapping polygons (up to
42), a few of them predicted with a score. Nothing is downloaded. Then it opens the window
offscreen on the busiest image, selects one shape (so the objects list, the handles and
the class tag show) and saves docs/screenshot-labelling.png and
docs/screenshot-labelling-dark.png.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QSize

from studio.core.importing import import_images
from studio.core.kinds import ShapeKind, Source
from studio.core.project import DB_NAME, Project, make_annotation_row
from studio.ui.app import screenshot
from studio.ui.theme import Theme

COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup "
    "fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut "
    "cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()
N_IMAGES, SIZE, MAX_SHAPES = 30, (640, 480), 42


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


def build_project(folder: Path, seed: int = 0) -> Path:
    """The COCO128-like project in `folder` (made once; reused when it exists)."""
    if (folder / DB_NAME).is_file():
        return folder
    rng = np.random.default_rng(seed)
    project = Project.create(folder)
    images = folder / "images"
    images.mkdir()
    shapes: list[list[tuple[int, list[float]]]] = []
    for i in range(N_IMAGES):
        small = rng.integers(50, 210, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize(SIZE, Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        n = MAX_SHAPES if i == 0 else int(rng.integers(3, MAX_SHAPES))
        on_image = []
        for _ in range(n):
            pts = blob(rng, *SIZE)
            colour = tuple(int(c) for c in rng.integers(20, 235, 3))
            draw.polygon(list(zip(pts[::2], pts[1::2], strict=True)), fill=colour)
            on_image.append((int(rng.integers(0, len(COCO_NAMES))), pts))
        img.save(images / f"{i:012d}.jpg", quality=88)
        shapes.append(on_image)
    import_images(project, [images])
    class_ids = [project.add_class(name) for name in COCO_NAMES]
    rows = []
    for image, on_image in zip(project.images(), shapes, strict=True):
        for k, (c, pts) in enumerate(on_image):
            predicted = k % 9 == 4  # some shapes come from a model, with a score
            score = round(float(rng.uniform(0.3, 0.99)), 2) if predicted else None
            source = Source.PREDICTED if predicted else Source.MANUAL
            rows.append(make_annotation_row(image.id, class_ids[c], ShapeKind.POLYGON,
                                            polygons=[pts], source=source, score=score))  # fmt: skip
    project.add_annotations(rows)
    project.undo_stack.clear()
    project.close()
    return folder


def select_busiest_shape(window) -> None:
    """Select a mid-sized shape so the objects list, handles and tag are in the picture."""
    recs = sorted(window.canvas.shapes.records(), key=lambda r: r.bbox[2] * r.bbox[3])
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

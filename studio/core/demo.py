"""The built-in demo project: generated, deterministic, no download.

A few hundred images of four classes of objects on textured backgrounds, with varied
sizes (from ~12 px, below a stride-32 feature cell, to ~40% of the image) and aspect
ratios. "ball" objects are labelled with boxes; "tile", "triangle" and "star" with
polygons, so every tool (box and polygon editing, detectors, Mask R-CNN, the zoom-scale
analysis) has something real to work on.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from studio.core.kinds import ImageStatus, ShapeKind, Source
from studio.core.progress import Progress
from studio.core.project import Project
from studio.core.records import AnnotationSpec, DatasetSpec, ImageSpec

DEMO_CLASSES = ("ball", "tile", "triangle", "star")


def default_demo_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("studio")) / "demo"


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    # Smooth colour noise + stripes + grain: enough texture that objects are not trivial.
    # Muted: a base colour with gentle variation, so objects stay findable but not trivial.
    base = rng.integers(60, 200, size=3).astype(np.float32)
    coarse = rng.normal(0, 28, size=(max(2, h // 64), max(2, w // 64), 3)).astype(np.float32)
    img = base + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(8, 40)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
    img += (stripes * rng.uniform(4, 16))[..., None]
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _star(cx: float, cy: float, rx: float, ry: float, rot: float, n: int = 5) -> np.ndarray:
    pts = []
    for k in range(2 * n):
        r = 1.0 if k % 2 == 0 else 0.45
        a = rot + k * math.pi / n
        pts.append((cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)))
    return np.array(pts)


def _shape(rng: np.random.Generator, cls: str, cx: float, cy: float, size: float, aspect: float):
    rx, ry = size / 2 * math.sqrt(aspect), size / 2 / math.sqrt(aspect)
    rot = rng.uniform(0, 2 * math.pi)
    if cls == "ball":
        return None, (cx - rx, cy - ry, 2 * rx, 2 * ry), rx, ry
    if cls == "tile":
        c, s = math.cos(rot), math.sin(rot)
        corners = [(-rx, -ry), (rx, -ry), (rx, ry), (-rx, ry)]
        pts = np.array([(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners])
    elif cls == "triangle":
        pts = np.array([(cx + rx * math.cos(rot + k * 2 * math.pi / 3),
                         cy + ry * math.sin(rot + k * 2 * math.pi / 3)) for k in range(3)])  # fmt: skip
    else:
        pts = _star(cx, cy, rx, ry, rot)
    return pts, None, rx, ry


def _draw_image(rng: np.random.Generator, w: int, h: int):
    img = _background(rng, w, h)
    objects = []
    taken: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 7))):
        cls = DEMO_CLASSES[int(rng.integers(len(DEMO_CLASSES)))]
        # Log-uniform sizes: many small objects, some large ones, as in real data.
        size = float(math.exp(rng.uniform(math.log(12), math.log(0.4 * min(w, h)))))
        aspect = float(math.exp(rng.uniform(math.log(0.4), math.log(2.5))))
        for _try in range(10):
            cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
            if all(math.hypot(cx - x, cy - y) > (size + s) / 2 for x, y, s in taken):
                break
        else:
            continue
        taken.append((cx, cy, size))
        pts, box, rx, ry = _shape(rng, cls, cx, cy, size, aspect)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if pts is None:
            cv2.ellipse(img, (int(round(cx * 16)), int(round(cy * 16))),
                        (int(round(rx * 16)), int(round(ry * 16))), 0, 0, 360, colour, -1,
                        cv2.LINE_AA, shift=4)  # fmt: skip
            objects.append((cls, box, None))
        else:
            cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
            objects.append((cls, None, pts.ravel().tolist()))
    return img, objects


def generate_demo_images(
    folder: Path,
    n_images: int = 300,
    seed: int = 0,
    image_size: tuple[int, int] = (512, 384),
    progress: Progress | None = None,
) -> DatasetSpec:
    """Write the demo images under `folder` and return their labels as a DatasetSpec.

    Sizes vary around `image_size` (w, h) by up to +-25%, so aspect-ratio grouping and
    resizing get exercised. Coordinates are pixels of the written images."""
    progress = progress or Progress()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    spec = DatasetSpec(classes=list(DEMO_CLASSES))
    progress.start(n_images, "drawing demo images")
    for i in range(n_images):
        progress.step()
        w = int(image_size[0] * rng.uniform(0.75, 1.25)) // 2 * 2
        h = int(image_size[1] * rng.uniform(0.75, 1.25)) // 2 * 2
        img, objects = _draw_image(rng, w, h)
        path = folder / f"demo_{i:04d}.jpg"
        cv2.imwrite(str(path), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        key = path.name
        spec.images.append(ImageSpec(key=key, path=path, width=w, height=h))
        for j, (cls, box, poly) in enumerate(objects):
            if poly is None:
                spec.annotations.append(
                    AnnotationSpec(key, cls, ShapeKind.BOX, box, where=f"{key} #{j}")
                )
            else:
                xs, ys = poly[0::2], poly[1::2]
                bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
                spec.annotations.append(
                    AnnotationSpec(
                        key, cls, ShapeKind.POLYGON, bbox, polygons=[poly], where=f"{key} #{j}"
                    )
                )
    return spec


def create_demo_project(
    folder: Path | str,
    n_images: int = 300,
    seed: int = 0,
    image_size: tuple[int, int] = (512, 384),
    progress: Progress | None = None,
) -> Project:
    """Create a project in `folder` with the generated demo dataset (images inside the
    project under images/, labels stored as manual labels marked done)."""
    from studio.core.importing import import_dataset
    from studio.core.splits import assign_splits

    project = Project.create(folder)
    spec = generate_demo_images(project.path / "images", n_images, seed, image_size, progress)
    import_dataset(project, spec, progress=progress, source=Source.MANUAL, status=ImageStatus.DONE)
    assign_splits(project, val=0.2, test=0.0, seed=seed, undoable=False)
    _open_on_a_busy_image(project)
    return project


def _open_on_a_busy_image(project: Project, among: int = 10) -> None:
    """Open the demo (project setting "last_image") on the busiest of its first images: its
    first image holds one small triangle, a thin first sight of the labelling window."""
    first = project.images()[:among]
    if first:
        counts = Counter(a.image_id for a in project.annotations(image_ids=[im.id for im in first]))
        busiest = max(first, key=lambda im: (counts[im.id], -im.id))
        project.set_setting("last_image", busiest.id)

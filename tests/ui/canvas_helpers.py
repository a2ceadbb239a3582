"""Projects, images and real mouse gestures for the canvas tests and benchmark."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from sqlalchemy import insert

from studio.core import schema as S
from studio.core.project import Project, make_annotation_row

LEFT = Qt.MouseButton.LeftButton
NO_MODS = Qt.KeyboardModifier.NoModifier


def textured_image(path: Path, width: int, height: int, seed: int = 0, quality: int = 90) -> Path:
    """A smooth random texture with a few shapes: looks like something, compresses like
    a photo (noise would make JPEG decoding unrealistically slow)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.integers(0, width), rng.integers(0, height)
        r = int(rng.integers(min(width, height) // 20 + 1, min(width, height) // 6 + 2))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=quality) if path.suffix.lower() in (".jpg", ".jpeg") else img.save(path)
    return path


def add_image_row(project: Project, path: Path, width: int, height: int) -> int:
    """Register an image file without the importer (tests own their fixtures)."""
    with project.engine.begin() as conn:
        res = conn.execute(
            insert(S.Image).values(
                path=project.stored_path(path), width=width, height=height, orientation=1,
                checksum=f"test-{path.name}", file_size=path.stat().st_size if path.exists() else 0,
            )
        )  # fmt: skip
    project.events.images_changed.emit(None)
    return res.inserted_primary_key[0]


def make_project(
    folder: Path, sizes: list[tuple[int, int]], classes: tuple[str, ...] = ("cat", "dog")
) -> tuple[Project, list[int]]:
    project = Project.create(folder / "proj")
    project.ensure_classes(classes)
    ids = []
    for i, (w, h) in enumerate(sizes):
        path = textured_image(folder / "proj" / "images" / f"img{i:03d}.png", w, h, seed=i)
        ids.append(add_image_row(project, path, w, h))
    return project, ids


def many_polygons(
    project: Project, image_id: int, n: int, width: int, height: int, seed: int = 0
) -> list[int]:
    """`n` small 12-gons spread over the image, inserted as one batch."""
    rng = np.random.default_rng(seed)
    class_id = project.classes()[0].id
    rows = []
    for _ in range(n):
        cx, cy = rng.uniform(30, width - 30), rng.uniform(30, height - 30)
        r = rng.uniform(6, 25)
        pts = []
        for k in range(12):
            a = 2 * math.pi * k / 12
            pts += [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)]
        rows.append(make_annotation_row(image_id, class_id, "polygon", polygons=[pts]))
    return project.add_annotations(rows)


# --- gestures -----------------------------------------------------------------------------


def vp(view, x: float, y: float) -> QPoint:
    """Image pixels -> viewport pixels."""
    return view.mapFromScene(QPointF(x, y))


def press(view, x: float, y: float, button=LEFT, mods=NO_MODS) -> None:
    QTest.mousePress(view.viewport(), button, mods, vp(view, x, y))


def move(view, x: float, y: float) -> None:
    """A real mouse move; Qt's test input remembers which buttons are held."""
    QTest.mouseMove(view.viewport(), vp(view, x, y))


def release(view, x: float, y: float, button=LEFT, mods=NO_MODS) -> None:
    QTest.mouseRelease(view.viewport(), button, mods, vp(view, x, y))


def drag(view, points: list[tuple[float, float]], button=LEFT, mods=NO_MODS) -> None:
    """Press at the first point, move through the rest, release at the last."""
    press(view, *points[0], button, mods)
    for p in points[1:]:
        move(view, *p)
    release(view, *points[-1], button, mods)


def click(view, x: float, y: float, button=LEFT, mods=NO_MODS) -> None:
    press(view, x, y, button, mods)
    release(view, x, y, button, mods)


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> float:
    """Process events until `cond()`; returns the longest gap between event-loop turns
    (how long the GUI thread was blocked at worst)."""
    start = last = time.perf_counter()
    worst = 0.0
    while not cond():
        QApplication.processEvents()
        now = time.perf_counter()
        worst = max(worst, now - last)
        last = now
        if now - start > timeout:
            raise TimeoutError("condition not met in time")
        time.sleep(0.002)
    return worst

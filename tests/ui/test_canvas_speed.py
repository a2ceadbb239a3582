"""What keeps the canvas fluid at thousands of shapes, checked by the work done rather
than by timings: plain shapes are painted from one picture (layers/shape_raster.py) that
a pan only moves, that a hover or an edit redraws only around the shape, and that looks
the same as the shapes painting themselves. The timings are benchmarks/bench_canvas.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).parent))

from canvas_helpers import drag, many_polygons  # noqa: E402

from studio.core.project import make_annotation_row  # noqa: E402
from studio.ui.canvas.layers.annotations import DENSE_SHAPES, NO_CONTENTS  # noqa: E402
from studio.ui.canvas.layers.shape_raster import SCALE_WHILE_ZOOMING  # noqa: E402

N_DENSE = max(DENSE_SHAPES, SCALE_WHILE_ZOOMING) + 100


def shown(view, project, image_id, n: int, seed: int = 0) -> list[int]:
    """`n` polygons on the image, shown, painted once."""
    ids = many_polygons(project, image_id, n, 800, 600, seed=seed)
    view.show_image(image_id)
    repaint(view)
    return ids


def repaint(view) -> None:
    QApplication.processEvents()
    view.viewport().repaint()


def settle(view) -> None:
    """After a zoom: the scaled frame, then the sharp one (as the view's pause does)."""
    repaint(view)
    view.shapes.raster.view_settled()
    repaint(view)


def pixels(view) -> np.ndarray:
    img = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].astype(int)


def items_painting_themselves(view) -> np.ndarray:
    """The canvas as it looked before the raster: every item paints itself."""
    shapes = view.shapes
    shapes.raster.setVisible(False)
    for item in shapes.items.values():
        item.setFlag(NO_CONTENTS, False)
    try:
        return pixels(view)
    finally:
        for ann_id, item in shapes.items.items():
            item.setFlag(NO_CONTENTS, ann_id != shapes.hover and ann_id not in shapes.selected)
        shapes.raster.setVisible(True)


def test_a_pan_moves_the_picture_without_drawing_a_shape(setup):
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders, drawn = raster.full_renders, raster.shapes_drawn
    assert renders >= 1 and drawn >= N_DENSE
    bar = view.horizontalScrollBar()
    for step in (20, -35, 15):
        bar.setValue(bar.value() + step)
        repaint(view)
    assert (raster.full_renders, raster.shapes_drawn) == (renders, drawn)


def test_hover_and_selection_redraw_only_around_the_shape(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders, drawn = raster.full_renders, raster.shapes_drawn
    view.shapes.set_hover(ann[10])
    repaint(view)
    view.select([ann[20]])
    repaint(view)
    assert raster.full_renders == renders
    assert 2 <= raster.partial_renders and raster.shapes_drawn - drawn < 40


def test_undo_of_a_vertex_drag_rebuilds_one_item_and_redraws_around_it(setup):
    view, project, ids = setup
    ann = shown(view, project, ids[0], N_DENSE)
    rec = view.shapes.record(ann[-1])
    x, y = rec.polygons[0][0], rec.polygons[0][1]
    view.select([rec.id])
    view.set_zoom(3.0)
    view.centerOn(x, y)
    settle(view)
    drag(view, [(x, y), (x + 4, y + 2), (x + 8, y + 4)])
    view.select([])
    repaint(view)
    raster, built = view.shapes.raster, view.shapes.items_built
    renders, drawn = raster.full_renders, raster.shapes_drawn
    project.undo()
    repaint(view)
    assert view.shapes.record(rec.id).polygons == rec.polygons
    assert view.shapes.items_built - built == 1
    assert raster.full_renders == renders and raster.shapes_drawn - drawn < 40


def test_a_zoom_step_scales_the_picture_and_the_settled_view_redraws_it(setup):
    view, project, ids = setup
    shown(view, project, ids[0], N_DENSE)
    raster = view.shapes.raster
    renders = raster.full_renders
    view.set_zoom(view.zoom * 1.19)
    view.viewport().repaint()
    assert raster.full_renders == renders  # the last picture, scaled
    view.shapes.view_changed(view.sceneRect(), view.zoom)  # what the view calls on a pause
    view.viewport().repaint()
    assert raster.full_renders == renders + 1


def test_the_picture_looks_like_the_shapes_painting_themselves(setup):
    view, project, ids = setup
    # Few shapes: filled and antialiased; many: outlines without antialiasing.
    for image_id, n in ((ids[1], 40), (ids[0], N_DENSE)):
        ann = shown(view, project, image_id, n, seed=image_id)
        dog = project.classes()[1].id
        boxes = [make_annotation_row(image_id, dog, "box", bbox=(30 + 40 * i, 20 + 25 * i, 50, 30))
                 for i in range(8)]  # fmt: skip
        project.add_annotations(boxes)
        view.shapes.set_hover(ann[3])
        view.select([ann[5]])
        view.set_zoom(1.7)
        view.centerOn(300, 250)
        settle(view)
        view.shapes.set_fill_opacity(128)  # a partial redraw follows each of these
        view.shapes.set_hover(ann[7])
        repaint(view)
        diff = np.abs(pixels(view) - items_painting_themselves(view))
        assert view.shapes.raster.full_renders > 0
        assert diff.max() <= 3, (image_id, int(diff.max()), int((diff > 3).sum()))

"""Benchmark the canvas's predictions layer (a script, not a test):
python benchmarks/bench_predictions_layer.py

An image (2000 x 1500) with 500 stored box predictions (scores uniform in 0.05..1) and
40 labels. Measured: moving the score threshold (`PredictionLayer.set_score_threshold`:
the layer's refilter) plus the synchronous repaint of the canvas it causes, over a sweep
of thresholds up and down, beside the refilter alone and a repaint without the layer;
showing the image (reading and matching the predictions); and an IoU change (matching
again from the pairs kept for the image). A last line does the same for an instance
segmenter: the 500 predictions as polygons (12-gons inside their boxes) against polygon
labels, matched on mask IoU as the Evaluation panel matches them.
The goal: a threshold change redraws in under 16 ms. Headless (offscreen) unless a
display is set; --quick runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from canvas_helpers import make_project  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.core.project import make_annotation_row  # noqa: E402
from studio.ui.canvas import CanvasView  # noqa: E402

W, H, N_PRED, N_LABELS = 2000, 1500, 500, 40


def _polygon(x: float, y: float, w: float, h: float, rng: np.random.Generator) -> list[float]:
    """A 12-gon inside the (x, y, w, h) box, radii 60-100 % of the half sides."""
    pts = []
    for k in range(12):
        a, r = 2 * math.pi * k / 12, rng.uniform(0.6, 1.0)
        pts += [x + w / 2 * (1 + r * math.cos(a)), y + h / 2 * (1 + r * math.sin(a))]
    return pts


def _fill(project, image_id: int, masks: bool) -> int:
    """Labels and 500 predictions on one image: boxes, or (`masks`) polygon labels and
    polygon predictions inside the same kind of boxes. Returns the run id."""
    rng = np.random.default_rng(0)
    cls = [c.id for c in project.classes()]
    labels = []
    for _ in range(N_LABELS):
        x, y = rng.uniform(0, W - 120), rng.uniform(0, H - 120)
        w, h = rng.uniform(10, 120, 2)
        c = int(rng.choice(cls))
        if masks:
            poly = [_polygon(x, y, w, h, rng)]
            labels.append(make_annotation_row(image_id, c, "polygon", polygons=poly))
        else:
            labels.append(make_annotation_row(image_id, c, "box", bbox=(x, y, w, h)))
    project.add_annotations(labels)
    run = project.create_run("bench", "none", "instance_segmentation" if masks else "detection", {})
    preds = []
    for _ in range(N_PRED):
        x, y = rng.uniform(0, W - 120), rng.uniform(0, H - 120)
        w, h = rng.uniform(10, 120, 2)
        preds.append({"image_id": image_id, "class_id": int(rng.choice(cls)),
                      "bbox": (x, y, w, h), "score": float(rng.uniform(0.05, 1.0))})  # fmt: skip
        if masks:
            preds[-1].update(kind="polygon", polygons=[_polygon(x, y, w, h, rng)])
    project.replace_predictions(run.id, preds)
    return run.id


def _timed(fn, n: int) -> float:
    """Median milliseconds of `n` calls of fn(k)."""
    times = []
    for k in range(n):
        t = time.perf_counter()
        fn(k)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _show_and_iou(canvas, layer, image_id: int, n: int) -> tuple[float, float]:
    """(show image, IoU change) medians in ms for the layer's current run."""
    show = _timed(lambda _k: canvas.show_image(image_id), n)
    iou = _timed(lambda k: layer.set_iou(0.5 + 0.05 * (k % 2 + 1)), 4 * n)
    layer.set_iou(0.5)
    return show, iou


def _sweep_repaint(canvas, layer, sweep: list[float], rounds: int) -> list[float]:
    """Milliseconds of each threshold change plus the synchronous repaint it causes."""
    times = []
    for _ in range(rounds):
        for score in sweep:
            t = time.perf_counter()
            layer.set_score_threshold(score)
            canvas.viewport().repaint()  # the paint the change causes, synchronously
            times.append((time.perf_counter() - t) * 1000)
    return times


def _repaint_without(canvas, layer, n: int) -> float:
    """Median repaint in ms with the layer hidden: what the image and labels cost alone."""
    layer.set_visible(False)
    base = _timed(lambda _k: canvas.viewport().repaint(), n)
    layer.set_visible(True)
    return base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    n = 3 if args.quick else 10
    sweep = [i / 100 for i in range(5, 100, 3)]
    sweep += sweep[::-1]
    with tempfile.TemporaryDirectory() as tmp:
        # The box scenario on one image, the mask one on another (their labels differ).
        project, ids = make_project(Path(tmp), [(W, H), (W, H)])
        box_run, mask_run = _fill(project, ids[0], False), _fill(project, ids[1], True)
        canvas = CanvasView()
        canvas.resize(1400, 900)
        canvas.show()
        canvas.set_project(project)
        layer = canvas.layer("predictions")
        layer.set_run(box_run)
        show, iou = _show_and_iou(canvas, layer, ids[0], n)
        app.processEvents()
        times = _sweep_repaint(canvas, layer, sweep, 1 if args.quick else 5)
        base = _repaint_without(canvas, layer, len(times))
        refilter = _timed(lambda k: layer.set_score_threshold(sweep[k]), len(sweep))
        layer.set_run(mask_run)
        m_show, m_iou = _show_and_iou(canvas, layer, ids[1], n)
        m_kind = layer.iou_type()
        m_times = _sweep_repaint(canvas, layer, sweep, 1)
        canvas.shutdown()
        project.close()
    times.sort()
    print(f"{N_PRED} predictions, {N_LABELS} labels on a {W}x{H} image")
    print(f"threshold change + repaint: median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(0.95 * len(times)) - 1]:.1f} ms, max {times[-1]:.1f} ms "
          f"over {len(times)} changes (goal < 16 ms: ratio "
          f"{statistics.median(times) / 16:.2f})")  # fmt: skip
    print(
        f"of which the layer's refilter alone: median {refilter:.1f} ms; "
        f"a repaint without the layer (image + labels): median {base:.1f} ms"
    )
    print(
        f"show image (read + match + items): median {show:.1f} ms; "
        f"IoU change (match again, pairs kept): median {iou:.2f} ms"
    )
    print(
        f"masks ({m_kind} IoU, polygon predictions and labels): show image median "
        f"{m_show:.1f} ms, IoU change median {m_iou:.2f} ms, threshold change + repaint "
        f"median {statistics.median(m_times):.1f} ms"
    )


if __name__ == "__main__":
    main()

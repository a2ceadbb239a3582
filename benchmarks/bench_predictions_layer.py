"""Benchmark the canvas's predictions layer (a script, not a test):
python benchmarks/bench_predictions_layer.py

An image (2000 x 1500) with 500 stored box predictions (scores uniform in 0.05..1) and
40 labels. Measured: moving the score threshold (`PredictionLayer.set_score_threshold`:
the layer's refilter) plus the synchronous repaint of the canvas it causes, over a sweep
of thresholds up and down, beside the refilter alone and a repaint without the layer; and showing the image (reading and matching the predictions).
The goal: a threshold change redraws in under 16 ms. Headless (offscreen) unless a
display is set; --quick runs fewer repetitions.
"""

from __future__ import annotations

import argparse
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


def _fill(project, image_id: int) -> int:
    rng = np.random.default_rng(0)
    cls = [c.id for c in project.classes()]
    labels = []
    for _ in range(N_LABELS):
        x, y = rng.uniform(0, W - 120), rng.uniform(0, H - 120)
        w, h = rng.uniform(10, 120, 2)
        labels.append(make_annotation_row(image_id, int(rng.choice(cls)), "box", bbox=(x, y, w, h)))
    project.add_annotations(labels)
    run = project.create_run("bench", "none", "detection", {})
    preds = []
    for _ in range(N_PRED):
        x, y = rng.uniform(0, W - 120), rng.uniform(0, H - 120)
        w, h = rng.uniform(10, 120, 2)
        preds.append({"image_id": image_id, "class_id": int(rng.choice(cls)),
                      "bbox": (x, y, w, h), "score": float(rng.uniform(0.05, 1.0))})  # fmt: skip
    project.replace_predictions(run.id, preds)
    return run.id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        project, ids = make_project(Path(tmp), [(W, H)])
        run_id = _fill(project, ids[0])
        canvas = CanvasView()
        canvas.resize(1400, 900)
        canvas.show()
        canvas.set_project(project)
        layer = canvas.layer("predictions")
        layer.set_run(run_id)
        shows = []
        for _ in range(3 if args.quick else 10):
            t = time.perf_counter()
            canvas.show_image(ids[0])
            shows.append((time.perf_counter() - t) * 1000)
        app.processEvents()
        sweep = [i / 100 for i in range(5, 100, 3)]
        sweep += sweep[::-1]
        times = []
        for _ in range(1 if args.quick else 5):
            for score in sweep:
                t = time.perf_counter()
                layer.set_score_threshold(score)
                canvas.viewport().repaint()  # the paint the change causes, synchronously
                times.append((time.perf_counter() - t) * 1000)
        # The same repaints without the layer: what the image and labels cost alone.
        layer.set_visible(False)
        base = []
        for _ in range(len(times)):
            t = time.perf_counter()
            canvas.viewport().repaint()
            base.append((time.perf_counter() - t) * 1000)
        layer.set_visible(True)
        refilter = []
        for score in sweep:
            t = time.perf_counter()
            layer.set_score_threshold(score)
            refilter.append((time.perf_counter() - t) * 1000)
        canvas.shutdown()
        project.close()
    times.sort()
    print(f"{N_PRED} predictions, {N_LABELS} labels on a {W}x{H} image")
    print(f"threshold change + repaint: median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(0.95 * len(times)) - 1]:.1f} ms, max {times[-1]:.1f} ms "
          f"over {len(times)} changes (goal < 16 ms: ratio "
          f"{statistics.median(times) / 16:.2f})")  # fmt: skip
    print(f"of which the layer's refilter alone: median {statistics.median(refilter):.1f} ms; "
          f"a repaint without the layer (image + labels): median "
          f"{statistics.median(base):.1f} ms")  # fmt: skip
    print(f"show image (read + match + items): median {statistics.median(shows):.1f} ms")


if __name__ == "__main__":
    main()

"""Make the README's pictures of the Analysis dock: an activation map on the canvas and
the zoom-scale view, at a real window size (1600x1000).

    QT_QPA_PLATFORM=offscreen python docs/make_analysis_screenshots.py [--project DIR] [--out docs]

Builds (once, in DIR; default a temporary folder) the planted-square project of the
activation-map tests: 24 noise images with one bright square each and a tiny Faster
R-CNN trained on them for a few seconds on the CPU (run 1). Nothing is downloaded. Then
it opens the window offscreen, opens the Analysis panel (View > Analysis), measures the
zoom scales and saves docs/screenshot-analysis.png (the dock), then shows the EigenCAM
of the squares' image and saves docs/screenshot-cam.png (the window).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tests.ml.conftest  # noqa: E402, F401 - registers the tiny test models
from studio.ui.app import screenshot  # noqa: E402
from tests.ml.test_cam import planted_run  # noqa: E402

SIZE = QSize(1600, 1000)
DOCK_WIDTH = 640


def wait(condition: Callable[[], bool], seconds: float = 120.0) -> None:
    """Process events until `condition()` holds; RuntimeError after `seconds`."""
    app = QApplication.instance()
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError("timed out waiting for the analysis")
        app.processEvents()
        time.sleep(0.02)


def pictures(analysis_png: Path) -> Callable[[object], None]:
    """What runs in the open window before the grab: the zoom view's picture, then the
    activation map shown for the window's picture."""

    def before_grab(window) -> None:
        for other in (window.class_dock, window.objects):
            other.hide()
        dock = window.analysis_dock
        window.actions["view.analysis"].trigger()  # View > Analysis, as a user opens it
        window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
        zoom = dock.zoom
        zoom.set_model("run", 1)
        zoom.measured.device = "cpu"
        zoom.analyse()
        wait(lambda: zoom.result is not None and not zoom.busy)
        zoom.measured.measure()
        wait(lambda: not zoom.measured.busy)
        QApplication.instance().processEvents()
        assert dock.grab().save(str(analysis_png))
        print(analysis_png)
        dock.tabs.setCurrentWidget(dock.cam)
        wait(lambda: dock.cam.layers is not None)
        # The stride-4 stage: the finest map this toy model has, peaked on the square.
        dock.cam.select_layer("backbone.body.1")
        dock.show_image(window.current_image_id())
        layer = window.canvas.layer("heatmap")
        wait(lambda: layer.has_map and dock.cam.result is not None
             and dock.cam.result.ask.layer == "backbone.body.1")  # fmt: skip

    return before_grab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="where to build the project (kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    base = args.project or Path(tempfile.mkdtemp(prefix="studio-analysis-shots-"))
    base.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = planted_run(base)
    out = screenshot(folder, args.out / "screenshot-cam.png", SIZE, image_id=1,
                     max_bytes=900_000, before_grab=pictures(args.out / "screenshot-analysis.png"))  # fmt: skip
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fixtures for the window tests: offscreen Qt, user settings in a temporary folder, a
small demo-like project (real image files, three classes, some shapes, one corrupt
file), and a main window showing it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

import tests.ml.conftest  # noqa: E402, F401 - the tiny models' plugin on STUDIO_PLUGIN_PATH
from studio.core.project import Project  # noqa: E402
from studio.ui.common.responsiveness import tune_gc  # noqa: E402

# (Before any window: the first lookup of a model loads the plugins, once per process, so
# a window opened first would leave the tiny models unknown to the tests that train them.)
# The window's process-wide settings, as studio.ui.app.run_app applies them, so that the
# responsiveness the tests measure is the one users get.
tune_gc()

N_IMAGES = 8
CLASSES = ("cat", "dog", "bird")


@pytest.fixture(autouse=True, scope="session")
def _user_settings(tmp_path_factory):
    """Keep tests away from the real user's shortcuts, recent projects and geometry."""
    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def _fresh_settings(_user_settings):
    from studio.ui.common.settings import settings

    settings().clear()
    yield


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """Background work (run_task) of one test ends before the next test starts, and the
    test's cyclic garbage (closed windows: widgets held by lambdas connected to their
    signals) is collected here, on the GUI thread. Left to Python's collector, a worker
    thread that crossed its threshold finalised another test's Qt objects off the GUI
    thread: the process segfaulted once and deadlocked once. What survives is frozen,
    so each collection only scans what the next test creates."""
    import gc

    from PySide6.QtCore import QCoreApplication, QThreadPool

    yield
    pool = QThreadPool.globalInstance()
    pool.waitForDone(30_000)
    QCoreApplication.processEvents()  # deferred deletes and timers of the closed window
    pool.waitForDone(30_000)
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def small_demo_template(tmp_path_factory) -> Path:
    """The demo dataset, small (12 images of 320x240, labelled and marked done): copy it
    before changing it."""
    from studio.core.demo import create_demo_project

    folder = tmp_path_factory.mktemp("small_demo_template") / "demo"
    create_demo_project(folder, n_images=12, seed=0, image_size=(320, 240)).close()
    return folder


def _write_images(folder: Path, n: int, seed: int = 0, size=(64, 48)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        p = folder / f"img_{i:03d}.png"
        Image.fromarray(pixels).save(p)
        paths.append(p)
    return paths


def _make_project(folder: Path, n_images: int = N_IMAGES, corrupt: bool = True) -> Path:
    """A project like the demo, small: images under images/, the first three with shapes
    (status "done" for the first), a corrupt file last (it was fine when imported)."""
    from studio.core.importing import import_images

    project = Project.create(folder)
    paths = _write_images(project.path / "images", n_images)
    if corrupt:
        paths.append(_write_images(project.path / "images" / "zz", 1, seed=9)[0])
    report = import_images(project, [project.path / "images"])
    assert report.added_images == len(paths), report.skipped
    ids = {c: project.add_class(c) for c in CLASSES}
    images = project.images()
    project.add_annotation(images[0].id, ids["cat"], "box", bbox=(4, 4, 20, 10))
    project.add_annotation(images[0].id, ids["dog"], "box", bbox=(30, 20, 10, 10))
    project.add_annotation(images[1].id, ids["dog"], "box", bbox=(5, 5, 5, 5))
    project.add_annotation(images[2].id, ids["bird"], "polygon", polygons=[[1, 1, 20, 1, 10, 15]])
    project.set_status([images[0].id], "done")
    project.set_split([images[1].id], "val")
    project.undo_stack.clear()
    project.close()
    if corrupt:
        paths[-1].write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG any more" * 3)
    return folder


@pytest.fixture
def window_write_images():
    return _write_images


@pytest.fixture
def window_make_project():
    return _make_project


@pytest.fixture
def project_dir(tmp_path) -> Path:
    return _make_project(tmp_path / "proj")


@pytest.fixture
def window(qtbot, project_dir):
    from studio.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    w.open_project(Project.open(project_dir))
    w.activateWindow()
    qtbot.waitExposed(w)
    yield w
    w.close()
    w.browser.thumbs.wait(5000)


@pytest.fixture
def setup(qtbot, tmp_path):
    """A canvas showing the first of two images (800x600, 640x480) of a new project;
    yields (view, project, image ids). Used by the canvas test modules."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from canvas_helpers import make_project, wait_until

    from studio.ui.canvas import CanvasView

    project, ids = make_project(tmp_path, [(800, 600), (640, 480)])
    view = CanvasView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    view.set_project(project)
    view.show_image(ids[0])
    wait_until(lambda: view.image_layer.has_pixels)
    yield view, project, ids
    view.shutdown()
    project.close()

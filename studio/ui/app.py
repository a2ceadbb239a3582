"""Starting the window: `studio`, `studio DIR`, `studio --demo`; and a screenshot helper.

`run_app(None)` shows the start page (recent projects, New, Open, Open demo);
`run_app(DIR)` opens DIR; `run_app(None, demo=True)` creates the demo project in the
user's data folder on first use and opens it. A project opens on the image the user
last worked on (project setting "last_image"), else on its first image.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QBuffer, QCoreApplication, QIODevice, QSize, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from studio.ui.common.responsiveness import freeze_startup_objects, tune_gc
from studio.ui.main_window import MainWindow
from studio.ui.project.transfers import demo_dir
from studio.ui.theme import SystemThemeFollower, Theme, apply_theme, saved_theme


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName("studio")
        QCoreApplication.setApplicationName("studio")
        app = QApplication(sys.argv[:1])
    return app  # type: ignore[return-value]


def run_app(project_dir: Path | None, demo: bool = False) -> int:
    """Open the window and run the event loop; returns the exit status."""
    tune_gc()
    app = _application()
    apply_theme(saved_theme())
    SystemThemeFollower(app)  # parented to the app: lives as long as it
    window = MainWindow()
    window.show()
    if project_dir is not None:
        # Start page first, so a folder that is not a project says why and stays usable.
        window.open_path(Path(project_dir))
    elif demo:
        window.transfers.open_demo()
    QTimer.singleShot(0, freeze_startup_objects)
    return app.exec()


def screenshot(
    project_dir: Path | None,
    out_png: Path,
    size: QSize = QSize(1400, 900),
    image_id: int | None = None,
    max_bytes: int = 500_000,
    theme: Theme | None = None,
    before_grab: Callable[[MainWindow], object] | None = None,
) -> Path:
    """Save a picture of the window on `project_dir` (default: the demo project, created
    if needed) showing an image with shapes, in `theme` (default: the user's);
    `before_grab(window)` runs just before the picture is taken. For the README; runs
    offscreen too."""
    from studio.core.demo import create_demo_project
    from studio.core.project import DB_NAME, Project

    app = _application()
    folder = Path(project_dir) if project_dir is not None else demo_dir()
    if not (folder / DB_NAME).is_file():
        create_demo_project(folder).close()
    apply_theme(theme if theme is not None else saved_theme())
    window = MainWindow(restore=False)
    window.resize(size)
    window.show()
    window.open_project(Project.open(folder))
    project = window.project
    assert project is not None
    if image_id is None:  # the first image with a few shapes of several classes
        anns = project.annotations()
        per_image: dict[int, set[int]] = {}
        for a in anns:
            per_image.setdefault(a.image_id, set()).add(a.class_id)
        ranked = sorted(per_image, key=lambda i: (-min(len(per_image[i]), 3), i))
        image_id = ranked[0] if ranked else None
    if image_id is not None:
        window.show_image(image_id)
    _settle(app, window)
    window.canvas.fit()
    if before_grab is not None:  # e.g. select a shape
        before_grab(window)
    _settle(app, window)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    _save_png(window.grab().toImage(), out_png, max_bytes)
    window.close()
    return out_png


def _save_png(image: QImage, out_png: Path, max_bytes: int) -> None:
    """PNG, reduced to a 256-colour palette when the full-colour file is too big for a
    README (textured photos compress poorly; the palette keeps the UI crisp)."""
    import io

    from PIL import Image

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    data = bytes(buffer.data())
    if len(data) > max_bytes:
        pil = Image.open(io.BytesIO(data)).convert("RGB")
        for colors in (256, 128, 64):
            out = io.BytesIO()
            pil.quantize(colors=colors, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
            data = out.getvalue()
            if len(data) <= max_bytes:
                break
    out_png.write_bytes(data)


def _settle(app: QApplication, window: MainWindow, ms: int = 1500) -> None:
    """Let workers deliver: the shown image, thumbnails, counts."""
    import time

    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        window.browser.thumbs.wait(50)
        time.sleep(0.01)
    app.processEvents()


__all__ = ["run_app", "screenshot"]

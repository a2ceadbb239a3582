"""Make the README's picture of the training panel mid-run, at 1920x1080.

    QT_QPA_PLATFORM=offscreen python docs/make_training_screenshot.py [--project DIR] [--out docs]
        [--budget MINUTES] [--at SECONDS]

Creates the demo project (in DIR; default a temporary folder), opens the window offscreen,
opens the training panel (Ctrl+T) and presses its one-click Train as a user would, with
the time budget set in the panel to MINUTES (default 4). It saves
docs/screenshot-training.png once the run has trained for SECONDS (default 150): the
sentence saying what one click chose and why, the progress bar, the live curves and at
least one validation point. Nothing is downloaded; the run is stopped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QApplication

from studio.ui.app import screenshot
from studio.ui.training.dock import TrainPanel

SIZE = QSize(1920, 1080)
PANEL_HEIGHT = 640


def wait(condition: Callable[[], bool], seconds: float) -> None:
    """Process events until `condition()` holds; RuntimeError after `seconds`."""
    app = QApplication.instance()
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError("timed out waiting for the training run")
        app.processEvents()
        time.sleep(0.05)


def mid_run(budget_min: float, at_s: float) -> Callable[[object], None]:
    """What runs in the open window before the grab: Train pressed, then a wait until the
    run has trained for `at_s` seconds and validated at least once."""

    def before_grab(window) -> None:
        window.show_training()
        panel = window.findChild(TrainPanel)
        window.resizeDocks([window.train_dock], [PANEL_HEIGHT], Qt.Orientation.Vertical)
        wait(lambda: panel.form.isEnabled(), 120)  # the recipe is known: settings take edits
        panel.form.budget.setValue(budget_min)
        panel.train_button.click()
        session = panel.session
        wait(lambda: session.run is not None and session.run.started is not None, 300)
        started = time.monotonic()

        def validated() -> bool:
            return panel.live is not None and bool(panel.live.curves.epochs)

        wait(lambda: time.monotonic() - started >= at_s and validated(), 600)
        window.status_bar.clearMessage()

    return before_grab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="where to create the demo (kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--budget", type=float, default=4.0, help="minutes (default 4)")
    parser.add_argument("--at", type=float, default=150.0, help="seconds trained (default 150)")
    args = parser.parse_args(argv)
    folder = args.project or Path(tempfile.mkdtemp(prefix="studio-training-shot-")) / "demo"
    out = screenshot(folder, args.out / "screenshot-training.png", SIZE,
                     max_bytes=600_000, before_grab=mid_run(args.budget, args.at))  # fmt: skip
    print(out)
    return 0


if __name__ == "__main__":  # the training process is spawned: it imports this module
    raise SystemExit(main())

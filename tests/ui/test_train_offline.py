"""The window's Train, offline, on the demo with no options but a short time budget: the
real spawned training process trains the from-scratch CPU detector, the run finishes
within its budget with a best checkpoint, and the panel says why it trains from scratch."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.core.kinds import RunStatus
from studio.core.project import Project
from studio.ml.models.weights import set_weights_dirs
from studio.ml.run.recipe import CPU_DETECTOR
from studio.ml.train.checkpoint import BEST, LAST, load_checkpoint
from studio.ml.train.device import auto_device

BUDGET_TEXT, BUDGET_S = "0.33", 20.0  # typed into the panel's "time budget" (minutes)
RUN_TIMEOUT_MS = 300_000  # generous: a spawned process imports torch on a busy machine


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No pretrained file anywhere (an empty weights folder and torch cache); the spawned
    training process inherits the environment."""
    if auto_device() != "cpu":
        pytest.skip("one click trains the CPU detector only without a GPU")
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("STUDIO_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    set_weights_dirs([])
    yield
    set_weights_dirs([])


@pytest.fixture
def demo_window(qtbot, tmp_path, offline):
    from studio.core.demo import create_demo_project
    from studio.ui.main_window import MainWindow

    create_demo_project(tmp_path / "demo", n_images=40, seed=0, image_size=(256, 192)).close()
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1300, 900)
    w.show()
    w.open_project(Project.open(tmp_path / "demo"))
    qtbot.waitExposed(w)
    yield w
    w.close()
    w.browser.thumbs.wait(5000)


@pytest.mark.slow
def test_train_in_the_window_offline_with_no_options(qtbot, demo_window, tmp_path):
    w = demo_window
    w.actions["view.training"].trigger()  # View > Training, as a user opens the dock
    panel = w.train_dock
    assert panel.isVisible()
    qtbot.waitUntil(lambda: panel.ml is not None, timeout=60_000)  # imports torch
    assert panel.ml.auto_model == CPU_DETECTOR
    # The one setting a user changes here: a short time budget, typed in Advanced.
    qtbot.mouseClick(panel.advanced_button, Qt.MouseButton.LeftButton)
    budget = panel.form.budget
    budget.selectAll()
    qtbot.keyClicks(budget, BUDGET_TEXT)
    qtbot.keyClick(budget, Qt.Key.Key_Return)
    assert panel.form.values()["time_budget"] == BUDGET_S

    filled: list[int] = []  # the bar fills with the budget used (it ran without an end)
    panel.progress.valueChanged.connect(filled.append)
    with qtbot.waitSignal(panel.run_ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    run_id, status = ended.args
    assert status == RunStatus.FINISHED, panel.notice_texts()
    assert panel.progress.maximum() > 0 and filled == sorted(filled)
    assert max(filled) >= 0.5 * panel.progress.maximum(), filled

    with Project.open(tmp_path / "demo") as p:
        run = p.run(run_id)
    assert (run.status, run.model) == (RunStatus.FINISHED, CPU_DETECTOR)
    assert (run.dir / BEST).is_file()
    last = load_checkpoint(run.dir / LAST)
    assert last["config"]["time_budget"] == BUDGET_S
    assert last["elapsed"] <= 1.1 * BUDGET_S, last["elapsed"]
    # The panel says why it trained from scratch, and what a weights file would change.
    shown = " ".join(panel.choice.texts())
    assert "learn from scratch" in shown and "random init" in shown, shown
    assert "for 20 s, evaluation included" in shown, shown  # the budget typed, at once
    assert f"Run {run_id} finished" in " ".join(panel.notice_texts())

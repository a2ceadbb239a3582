"""The Advanced section's weights folder: typed or browsed, checked as it is typed, saved in
the project, and it changes what one click trains (the from-scratch CSP detector without
an ImageNet file, a pretrained MobileNet with one) and the line that says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import QFileDialog

from studio.core.project import Project
from studio.ml.models.weights import set_weights_dirs
from studio.ml.run.process import WEIGHTS_DIR_SETTING
from studio.ml.run.recipe import CPU_DETECTOR, CPU_PRETRAINED_DETECTOR
from studio.ml.train.device import auto_device
from studio.ui.training.dock import TrainPanel
from studio.ui.training.settings_form import AdvancedForm
from studio.ui.training.weights_folder import WEIGHTS_DIR_KEY, WeightsFolderField

V3_FILE = "mobilenet_v3_large-5c1a4163.pth"  # torchvision's published IMAGENET1K_V1 name


@pytest.fixture(scope="module")
def _template(tmp_path_factory) -> Path:
    from studio.core.demo import create_demo_project

    folder = tmp_path_factory.mktemp("weights_folder") / "demo"
    create_demo_project(folder, n_images=8, seed=0, image_size=(128, 96)).close()
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """No pretrained file anywhere: an empty $STUDIO_WEIGHTS_DIR and torch cache. The
    folders a project set are process-wide: none before, none after."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("STUDIO_WEIGHTS_DIR", str(empty))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    set_weights_dirs([])
    yield empty
    set_weights_dirs([])


@pytest.fixture
def project(_template, tmp_path, offline):
    shutil.copytree(_template, tmp_path / "project")
    p = Project.open(tmp_path / "project")
    yield p
    p.close()


@pytest.fixture
def panel(qtbot, project):
    if auto_device() != "cpu":
        pytest.skip("one click trains the CPU detectors only without a GPU")
    w = TrainPanel()
    qtbot.addWidget(w)
    w.resize(1300, 720)
    w.show()
    w.set_project(project)
    qtbot.waitUntil(lambda: w.ml is not None, timeout=60_000)  # imports torch once
    yield w
    w.shutdown()
    w.set_project(None)
    QThreadPool.globalInstance().waitForDone(10_000)


def type_folder(qtbot, field: WeightsFolderField, text: str) -> None:
    """Replace the field's text as a user does, then press Enter."""
    field.edit.selectAll()
    qtbot.keyClick(field.edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(field.edit, text)
    qtbot.keyClick(field.edit, Qt.Key.Key_Return)


def auto_is(panel: TrainPanel, model: str) -> bool:
    return panel.ml is not None and panel.ml.auto_model == model


def test_the_setting_is_the_one_the_runs_read():
    assert WEIGHTS_DIR_KEY == WEIGHTS_DIR_SETTING


def test_a_backbone_file_in_the_folder_changes_what_one_click_trains(
    qtbot, panel, project, tmp_path
):
    field = panel.form.weights_folder
    assert field.edit.text() == "" and auto_is(panel, CPU_DETECTOR)
    assert panel.form.model.itemText(0) == f"Auto ({CPU_DETECTOR})"
    qtbot.waitUntil(lambda: panel.choice.note.isVisibleTo(panel), timeout=30_000)
    assert panel.choice.why.text().startswith(f"Why: {CPU_DETECTOR} (a light detector")
    assert "learn from scratch" in panel.choice.why.text()
    assert "random init" in panel.choice.note.text()
    assert panel.choice.why.toolTip() == panel.choice.note.text().removeprefix("Note: ")
    assert f"trains <b>{CPU_DETECTOR}</b> from scratch" in panel.recipe_label.text()

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / V3_FILE).write_bytes(b"")  # found by its name; not read to choose
    type_folder(qtbot, field, str(folder))
    assert project.get_setting(WEIGHTS_DIR_SETTING) == str(folder)
    qtbot.waitUntil(lambda: auto_is(panel, CPU_PRETRAINED_DETECTOR), timeout=30_000)
    assert panel.form.model.itemText(0) == f"Auto ({CPU_PRETRAINED_DETECTOR})"
    assert panel.form.values()["batch_size"] == 8  # the recipe of the chosen model
    qtbot.waitUntil(
        lambda: panel.choice.why.text().startswith(f"Why: {CPU_PRETRAINED_DETECTOR}"),
        timeout=30_000,
    )
    assert not panel.choice.note.isVisibleTo(panel) and panel.choice.why.toolTip() == ""
    assert f"fine-tunes <b>{CPU_PRETRAINED_DETECTOR}</b>" in panel.recipe_label.text()
    # The size comes from the objects (the Why line gives it), not the model's default.
    assert "the input size your objects need" in panel.recipe_label.text()

    # Emptied, the project has no folder again: back to learning from scratch.
    type_folder(qtbot, field, "")
    assert project.get_setting(WEIGHTS_DIR_SETTING) is None
    qtbot.waitUntil(lambda: auto_is(panel, CPU_DETECTOR), timeout=30_000)
    assert panel.form.values()["batch_size"] == 8
    qtbot.waitUntil(lambda: panel.choice.note.isVisibleTo(panel), timeout=30_000)


def test_browse_saves_the_folder_and_a_reopened_project_shows_it(
    qtbot, panel, project, tmp_path, monkeypatch
):
    folder = tmp_path / "lab weights"
    folder.mkdir()
    (folder / "mobilenet_v2-b0353104.pth").write_bytes(b"")
    asked = []

    def pick(parent, caption, start):
        asked.append(caption)
        return str(folder)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(pick))
    field = panel.form.weights_folder
    qtbot.mouseClick(field.browse, Qt.MouseButton.LeftButton)
    assert asked == ["Weights folder"] and field.edit.text() == str(folder)
    assert project.get_setting(WEIGHTS_DIR_SETTING) == str(folder)
    qtbot.waitUntil(lambda: auto_is(panel, "composable_mobilenet_v2_pan_fcos"), timeout=30_000)
    panel.set_project(None)
    assert field.edit.text() == ""
    panel.set_project(project)
    assert field.edit.text() == str(folder)
    qtbot.waitUntil(lambda: auto_is(panel, "composable_mobilenet_v2_pan_fcos"), timeout=30_000)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/no/such/weights/folder", "/no/such/weights/folder: no such folder"),
        ("relative/folder", "relative/folder: give the folder's full path"),
        ("FILE", "FILE: a file, not a folder"),
    ],
)
def test_a_path_that_is_no_folder_is_red_and_not_saved(qtbot, tmp_path, text, problem):
    file = tmp_path / "mobilenet_v2-b0353104.pth"
    file.write_bytes(b"")
    text, problem = text.replace("FILE", str(file)), problem.replace("FILE", str(file))
    field = WeightsFolderField()
    qtbot.addWidget(field)
    field.set_folder(str(tmp_path))
    saved = []
    field.folder_changed.connect(saved.append)
    type_folder(qtbot, field, text)
    assert saved == [] and field.folder == str(tmp_path)  # the project keeps its folder
    assert field.problem == problem
    assert "#ffd6d6" in field.edit.styleSheet()  # red
    assert field.edit.toolTip().startswith(f"{problem}: not saved.")
    type_folder(qtbot, field, str(tmp_path / ""))  # fixed: no longer red, nothing new
    assert field.edit.styleSheet() == "" and saved == []


def test_the_time_budget_takes_fractions_of_a_minute(qtbot):
    form = AdvancedForm()
    qtbot.addWidget(form)
    form.budget.selectAll()
    qtbot.keyClicks(form.budget, "0.33")
    assert form.values()["time_budget"] == 20.0  # 0.33 min, to the second
    form._set_value("time_budget", 600.0)
    assert form.budget.text() == "10.00 min" and form.values()["time_budget"] == 600.0
    form._set_value("time_budget", None)
    assert form.budget.text() == "none" and form.values()["time_budget"] is None
    form.shutdown()

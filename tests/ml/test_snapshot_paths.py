"""A run's dataset keeps finding its images when the project is moved or copied: a
run's dataset.json used to hold absolute paths, so a moved project's eval, resume and
zoom analysis found no images, and a copy silently read the original's pixels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.core.demo import create_demo_project
from studio.core.project import Project
from studio.ml.data.snapshot import SNAPSHOT_NAME, DataReport, Snapshot, write_snapshot


@pytest.fixture
def project_with_run(tmp_path: Path) -> Path:
    folder = tmp_path / "orig"
    create_demo_project(folder, n_images=6).close()
    with Project.open(folder) as p:
        run_dir = p.runs_dir / "0001-x"
        run_dir.mkdir(parents=True)
        write_snapshot(p, run_dir / SNAPSHOT_NAME)
    return folder


def _paths(folder: Path) -> list[str]:
    snap = Snapshot.load(folder / "runs" / "0001-x" / SNAPSHOT_NAME)
    report = DataReport()
    samples = snap.samples(list(snap.images), "detection", report, training=False)
    assert report.counts["missing_files"] == 0
    return [s.path for s in samples]


def test_a_moved_project_finds_its_run_images(project_with_run: Path, tmp_path: Path) -> None:
    moved = project_with_run.rename(tmp_path / "moved")
    paths = _paths(moved)
    assert len(paths) == 6 and all(p.startswith(str(moved)) for p in paths)


def test_a_copied_project_reads_its_own_images_not_the_originals(
    project_with_run: Path, tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(project_with_run, tmp_path / "copy"))
    assert all(p.startswith(str(copy)) for p in _paths(copy))


def test_a_snapshot_written_with_absolute_paths_follows_a_move(
    project_with_run: Path, tmp_path: Path
) -> None:
    """Runs made before: absolute file names and no record of the folder they were
    written in; those inside the project follow it."""
    f = project_with_run / "runs" / "0001-x" / SNAPSHOT_NAME
    data = json.loads(f.read_text())
    for im in data["images"]:
        im["file_name"] = str(project_with_run / im["file_name"])
    del data["studio_root"]
    f.write_text(json.dumps(data))
    moved = project_with_run.rename(tmp_path / "moved")
    assert all(p.startswith(str(moved)) for p in _paths(moved))


def test_missing_images_are_named_when_nothing_is_left(project_with_run: Path) -> None:
    shutil.rmtree(project_with_run / "images")
    snap = Snapshot.load(project_with_run / "runs" / "0001-x" / SNAPSHOT_NAME)
    report = DataReport()
    assert snap.samples(list(snap.images), "detection", report, training=False) == []
    note = report.missing_note()
    assert "6 of its image files are missing" in note
    assert str(project_with_run / "images") in note  # the first one, by its path


def test_unreviewed_pre_labels_are_no_ground_truth(tmp_path: Path) -> None:
    """Shapes a model pre-labelled, on an image still waiting for review, scored the
    model against its own output (AP50 0.02 became 0.15). Reviewed, they count."""
    from studio.core.kinds import Source

    create_demo_project(tmp_path / "p", n_images=4).close()
    with Project.open(tmp_path / "p") as p:
        im = p.images()[0]
        cid = p.classes()[0].id
        pre = p.add_annotation(im.id, cid, "box", bbox=(1, 1, 9, 9), source=Source.PREDICTED)
        p.set_status([im.id], "needs_review")
        data = p.write_coco_snapshot(tmp_path / "d.json")
        assert pre not in {a["id"] for a in data["annotations"]}
        assert any(a["image_id"] == im.id for a in data["annotations"])  # its own labels stay
        p.set_status([im.id], "done")  # reviewed
        data = p.write_coco_snapshot(tmp_path / "d.json")
        assert pre in {a["id"] for a in data["annotations"]}

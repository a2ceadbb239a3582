"""Annotation imports that name images which are not there: found by name among the
project's images, else an error naming the image, or with skip_missing (`studio import
--skip-missing`) the rest imported in one transaction and the missing listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.errors import MissingImageError
from studio.core.importing import import_annotations, import_images
from studio.core.project import Project


def _labelme(folder: Path, stem: str, image: str, label: str = "car") -> Path:
    doc = {
        "shapes": [{"label": label, "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
        "imagePath": image, "imageHeight": 30, "imageWidth": 40,
    }  # fmt: skip
    f = folder / f"{stem}.json"
    f.write_text(json.dumps(doc))
    return f


@pytest.fixture
def half_there(tmp_path: Path, make_jpeg) -> Path:
    """labels/: a.json (its image beside it), b.json and c.json (images nowhere)."""
    labels = tmp_path / "labels"
    labels.mkdir()
    make_jpeg(labels / "a.jpg", 40, 30)
    _labelme(labels, "a", "a.jpg")
    _labelme(labels, "b", "b.jpg", "bus")
    _labelme(labels, "c", "c.jpg")
    return labels


def test_missing_image_fails_whole_and_says_what_to_do(project: Project, half_there, sql):
    with pytest.raises(MissingImageError) as exc:
        import_annotations(project, "labelme", half_there)
    assert exc.value.name == "b.jpg"
    assert "--skip-missing" in str(exc.value)
    # The window's message names no command-line flag.
    assert "--" not in str(exc.value.without_hint)
    assert str(exc.value.without_hint).startswith(f"{half_there / 'b.json'} (imagePath)")
    assert sql(project.db_path, "SELECT COUNT(*) FROM annotations") == [(0,)]
    assert sql(project.db_path, "SELECT COUNT(*) FROM images") == [(0,)]


def test_skip_missing_imports_the_rest_and_lists_the_missing(project: Project, half_there):
    report = import_annotations(project, "labelme", half_there, skip_missing=True)
    assert [im.name for im in project.images()] == ["a.jpg"]
    assert report.added_annotations == 1
    assert report.missing == [
        f"{half_there / 'b.json'}: imagePath: b.jpg",
        f"{half_there / 'c.json'}: imagePath: c.jpg",
    ]
    # A class only the missing images used is not created.
    assert [c.name for c in project.classes()] == ["car"]
    assert "2 not found, left out with their shapes" in report.summary()
    assert report.as_dict()["images"]["missing"] == report.missing


def test_images_in_the_project_are_found_by_name_wherever_they_sit(
    project: Project, tmp_path: Path, make_jpeg
) -> None:
    shots = tmp_path / "shots" / "day1"
    make_jpeg(shots / "b.jpg", 40, 30, seed=2)
    import_images(project, [tmp_path / "shots"])
    labels = tmp_path / "elsewhere"
    labels.mkdir()
    _labelme(labels, "b", "b.jpg")
    report = import_annotations(project, "labelme", labels)
    assert report.added_images == 0 and report.added_annotations == 1
    (im,) = project.images()
    assert im.abs_path == shots / "b.jpg"
    assert [a.image_id for a in project.annotations()] == [im.id]


def test_two_project_images_with_the_name_are_not_guessed(
    project: Project, tmp_path: Path, make_jpeg
) -> None:
    make_jpeg(tmp_path / "x" / "b.jpg", 40, 30, seed=1)
    make_jpeg(tmp_path / "y" / "b.jpg", 40, 30, seed=2)
    import_images(project, [tmp_path / "x", tmp_path / "y"])
    labels = tmp_path / "labels"
    labels.mkdir()
    _labelme(labels, "b", "b.jpg")
    with pytest.raises(MissingImageError):
        import_annotations(project, "labelme", labels)


def test_cli_skip_missing(run_cli, tmp_path: Path, half_there) -> None:
    Project.create(tmp_path / "p").close()
    r = run_cli("import", tmp_path / "p", "--format", "labelme", half_there)
    assert r.returncode == 2
    assert r.stderr.startswith("studio: error: ")
    assert "--skip-missing" in r.stderr and "b.jpg" in r.stderr
    r = run_cli("import", tmp_path / "p", "--format", "labelme", half_there, "--skip-missing")
    assert r.returncode == 0, r.stderr
    assert f"image not found, skipped: {half_there / 'b.json'}: imagePath: b.jpg" in r.stderr
    assert "imported 1 image, 1 shape" in r.stdout

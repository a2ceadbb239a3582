"""The `studio` command line, run as users run it: `python -m studio VERB ...` in a process."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from studio.core.project import Project

FORMATS = ("coco", "yolo", "voc", "labelme")


def _q(db_path: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(db_path)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _one_error_line(result) -> str:
    """The single line a user error prints; fails on tracebacks and extra output."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("studio: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cli_demo(tmp_path_factory: pytest.TempPathFactory, run_cli) -> Path:
    """A demo project made by `studio demo --images 12` (shared; tests must not change it)."""
    folder = tmp_path_factory.mktemp("cli") / "demo"
    r = run_cli("demo", folder, "--images", 12)
    assert r.returncode == 0, r.stderr
    n = _q(folder / "studio.db", "SELECT COUNT(*) FROM annotations")[0][0]
    assert r.stdout.strip() == f"created demo project {folder}: 12 images, {n} shapes"
    return folder


# --- new, demo, info ------------------------------------------------------------------------


def test_new_then_info_then_new_again(tmp_path: Path, run_cli) -> None:
    target = tmp_path / "fresh"
    r = run_cli("new", target)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"created project {target}"
    assert (target / "studio.db").is_file() and (target / "runs").is_dir()
    with Project.open(target) as p:
        assert (p.image_count(), p.annotation_count(), p.classes()) == (0, 0, [])
    again = run_cli("new", target)
    assert again.returncode == 2
    line = _one_error_line(again)
    assert str(target) in line and "a project already exists here" in line


def test_demo_project_contents(cli_demo: Path) -> None:
    db_path = cli_demo / "studio.db"
    assert _q(db_path, "SELECT COUNT(*) FROM images") == [(12,)]
    assert _q(db_path, "SELECT name FROM label_classes ORDER BY position") == [
        ("ball",), ("tile",), ("triangle",), ("star",),
    ]  # fmt: skip
    assert _q(db_path, "SELECT DISTINCT status FROM images") == [("done",)]
    assert all((cli_demo / p).is_file() for (p,) in _q(db_path, "SELECT path FROM images"))


def test_the_demo_opens_on_its_busiest_first_image(cli_demo: Path) -> None:
    """Its first image holds one small triangle: a newcomer's first sight of the window."""
    with Project.open(cli_demo) as p:
        first = p.images()[:10]
        counts = {im.id: len(p.annotations(image_ids=[im.id])) for im in first}
        opened = p.get_setting("last_image")
    assert counts[opened] == max(counts.values()) >= 4
    assert counts[first[0].id] < counts[opened]


def test_info_json_matches_the_database(cli_demo: Path, run_cli) -> None:
    r = run_cli("info", cli_demo, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    db_path = cli_demo / "studio.db"
    assert {"images", "annotations", "classes", "kinds", "splits", "statuses"} <= set(info)
    assert info["images"] == 12
    assert info["annotations"] == _q(db_path, "SELECT COUNT(*) FROM annotations")[0][0]
    assert info["classes"] == dict(
        _q(
            db_path,
            "SELECT c.name, COUNT(a.id) FROM label_classes c LEFT JOIN annotations a "
            "ON a.class_id = c.id GROUP BY c.id",
        )
    )
    kinds = dict(_q(db_path, "SELECT kind, COUNT(*) FROM annotations GROUP BY kind"))
    assert info["kinds"] == {k: kinds.get(k, 0) for k in ("box", "polygon", "mask")}
    splits = dict(_q(db_path, "SELECT split, COUNT(*) FROM images GROUP BY split"))
    assert info["splits"] == {s: splits.get(s, 0) for s in ("train", "val", "test")}
    assert info["statuses"] == {"new": 0, "in_progress": 0, "done": 12, "needs_review": 0}
    assert info["kinds"]["box"] > 0 and info["kinds"]["polygon"] > 0


# --- import and export ----------------------------------------------------------------------


def test_import_images(tmp_path: Path, run_cli, make_jpeg) -> None:
    with Project.create(tmp_path / "p"):
        pass
    src = tmp_path / "photos"
    for i in range(3):
        make_jpeg(src / "sub" / f"{i}.jpg", 20 + i, 10, seed=i)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    r = run_cli("import", tmp_path / "p", "--format", "images", src)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "imported 3 images\nimages: 1 skipped (corrupt header: 1)"
    (skip_line,) = r.stderr.strip().splitlines()
    assert skip_line.startswith(f"skipped {src / 'broken.jpg'}: ")
    assert "corrupt" in skip_line or "truncated" in skip_line
    assert sorted(_q(tmp_path / "p" / "studio.db", "SELECT width FROM images")) == [
        (20,), (21,), (22,),
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_and_import_each_format(cli_demo: Path, tmp_path: Path, run_cli, fmt: str) -> None:
    out = tmp_path / ("export.json" if fmt == "coco" else "export")
    r = run_cli("export", cli_demo, "--format", fmt, out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"exported {fmt} to {out}"
    assert out.exists()

    target = tmp_path / "again"
    Project.create(target).close()
    extra = ["--images", cli_demo / "images"] if fmt == "coco" else []
    r = run_cli("import", target, "--format", fmt, out, *extra)
    assert r.returncode == 0, r.stderr
    with Project.open(cli_demo) as demo, Project.open(target) as new:
        want, got = demo.info(), new.info()
        n = want["annotations"]
        assert r.stdout.strip() == f"imported 12 images, {n} shapes, 4 new classes"
        for key in ("images", "annotations", "classes", "kinds"):
            assert got[key] == want[key], key

        # Same boxes where the file names match.
        def boxes(p: Project) -> list:
            names = {im.id: im.name for im in p.images()}
            return sorted((names[a.image_id], *np.round(a.bbox, 3)) for a in p.annotations())

        assert np.allclose([b[1:] for b in boxes(new)], [b[1:] for b in boxes(demo)], atol=1e-3)
        assert [b[0] for b in boxes(new)] == [b[0] for b in boxes(demo)]


# --- errors: one line, the file, the problem, no traceback ----------------------------------


def test_import_missing_annotation_file(cli_demo: Path, tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "nothing_here.json"
    r = run_cli("import", cli_demo, "--format", "coco", missing)
    assert r.returncode == 2
    line = _one_error_line(r)
    assert str(missing) in line and "no such file or folder" in line


def test_import_missing_image_folder(tmp_path: Path, run_cli) -> None:
    Project.create(tmp_path / "p").close()
    missing = tmp_path / "no_such_folder"
    r = run_cli("import", tmp_path / "p", "--format", "images", missing)
    line = _one_error_line(r)
    assert str(missing) in line and "no such file or folder" in line


def test_import_malformed_coco(cli_demo: Path, tmp_path: Path, run_cli) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [}')
    before = _q(cli_demo / "studio.db", "SELECT COUNT(*) FROM annotations")
    r = run_cli("import", cli_demo, "--format", "coco", bad)
    assert r.returncode == 2
    line = _one_error_line(r)
    assert str(bad) in line and "invalid JSON" in line and "line 1 column" in line
    assert _q(cli_demo / "studio.db", "SELECT COUNT(*) FROM annotations") == before


def test_folder_that_is_not_a_project(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    r = run_cli("export", folder, "--format", "coco", tmp_path / "o.json")
    assert r.returncode == 2
    line = _one_error_line(r)
    assert str(folder) in line and "not a Studio project" in line
    assert not (tmp_path / "o.json").exists()
    assert list(folder.iterdir()) == []


def test_corrupt_database(tmp_path: Path, run_cli) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "studio.db").write_text("not a database\n" * 100)
    r = run_cli("info", folder)
    assert r.returncode == 2
    line = _one_error_line(r)
    assert line.startswith(f"studio: error: {folder / 'studio.db'}: ")
    assert "not a database" in line
    assert (folder / "studio.db").read_text() == "not a database\n" * 100


def test_unknown_split(cli_demo: Path, tmp_path: Path, run_cli) -> None:
    for args in (
        ["export", cli_demo, "--format", "coco", tmp_path / "o.json", "--split", "holdout"],
        ["split", cli_demo, "--assign", "holdout", "--files", "x.jpg"],
    ):
        r = run_cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
        # argparse also prints the usage above its one error line.
        assert len(errors) == 1, r.stderr
        assert "invalid choice: 'holdout'" in errors[0] and "'val'" in errors[0]
    assert not (tmp_path / "o.json").exists()

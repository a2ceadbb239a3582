"""Failures said in one line with the project unchanged and no half-written file;
hostile names and contents; a second process writing at the same time."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from studio import cli
from studio.core import importing
from studio.core.errors import FormatError, StudioError
from studio.core.exporting import export_annotations
from studio.core.formats.voc import read_voc
from studio.core.importing import import_annotations, import_images
from studio.core.project import Project


def run(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), err
    return lines[0]


@pytest.fixture
def labelled(project: Project, make_jpeg) -> Project:
    """Two images (one EXIF-free JPEG each), a class, a box and a crowd-free polygon."""
    a = make_jpeg(project.path / "imgs" / "a.jpg", 40, 30, seed=1)
    make_jpeg(project.path / "imgs" / "b.jpg", 40, 30, seed=2)
    import_images(project, [a.parent])
    cid = project.add_class("cat")
    ids = project.image_ids()
    project.add_annotation(ids[0], cid, "box", bbox=(1.0, 2.0, 10.0, 8.0))
    project.add_annotation(ids[1], cid, "polygon", polygons=[[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]])
    return project


def dump(db: Path) -> dict[str, list]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}"))) for t in tables}
    finally:
        con.close()


# --- exports that cannot be written ----------------------------------------------------------


def test_export_under_a_file_or_onto_a_file_is_one_line(
    labelled: Project, tmp_path: Path, capsys
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = run(capsys, "export", labelled.path, "--format", "coco", blocker / "x.json")
    assert code == 2 and f"{blocker} is a file, not a folder" in one_error(err)
    code, out, err = run(capsys, "export", labelled.path, "--format", "yolo", blocker)
    assert code == 2 and "exists and is a file; yolo exports to a folder" in one_error(err)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("fmt", ["coco", "voc", "labelme", "yolo"])
def test_a_full_disk_leaves_no_partial_file(
    labelled: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The disk fills up while the first annotation file is written: one StudioError
    naming it, nothing where the user asked for the output, no temporary file left."""
    import studio.core.formats.common as common

    real_fdopen = os.fdopen

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(28, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(common.os, "fdopen", lambda *a, **k: FullFile(real_fdopen(*a, **k)))
    out = tmp_path / "exports" / ("x.json" if fmt == "coco" else "out")
    with pytest.raises(StudioError, match="No space left on device"):
        export_annotations(labelled, fmt, out)
    if fmt == "coco":
        assert list(out.parent.iterdir()) == []
    else:
        left = [
            p
            for p in out.rglob("*")
            if p.is_file() and p.suffix in (".part", ".json", ".txt", ".xml", ".yaml")
        ]
        assert left == []


def test_a_full_disk_during_an_import_is_one_line_and_changes_nothing(
    labelled: Project, make_jpeg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_jpeg(tmp_path / "new" / "c.jpg", 20, 20)
    before = dump(labelled.db_path)

    def full(conn, values):
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(labelled.store.images, "insert_many", full)
    with pytest.raises(StudioError) as e:
        import_images(labelled, [tmp_path / "new"])
    assert str(e.value) == f"{labelled.db_path}: cannot write the project: database or disk is full"
    assert dump(labelled.db_path) == before


def test_new_in_a_folder_that_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, out, err = run(capsys, "new", tmp_path / "ro" / "proj")
    line = one_error(err)
    assert code == 2 and str(tmp_path / "ro" / "proj") in line and "Permission denied" in line


# --- hostile names and contents ---------------------------------------------------------------


def test_a_non_utf8_file_name_is_skipped_with_its_reason(
    project: Project, make_jpeg, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "mixed"
    good = make_jpeg(folder / "good.jpg", 10, 10)
    bad = os.fsencode(folder) + b"/caf\xe9.jpg"
    with open(bad, "wb") as f:
        f.write(good.read_bytes())
    report = import_images(project, [folder])
    assert report.added_images == 1
    assert report.skipped == [(f"{folder}/caf\\xe9.jpg", "file name is not valid UTF-8")]
    code, out, err = run(capsys, "import", project.path, "--format", "images", folder)
    assert code == 0 and "caf\\xe9.jpg: file name is not valid UTF-8" in err


def test_voc_export_of_control_characters_reads_back(
    labelled: Project, tmp_path: Path, make_jpeg
) -> None:
    """A class name with a control character, an image name with a newline: the VOC
    export stays readable, and the newline does not split the ImageSets list."""
    odd = make_jpeg(labelled.path / "imgs" / "two\nlines.jpg", 12, 12, seed=5)
    import_images(labelled, [odd])
    cid = labelled.add_class("bad\x01name")
    labelled.add_annotation(labelled.image_ids()[-1], cid, "box", bbox=(1.0, 1.0, 5.0, 5.0))
    out = tmp_path / "voc"
    warnings = export_annotations(labelled, "voc", out)
    assert any("control characters" in w for w in warnings)
    lists = "".join(p.read_text() for p in (out / "ImageSets" / "Main").glob("*.txt"))
    assert sorted(lists.split("\n")) == ["", "a", "b", "two_lines"]
    spec = read_voc(out / "Annotations")
    assert "bad\ufffdname" in spec.classes and len(spec.annotations) == 3


def test_coco_rle_longer_than_its_image_is_refused(project: Project, make_jpeg, tmp_path: Path):
    """An overlong counts string decoded by pycocotools as a box 4 million pixels wide
    on a 64-pixel image: refused on import, naming the annotation."""
    make_jpeg(tmp_path / "c" / "a.jpg", 64, 64)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
                         "segmentation": {"size": [64, 64], "counts": "0" + "Z" * 300}}],
        "categories": [{"id": 1, "name": "x"}],
    }  # fmt: skip
    (tmp_path / "c" / "annotations.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"annotations\[0\].segmentation"):
        import_annotations(project, "coco", tmp_path / "c" / "annotations.json")
    assert project.image_count() == 0


def test_a_two_number_polygon_part_is_reported(project: Project, make_jpeg, tmp_path: Path):
    make_jpeg(tmp_path / "c" / "a.jpg", 64, 64)
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": [[1, 1, 20, 1, 20, 20], [30, 30]]}],
        "categories": [{"id": 1, "name": "x"}],
    }  # fmt: skip
    (tmp_path / "c" / "annotations.json").write_text(json.dumps(doc))
    report = import_annotations(project, "coco", tmp_path / "c" / "annotations.json")
    assert report.added_annotations == 1
    assert report.rejected == {"polygon parts dropped (fewer than 3 points or zero area)": 1}
    assert project.annotations()[0].polygons == [[1.0, 1.0, 20.0, 1.0, 20.0, 20.0]]


def test_a_labelme_folder_with_a_fifo_does_not_hang(project: Project, make_jpeg, tmp_path: Path):
    folder = tmp_path / "lm"
    make_jpeg(folder / "a.jpg", 20, 20)
    doc = {"shapes": [{"label": "x", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
           "imagePath": "a.jpg", "imageWidth": 20, "imageHeight": 20}  # fmt: skip
    (folder / "a.json").write_text(json.dumps(doc))
    os.mkfifo(folder / "pipe.json")
    report = import_annotations(project, "labelme", folder)
    assert report.added_annotations == 1


# --- nothing imported, and the summary --------------------------------------------------------


def test_import_of_only_broken_files_exits_non_zero(project: Project, tmp_path: Path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_text("not a png")
    code, out, err = run(capsys, "import", project.path, "--format", "images", folder, "--json")
    assert code == 2  # bad input, as the README says
    summary = json.loads(out)
    assert summary["images"]["added"] == 0
    assert sorted(s["reason"] for s in summary["images"]["skipped"]) == [
        "empty file (0 bytes)",
        "not an image or unsupported format",
    ]
    assert err.strip() == f"studio: error: {folder}: nothing could be imported"
    (folder / "a.jpg").unlink()
    (folder / "b.png").unlink()
    code, out, err = run(capsys, "import", project.path, "--format", "images", folder)
    assert code == 2 and err.strip() == f"studio: error: {folder}: no image files here"


# --- another process writing at the same time -------------------------------------------------


def test_a_lost_race_for_the_same_images_is_a_clear_message(
    project: Project, make_jpeg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports of one folder: the second to write finds the first's rows; it says
    so in one line and writes nothing (no UNIQUE constraint traceback)."""
    folder = tmp_path / "shared"
    make_jpeg(folder / "a.jpg", 20, 20, seed=1)
    make_jpeg(folder / "b.jpg", 20, 20, seed=2)
    real = importing.write_transaction
    raced: list[bool] = []

    def other_process_first(p: Project):
        if not raced:
            raced.append(True)
            with Project.open(p.path) as other:
                import_images(other, [folder / "a.jpg"])
        return real(p)

    monkeypatch.setattr(importing, "write_transaction", other_process_first)
    with pytest.raises(StudioError, match="just imported by another process; nothing was"):
        import_images(project, [folder])
    assert [im.path for im in project.images()] == [project.stored_path(folder / "a.jpg")]


def _writer(path: str, n: int, seed: int, q) -> None:
    failures = 0
    with Project.open(path) as p:
        ids = p.image_ids()
        cid = p.class_by_name("cat").id
        for i in range(n):
            try:
                if i % 2:
                    p.set_split([ids[(i + seed) % len(ids)]], "val" if i % 4 == 1 else "train")
                else:
                    p.add_annotation(ids[i % len(ids)], cid, "box", bbox=(1.0, 1.0, 2.0, 2.0))
            except Exception as e:  # counted: the test asserts there are none
                failures += 1
                q.put(f"{type(e).__name__}: {e}")
    q.put(failures)


@pytest.mark.slow
def test_concurrent_writers_and_a_large_import_lose_nothing(
    labelled: Project, make_jpeg, tmp_path: Path
) -> None:
    """Two other processes make 200 small writes while this one imports a COCO file of
    4,000 polygons: no write fails and every row lands."""
    make_jpeg(tmp_path / "big" / "z.jpg", 500, 500)
    anns = [
        {"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[i % 400, 5, i % 400 + 50, 5, i % 400 + 50, 60, i % 400, 60]]}
        for i in range(4000)
    ]  # fmt: skip
    doc = {"images": [{"id": 1, "file_name": "z.jpg"}], "annotations": anns,
           "categories": [{"id": 1, "name": "cat"}]}  # fmt: skip
    (tmp_path / "big" / "annotations.json").write_text(json.dumps(doc))
    before = labelled.annotation_count()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(labelled.path), 100, s, q)) for s in (0, 1)]
    for pr in procs:
        pr.start()
    report = import_annotations(labelled, "coco", tmp_path / "big" / "annotations.json")
    results = [q.get(timeout=120) for _ in range(2)]
    for pr in procs:
        pr.join(60)
    assert results == [0, 0], results
    assert report.added_annotations == 4000
    assert labelled.annotation_count() == before + 4000 + 100


def test_a_locked_database_never_ends_a_training_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's recorder keeps metric rows while another process holds the write lock
    and writes them all once it is free; status writes wait the lock out. (The recorder
    is Qt- and torch-free, so it is tested here beside the other concurrent writers.)"""
    import studio.ml.run.recorder as recorder_mod
    from studio.ml.run.recorder import RunRecorder
    from studio.ml.train.messages import EpochMetrics, Finished, Iteration

    run = project.create_run("r", "m", "detect", {})
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    real_metrics, real_update = project.add_metrics, project.update_run
    fails = {"metrics": 3, "update": 2}

    def flaky(name, real):
        def call(*a, **k):
            if fails[name]:
                fails[name] -= 1
                raise locked
            return real(*a, **k)

        return call

    monkeypatch.setattr(project, "add_metrics", flaky("metrics", real_metrics))
    monkeypatch.setattr(project, "update_run", flaky("update", real_update))
    monkeypatch.setattr(recorder_mod.time, "sleep", lambda s: None)
    rec = RunRecorder(project, run.id, flush_every=1)
    for i in range(1, 4):
        rec(Iteration(epoch=0, iteration=i, losses={"loss": 1.0 / i}, lr=0.01, images_per_s=5.0))
    rec(EpochMetrics(epoch=0, metrics={"map": 0.5}, best_metric_name="map", is_best=True))
    rec(Finished(best_metric=0.5, best_metric_name="map", epoch=1))
    losses = [(m[1], m[4]) for m in project.metrics(run.id, "iter") if m[3] == "loss"]
    assert sorted(losses) == [(1, 1.0), (2, 0.5), (3, 1.0 / 3)]
    assert [m[4] for m in project.metrics(run.id, "epoch")] == [0.5]
    assert project.run(run.id).status == "finished"
    assert fails == {"metrics": 0, "update": 0}

"""Crashes during imports: the database stays intact and holds nothing of the import.

A `studio import` is SIGKILLed while it reads image headers and while its one write
transaction is open; an exception inside `import_dataset` after the classes were written
must roll everything back.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import event

from studio.core.importing import import_dataset, import_images
from studio.core.project import Project
from studio.core.records import AnnotationSpec, DatasetSpec, ImageSpec
from tests.core.conftest import core_env

N_PARTS, PER_PART = 3, 1000
N_IMAGES = N_PARTS * PER_PART
_NAME = re.compile(r"img_(\d{5})\.png$")


def _png_with_text(base: bytes, text: bytes) -> bytes:
    """`base` (a PNG) with a tEXt chunk before IEND: same pixels, different bytes."""
    data = b"n\x00" + text
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    return base[:-12] + chunk + base[-12:]


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3000 tiny PNGs in 3 sub-folders of 1000, every file with its own checksum."""
    folder = tmp_path_factory.mktemp("many") / "images"
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert ok
    base = buf.tobytes()
    assert base.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82")
    for part in range(N_PARTS):
        sub = folder / f"part{part}"
        sub.mkdir(parents=True)
        for j in range(PER_PART):
            i = part * PER_PART + j
            (sub / f"img_{i:05d}.png").write_bytes(_png_with_text(base, str(i).encode()))
    return folder


def _env() -> dict[str, str]:
    return core_env()


def _check_db(db_path: Path) -> int:
    """integrity_check must say ok; returns the number of images."""
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        return con.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    finally:
        con.close()


def _image_being_read(pid: int, folder: Path) -> int | None:
    """Index of the image file the process has open right now, from /proc (Linux)."""
    fd_dir = f"/proc/{pid}/fd"
    best = None
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith(os.path.realpath(folder)):
            m = _NAME.search(target)
            if m:
                best = max(best or 0, int(m.group(1)))
    return best


@pytest.mark.slow
def test_sigkill_while_reading_headers(many_images: Path, tmp_path: Path, run_cli) -> None:
    proj = tmp_path / "p"
    Project.create(proj).close()
    log = (tmp_path / "out.txt").open("w")
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "import",
            str(proj),
            "--format",
            "images",
            str(many_images),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
    )
    try:
        # Kill when the process is reading about the 40% mark of the files. Where /proc
        # cannot tell (not Linux), fall back to a time estimate.
        use_proc = Path(f"/proc/{proc.pid}/fd").is_dir()
        seen = None
        while proc.poll() is None and time.monotonic() - start < 120:
            if use_proc:
                seen = _image_being_read(proc.pid, many_images)
                if seen is not None and seen >= 0.4 * N_IMAGES:
                    break
                time.sleep(0.001)
            else:  # pragma: no cover - Linux CI uses /proc
                if time.monotonic() - start > 2.0:
                    break
                time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    if use_proc:
        assert seen is not None and 0.4 * N_IMAGES <= seen < N_IMAGES

    assert _check_db(proj / "studio.db") == 0

    r = run_cli("import", proj, "--format", "images", many_images)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"imported {N_IMAGES} images"
    assert _check_db(proj / "studio.db") == N_IMAGES


_WRITE_THEN_HANG = r"""
import sys, time
from pathlib import Path
from studio.core import importing
from studio.core.project import Project
from studio.core.store.images import ImageRepo

real = ImageRepo.insert_many

def insert_then_hang(conn, rows):
    # A small page cache makes SQLite spill the open transaction's pages into the WAL,
    # so the kill below leaves uncommitted frames on disk, as a big import would.
    conn.exec_driver_sql("PRAGMA cache_size = 5")
    real(conn, rows)
    Path(sys.argv[3]).write_text(str(len(rows)))
    time.sleep(600)

ImageRepo.insert_many = staticmethod(insert_then_hang)
importing.import_images(Project.open(sys.argv[1]), [Path(sys.argv[2])])
"""


@pytest.mark.slow
def test_sigkill_inside_the_write_transaction(many_images: Path, tmp_path: Path) -> None:
    proj = tmp_path / "p"
    Project.create(proj).close()
    part = many_images / "part1"
    marker = tmp_path / "inserted"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITE_THEN_HANG, str(proj), str(part), str(marker)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the import never reached its insert"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert marker.read_text() == str(PER_PART)
    wal = proj / "studio.db-wal"
    assert wal.is_file() and wal.stat().st_size > 0, "nothing of the transaction reached disk"

    assert _check_db(proj / "studio.db") == 0
    with Project.open(proj) as p:
        report = import_images(p, [part])
        assert report.added_images == PER_PART and report.skipped == []
        assert p.image_count() == PER_PART
    assert _check_db(proj / "studio.db") == PER_PART


def test_exception_inside_import_dataset_rolls_back_classes_and_images(
    project: Project, make_jpeg, table_dump
) -> None:
    old = make_jpeg(project.path / "imgs" / "old.jpg", 30, 20, seed=1)
    import_images(project, [old])
    project.add_class("existing")
    new = [make_jpeg(project.path / "imgs" / f"new{i}.jpg", 30, 20, seed=10 + i) for i in range(3)]
    spec = DatasetSpec(
        classes=["existing", "fresh1", "fresh2"],
        images=[ImageSpec(p.name, p) for p in new],
        annotations=[
            AnnotationSpec(p.name, c, "box", (1, 1, 5, 5))
            for p in new
            for c in ("existing", "fresh1", "fresh2")
        ],
    )
    before = table_dump(project.db_path)
    seen: list[str] = []

    def fail_on_annotations(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split("(")[0].strip())
        if statement.startswith("INSERT INTO annotations"):
            raise RuntimeError("disk on fire")

    event.listen(project.engine, "before_cursor_execute", fail_on_annotations)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            import_dataset(project, spec)
    finally:
        event.remove(project.engine, "before_cursor_execute", fail_on_annotations)
    # Classes and images were written in the transaction before the failure ...
    assert "INSERT INTO label_classes" in seen and "INSERT INTO images" in seen
    # ... and none of it is left.
    assert table_dump(project.db_path) == before
    assert [c.name for c in project.classes()] == ["existing"]
    assert project.image_count() == 1

    report = import_dataset(project, spec)
    assert (report.added_images, report.added_annotations) == (3, 9)
    assert report.added_classes == ["fresh1", "fresh2"]


def test_a_read_only_project_says_so(tmp_path, monkeypatch) -> None:
    """SQLite's write-ahead log needs its side files even to read: a project on a
    read-only mount failed with "unable to open database file" and nothing else."""
    from studio.core import db
    from studio.core.errors import StudioError

    Project.create(tmp_path / "p").close()

    def refuse(_engine):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(db, "current_revision", refuse)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StudioError, match="read-only; Studio writes there even to read"):
        Project.open(tmp_path / "p")

"""Shared fixtures for the core tests. Everything is generated in tmp_path; no Qt, no torch."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.demo import create_demo_project
from studio.core.project import Project

# Tables that hold project data (alembic_version is compared where it matters).
DATA_TABLES = (
    "images",
    "label_classes",
    "annotations",
    "runs",
    "metrics",
    "predictions",
    "settings",
)


# --- projects -------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """An empty project in tmp_path/proj."""
    p = Project.create(tmp_path / "proj")
    yield p
    p.close()


@pytest.fixture(scope="session")
def _demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, generated once per session and closed (its WAL checkpointed)."""
    folder = tmp_path_factory.mktemp("demo_template") / "demo"
    create_demo_project(folder, n_images=24, image_size=(160, 120)).close()
    assert not (folder / "studio.db-wal").exists()
    return folder


@pytest.fixture
def demo_project(tmp_path: Path, _demo_template: Path) -> Iterator[Project]:
    """The generated demo project, small: 24 images of about 160x120, boxes and polygons,
    created with create_demo_project(n_images=24, image_size=(160, 120)). Each test gets
    its own copy (image paths are stored relative to the project, so a copy is whole)."""
    shutil.copytree(_demo_template, tmp_path / "demo")
    p = Project.open(tmp_path / "demo")
    yield p
    p.close()


# --- images ---------------------------------------------------------------------------------


def _make_jpeg(
    path: Path,
    w: int,
    h: int,
    orientation: int | None = None,
    *,
    seed: int = 0,
    mode: str = "RGB",
    quality: int = 92,
) -> Path:
    """Write a noise JPEG of w x h STORED pixels; with `orientation`, an EXIF tag 1..8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if mode != "RGB":
        img = img.convert(mode)
    kwargs: dict = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    img.save(path, "JPEG", **kwargs)
    return path


@pytest.fixture(scope="session")
def make_jpeg() -> Callable[..., Path]:
    """make_jpeg(path, w, h, orientation=None, *, seed=0, mode="RGB") -> path."""
    return _make_jpeg


# --- database dumps -------------------------------------------------------------------------


def _table_dump(
    db_path: Path, tables: tuple[str, ...] = DATA_TABLES, exclude: tuple[str, ...] = ()
) -> dict[str, list[tuple]]:
    """Every row of `tables`, ordered by rowid/primary key, without the `exclude` columns.

    Read through a separate raw sqlite3 connection: what any other process would see."""
    con = sqlite3.connect(db_path)
    try:
        out: dict[str, list[tuple]] = {}
        for t in tables:
            cur = con.execute(f"SELECT * FROM {t}")
            cols = [d[0] for d in cur.description]
            keep = [i for i, c in enumerate(cols) if c not in exclude]
            rows = [tuple(r[i] for i in keep) for r in cur.fetchall()]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


@pytest.fixture(scope="session")
def table_dump() -> Callable[..., dict[str, list[tuple]]]:
    """table_dump(db_path, tables=DATA_TABLES, exclude=()) -> {table: sorted rows}."""
    return _table_dump


def _sql(db_path: Path, query: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(db_path)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def sql() -> Callable[..., list[tuple]]:
    """sql(db_path, query, params=()) -> rows, through a raw sqlite3 connection."""
    return _sql


# --- the command line -----------------------------------------------------------------------


def core_env(**extra: str) -> dict[str, str]:
    """The environment for a `studio` process of a core test: this one's, without the
    model plugins tests/ml/conftest.py puts on STUDIO_PLUGIN_PATH for the whole session.
    Those import torch, which made every `studio import`/`export` here take 5-10 s
    instead of about one; a core test that wants plugins sets the variable itself."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8", **extra)
    ml_plugins = str(Path(__file__).resolve().parents[1] / "ml")
    kept = [
        p
        for p in env.get("STUDIO_PLUGIN_PATH", "").split(os.pathsep)
        if p and not str(Path(p).resolve()).startswith(ml_plugins)
    ]
    if kept:
        env["STUDIO_PLUGIN_PATH"] = os.pathsep.join(kept)
    else:
        env.pop("STUDIO_PLUGIN_PATH", None)
    return env


def _run_cli(
    *args: object, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = core_env(PYTHONUTF8="1")
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """run_cli(*args, cwd=None) runs `python -m studio ARGS` and returns the result."""
    return _run_cli

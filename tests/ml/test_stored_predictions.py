"""Which stored predictions are current: the index survives a copied project and notices
new weights."""

from __future__ import annotations

import shutil

import torch

from studio.core.demo import create_demo_project
from studio.core.project import Project
from studio.ml.analysis.stored_predictions import (
    INDEX_NAME,
    SCORE_FLOOR,
    _fingerprint,
    _write_index,
    stale_images,
)
from tests.ml.test_size_bands import run_with_current_predictions


def _checkpoint(path, value: float) -> None:
    torch.save({"model": {"w": torch.full((4096,), value)}, "epoch": 3}, path)


def test_fingerprint_follows_the_weights_not_the_path_or_time(tmp_path):
    a = tmp_path / "a" / "best.pt"
    a.parent.mkdir()
    _checkpoint(a, 1.0)
    b = tmp_path / "b" / "best.pt"
    b.parent.mkdir()
    shutil.copy(a, b)  # a copy: a new path and a new modification time
    assert _fingerprint(a, SCORE_FLOOR) == _fingerprint(b, SCORE_FLOOR)
    _checkpoint(b, 2.0)  # new weights of the same shapes: the same size
    assert b.stat().st_size == a.stat().st_size
    assert _fingerprint(a, SCORE_FLOOR) != _fingerprint(b, SCORE_FLOOR)
    assert _fingerprint(a, SCORE_FLOOR) != _fingerprint(a, 0.5)


def test_a_copied_project_keeps_its_predictions_current(tmp_path):
    src = tmp_path / "demo"
    with create_demo_project(src, n_images=4, seed=0, image_size=(160, 120)) as p:
        run_id = run_with_current_predictions(p, [])
        run = p.run(run_id)
        _checkpoint(run.dir / "best.pt", 1.0)  # the index written against the real file
        images = {str(im.id): im.checksum for im in p.images()}
        _write_index(run.dir / INDEX_NAME, _fingerprint(run.dir / "best.pt", SCORE_FLOOR), images)
        assert stale_images(run, run.dir / "best.pt", p.images(), SCORE_FLOOR) == []
    dst = tmp_path / "elsewhere" / "demo"
    shutil.copytree(src, dst, copy_function=shutil.copy)  # new times, as `cp -r` gives
    with Project.open(dst) as p:
        run = p.run(run_id)
        assert run.dir.is_relative_to(dst)
        assert stale_images(run, run.dir / "best.pt", p.images(), SCORE_FLOOR) == []
        _checkpoint(run.dir / "best.pt", 2.0)  # retrained in place: every image is stale
        assert len(stale_images(run, run.dir / "best.pt", p.images(), SCORE_FLOOR)) == 4

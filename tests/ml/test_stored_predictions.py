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


def test_an_image_the_model_found_nothing_in_still_counts(tmp_path):
    """Evaluation in the window kept only images with prediction rows: one where the
    model ran and found nothing was left out with its labels, and recall looked better."""
    from studio.ui.analysis.work import evaluation_images

    with create_demo_project(tmp_path / "demo", n_images=4, seed=0, image_size=(160, 120)) as p:
        empty, *rest = p.images()
        rows = [dict(image_id=a.image_id, class_id=a.class_id, bbox=a.bbox, score=0.9)
                for a in p.annotations() if a.image_id != empty.id]  # fmt: skip
        run_id = run_with_current_predictions(p, rows)  # the index lists all 4 as current
        gt, got = evaluation_images(p, run_id, None)
        assert empty.id in {im["id"] for im in gt["images"]}
        n_labels = len(p.annotations(image_ids=[empty.id]))
        assert n_labels and sum(a["image_id"] == empty.id for a in gt["annotations"]) == n_labels
        # Without the index's word, an image without rows is not known to have been run.
        (p.run(run_id).dir / INDEX_NAME).unlink()
        gt, _ = evaluation_images(p, run_id, None)
        assert empty.id not in {im["id"] for im in gt["images"]}

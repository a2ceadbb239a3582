"""An image's predictions do not depend on the images batched with it: the eval loader
batches only images of one size, since torchvision pads a batch to its largest image."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from studio.ml.data.dataset import SnapshotDataset
from studio.ml.data.loaders import build_eval_loader, same_size_batches
from studio.ml.data.snapshot import Sample
from studio.ml.data.transforms import build_transforms
from studio.ml.evaluation.coco import run_model
from studio.ml.tasks import Task
from tests.ml.conftest import tiny_detector


def test_batches_hold_one_size_and_stay_full_with_mixed_sizes():
    sizes = [(100, 80), (120, 80), (100, 80), (120, 80), (100, 80), (100, 80)]
    assert same_size_batches(sizes, 2) == [[0, 2], [4, 5], [1, 3]]
    assert same_size_batches(sizes, 8) == [[0, 2, 4, 5], [1, 3]]
    assert same_size_batches([], 4) == []


def _outputs(samples, batch_size):
    model = tiny_detector(2, box_score_thresh=0.0, box_detections_per_img=20).model
    ds = SnapshotDataset(samples, Task.DETECTION, build_transforms(Task.DETECTION, False))
    loader = build_eval_loader(ds, batch_size=batch_size, workers=0)
    with torch.no_grad():
        return {int(t["image_id"]): o for t, o in run_model(model, loader, torch.device("cpu"))}


def test_predictions_are_the_same_in_any_batch(tmp_path):
    rng = np.random.default_rng(0)
    samples = []
    # The portrait image pads a batch with the others to 128x128.
    for i, (w, h) in enumerate([(128, 96), (96, 128), (128, 96), (128, 96)]):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        samples.append(Sample(i + 1, str(path), w, h, [], [], []))
    alone = _outputs(samples, 1)
    together = _outputs(samples, 4)
    assert set(alone) == set(together) == {1, 2, 3, 4}
    for i in alone:
        assert len(alone[i]["boxes"]) > 0  # something to compare
        torch.testing.assert_close(alone[i]["boxes"], together[i]["boxes"])
        torch.testing.assert_close(alone[i]["scores"], together[i]["scores"])


def test_studio_eval_decodes_as_training_validation_and_predict_do(demo_dir, monkeypatch):
    """`studio eval` decoded images at full size where training's validation and
    `studio predict` decode at most at the largest side the model resizes to: its AP
    differed slightly from both on large photos."""
    from studio.core.project import Project
    from studio.ml import cli
    from studio.ml.data.transforms import load_max_side
    from studio.ml.run.process import create_run, execute_run
    from tests.ml.conftest import IMAGE_SIZE, tiny_config

    with Project.open(demo_dir) as p:
        run = create_run(p, tiny_config(epochs=1))
        execute_run(p, run.id)
    seen = []
    real = cli.SnapshotDataset

    def spy(samples, task, transforms, max_side=None):
        seen.append(max_side)
        return real(samples, task, transforms, max_side)

    monkeypatch.setattr(cli, "SnapshotDataset", spy)
    cli.evaluate_run(demo_dir, run.id)
    assert seen == [load_max_side(IMAGE_SIZE)] and seen[0] is not None


def test_eval_against_current_labels_keeps_the_runs_held_out_images(demo_dir, monkeypatch):
    """Without a val split, `studio eval --current-labels` drew the held-out share again
    from today's image list: after one image was deleted it scored other images, most
    of which the model had trained on."""
    from studio.core.project import Project
    from studio.ml import cli
    from studio.ml.data.snapshot import Snapshot
    from studio.ml.run.process import create_run, execute_run
    from studio.ml.run.runs import held_out_ids
    from tests.ml.conftest import tiny_config

    with Project.open(demo_dir) as p:
        p.set_split([im.id for im in p.images()], "train")
        run = create_run(p, tiny_config(epochs=1, val_fraction=0.5))
        execute_run(p, run.id)
        held = held_out_ids(p.run(run.id))
        gone = next(im.id for im in p.images() if im.id not in held)
        p.delete_images([gone])
    scored = []
    real = Snapshot.samples

    def spy(self, ids, *args, **kwargs):
        scored.append(list(ids))
        return real(self, ids, *args, **kwargs)

    monkeypatch.setattr(Snapshot, "samples", spy)
    cli.evaluate_run(demo_dir, run.id, current_labels=True)
    assert sorted(scored[-1]) == sorted(held)
    assert not list(run.dir.glob("eval_snapshot*"))  # no file left behind

"""Augmentation drawn per image from (seed, epoch, index): a run stopped and resumed with
DataLoader worker processes ends with the weights of a run never stopped, bit for bit."""

from __future__ import annotations

import torch

from studio.ml.data.dataset import SnapshotDataset
from studio.ml.data.loaders import GroupedBatchSampler, augmentation_seed
from studio.ml.data.snapshot import DataReport, Snapshot, write_snapshot
from studio.ml.data.transforms import build_transforms
from studio.ml.run.process import create_run
from studio.ml.train.messages import Iteration
from studio.ml.train.trainer import LAST, load_checkpoint, train_run
from tests.ml.conftest import tiny_config


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / LAST)["model"]


def test_a_run_stopped_and_resumed_with_workers_equals_one_never_stopped(project):
    # Two worker processes: each draws its own images' augmentation. Before the
    # per-image seeds, the workers' generators started over at the resume and every
    # tensor differed (batch-norm statistics by up to 0.016). One torch thread: sums
    # split over another number of threads round differently, and a CPU run's threads
    # follow the machine's load (threads.py).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _stop_resume_and_compare(project)
    finally:
        torch.set_num_threads(threads)


def _stop_resume_and_compare(project) -> None:
    cfg = tiny_config(epochs=2, workers=2)
    stopped = create_run(project, cfg)
    its: list[Iteration] = []

    def collect(msg):
        if isinstance(msg, Iteration):
            its.append(msg)

    result = train_run(stopped.dir, emit=collect, should_stop=lambda: len(its) >= 4)
    assert result.status == "stopped" and load_checkpoint(stopped.dir / LAST)["epoch_step"] > 0
    train_run(stopped.dir, resume=True)
    straight = create_run(project, cfg)
    train_run(straight.dir)
    a, b = _weights(stopped.dir), _weights(straight.dir)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


def test_an_images_augmentation_follows_its_seed_and_leaves_the_process_generator(
    project, tmp_path
):
    write_snapshot(project, tmp_path / "snap.json")
    snap = Snapshot.load(tmp_path / "snap.json")
    samples = snap.samples(list(snap.images), "detection", DataReport())
    tf = build_transforms("detection", True, image_size=64, color_jitter=0.4, hue=False)
    ds = SnapshotDataset(samples, "detection", tf)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = ds[(0, augmentation_seed(0, 1, 0))][0]
    assert torch.equal(torch.get_rng_state(), before)  # drawn from the image's own seed
    assert torch.equal(ds[(0, augmentation_seed(0, 1, 0))][0], first)
    other_epoch = ds[(0, augmentation_seed(0, 2, 0))][0]
    assert other_epoch.shape != first.shape or not torch.equal(other_epoch, first)


def test_the_seeded_sampler_gives_each_image_a_seed_per_epoch():
    b = GroupedBatchSampler(range(4), [0] * 4, 2, seed=7)
    b.set_epoch(3)
    assert list(b) == [[(i, augmentation_seed(7, 3, i)) for i in (0, 1)],
                       [(i, augmentation_seed(7, 3, i)) for i in (2, 3)]]  # fmt: skip
    seeds = {augmentation_seed(s, e, i) for s in range(3) for e in range(50) for i in range(500)}
    assert len(seeds) == 3 * 50 * 500
    assert 0 <= augmentation_seed(2**62, 10**6, 10**6) < 2**63  # fits torch.manual_seed

"""The training engine, data pipeline and evaluation, in this process (CPU, tiny model)."""

from __future__ import annotations

import hashlib
import json
import math
import re

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.errors import StudioError
from studio.ml.data.dataset import SnapshotDataset
from studio.ml.data.loaders import GroupedBatchSampler, build_eval_loader
from studio.ml.data.snapshot import DataReport, Snapshot
from studio.ml.data.transforms import build_transforms
from studio.ml.evaluation.coco import STAT_NAMES, coco_evaluate, evaluate_outputs, run_model
from studio.ml.run.process import create_run, execute_run
from studio.ml.train import trainer as engine
from studio.ml.train.config import DEFAULT_TIME_BUDGET, TrainConfig
from studio.ml.train.messages import (
    EpochMetrics,
    Finished,
    Iteration,
    Notice,
    Started,
    Stopped,
    message_from_dict,
    message_to_dict,
)
from studio.ml.train.trainer import LAST, TrainingError, load_checkpoint, train_run
from tests.ml.conftest import TINY_MASK, tiny_config, tiny_detector


class Collect(list):
    """emit callback that keeps every message."""

    def __call__(self, msg) -> None:
        self.append(msg)

    def of(self, cls) -> list:
        return [m for m in self if isinstance(m, cls)]


def _only_train(project, n: int) -> None:
    """Keep `n` images in train and move the others to test (so nothing is validated)."""
    ids = [im.id for im in project.images()]
    project.set_split(ids[:n], "train")
    project.set_split(ids[n:], "test")


# --- config and messages ---------------------------------------------------------------


def test_config_json_round_trip(tmp_path):
    cfg = tiny_config(time_budget=30.0, model_options={"a": 1}, scale_range=(0.5, 1.5))
    path = tmp_path / "config.json"
    cfg.save(path)
    assert TrainConfig.load(path) == cfg
    with pytest.raises(Exception, match="unknown training setting"):
        TrainConfig.from_dict({**cfg.to_dict(), "epochz": 3})
    with pytest.raises(Exception, match="optimizer"):
        tiny_config(optimizer="adam").validate()
    r = TrainConfig(backbone_weights="none", weights="none", batch_size=8).resolved()
    assert r.lr == pytest.approx(1e-3) and not r.pretrained
    assert TrainConfig(batch_size=4).resolved(pretrained_model=True).lr == pytest.approx(5e-5)
    assert TrainConfig(optimizer="sgd", batch_size=8).resolved().lr == pytest.approx(0.01)
    # One click: a time budget, no epoch limit.
    assert TrainConfig().epochs is None and TrainConfig().time_budget == DEFAULT_TIME_BUDGET


def test_messages_round_trip():
    msg = Iteration(1, 5, {"loss": 1.0}, 0.1, 3.0, 2, 4)
    assert message_from_dict(json.loads(json.dumps(message_to_dict(msg)))) == msg


# --- data ------------------------------------------------------------------------------


def _write_png(path, w=64, h=48):
    from PIL import Image

    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def test_dataset_drops_and_counts_bad_shapes(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        _write_png(tmp_path / name)
    tri = [10.0, 10.0, 30.0, 10.0, 20.0, 30.0]
    data = {
        "images": [
            {"id": 1, "file_name": str(tmp_path / "a.png"), "width": 64, "height": 48},
            {
                "id": 2,
                "file_name": str(tmp_path / "b.png"),
                "width": 64,
                "height": 48,
                "studio_status": "done",
            },  # fmt: skip
            {
                "id": 3,
                "file_name": str(tmp_path / "c.png"),
                "width": 64,
                "height": 48,
                "studio_status": "new",
            },  # fmt: skip
            {"id": 4, "file_name": str(tmp_path / "gone.png"), "width": 64, "height": 48},
        ],
        "categories": [{"id": 7, "name": "x"}, {"id": 9, "name": "y"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 5, 20, 10], "segmentation": []},
            {
                "id": 2,
                "image_id": 1,
                "category_id": 9,
                "bbox": [10, 10, 20, 20],
                "segmentation": [tri],
            },  # fmt: skip
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [1, 1, 0.5, 8], "segmentation": []},
            {
                "id": 4,
                "image_id": 1,
                "category_id": 9,
                "bbox": [0, 0, 20, 0],
                "segmentation": [[0, 0, 10, 0, 20, 0]],
            },  # fmt: skip
            {
                "id": 5,
                "image_id": 1,
                "category_id": 9,
                "bbox": [0, 0, 9, 9],
                "segmentation": [[0, 0, 9, 9]],
            },  # fmt: skip
            {
                "id": 6,
                "image_id": 1,
                "category_id": 7,
                "bbox": [2, 2, 9, 9],
                "segmentation": [],
                "iscrowd": 1,
            },  # fmt: skip
            {"id": 7, "image_id": 1, "category_id": 99, "bbox": [2, 2, 9, 9], "segmentation": []},
        ],
    }
    snap = Snapshot(data)
    report = DataReport()
    samples = snap.samples([1, 2, 3, 4], "instance_segmentation", report)
    assert [s.image_id for s in samples] == [1, 2]  # 3 unlabelled, 4 missing
    assert samples[0].labels == [1, 2]  # category 7 -> label 1, 9 -> 2
    assert report.counts == {
        "tiny_boxes": 1,
        "degenerate_polygons": 2,
        "crowd": 1,
        "unknown_category": 1,
        "box_as_mask": 2,  # the kept box, and the tiny one before it was dropped
        "unlabelled_images": 1,
        "missing_files": 1,
    }
    assert report.negatives == 1 and len(report.warnings()) == 7

    ds = SnapshotDataset(
        samples,
        "instance_segmentation",
        build_transforms("instance_segmentation", True, image_size=32),
    )
    image, target = ds[0]
    assert (
        image.dtype == torch.float32
        and image.shape[0] == 3
        and 0 <= image.min() <= image.max() <= 1
    )
    assert target["boxes"].shape == (2, 4) and target["masks"].shape[0] == 2
    assert target["masks"].shape[-2:] == image.shape[-2:]
    assert target["orig_size"] == (48, 64) and target["image_id"] == 1
    _, neg = ds[1]  # a negative sample: empty, well-shaped targets
    assert (
        neg["boxes"].shape == (0, 4) and neg["labels"].shape == (0,) and neg["masks"].shape[0] == 0
    )

    sem = SnapshotDataset(
        samples, "semantic_segmentation", build_transforms("semantic_segmentation", False)
    )
    _, t = sem[0]
    assert t["sem_mask"].dtype == torch.int64 and set(t["sem_mask"].unique().tolist()) <= {0, 1, 2}
    assert (t["sem_mask"] == 2).sum() > 100  # the triangle


def test_grouped_batch_sampler_covers_each_index_once_and_skips():
    from torch.utils.data import DistributedSampler

    # Sequential order, alternating groups: every batch holds one group.
    b = GroupedBatchSampler(range(8), [0, 1] * 4, 2)
    assert list(b) == [[0, 2], [1, 3], [4, 6], [5, 7]]
    # Leftovers of different groups are batched together rather than dropped.
    assert list(GroupedBatchSampler(range(5), [0, 1, 2, 0, 1], 2)) == [[0, 3], [1, 4], [2]]

    groups = [i % 3 for i in range(11)]
    seen: list[int] = []
    for rank in (0, 1):
        s = DistributedSampler(range(11), num_replicas=2, rank=rank, shuffle=True, seed=3)
        b = GroupedBatchSampler(s, groups, 2)
        b.set_epoch(4)
        batches = list(b)
        assert len(batches) == len(b) == 3  # ceil(6 / 2), the same on both ranks
        b.set_epoch(4)
        b.skip(2)
        assert len(b) == 1 and list(b) == batches[2:]
        assert list(b) == batches  # a skip applies to one pass only
        seen += [i for batch in batches for i in batch]
    assert set(seen) == set(range(11)) and len(seen) == 12  # the sampler pads 11 to 12


# --- evaluation ------------------------------------------------------------------------


def test_semantic_metrics_from_confusion():
    from studio.ml.evaluation.coco import confusion_matrix, semantic_metrics

    target = torch.tensor([[0, 1, 1], [2, 2, 255]])  # 255: ignored
    pred = torch.tensor([[0, 1, 2], [2, 2, 1]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.sum() == 5
    m = semantic_metrics(cm, ["a", "b"])
    # a: tp 1, fn 1 -> IoU 1/2, Dice 2/3; b: tp 2, fp 1 -> IoU 2/3, Dice 4/5
    assert m["IoU"] == pytest.approx({"a": 0.5, "b": 2 / 3})
    assert m["Dice"] == pytest.approx({"a": 2 / 3, "b": 0.8})
    assert m["mIoU"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["pixel_acc"] == pytest.approx(4 / 5)


def _fake_results(gt: dict, rng: np.random.Generator, with_masks: bool) -> list[dict]:
    """Jittered ground truth (sometimes with the wrong class) plus false positives."""
    cats = [c["id"] for c in gt["categories"]]
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    out = []
    for a in gt["annotations"]:
        if rng.random() < 0.2:
            continue  # missed
        x, y, w, h = a["bbox"]
        j = rng.normal(0, 0.1 * max(w, h), 4)
        box = [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])]
        cat = a["category_id"] if rng.random() < 0.85 else int(rng.choice(cats))
        out.append({"image_id": a["image_id"], "category_id": cat, "bbox": box,
                    "score": float(rng.random())})  # fmt: skip
    for im in gt["images"]:
        for _ in range(int(rng.integers(0, 3))):
            H, W = sizes[im["id"]]
            x, y = rng.uniform(0, W - 10), rng.uniform(0, H - 10)
            out.append({"image_id": im["id"], "category_id": int(rng.choice(cats)),
                        "bbox": [x, y, float(rng.uniform(4, 30)), float(rng.uniform(4, 30))],
                        "score": float(rng.random())})  # fmt: skip
    if with_masks:
        for r in out:
            H, W = sizes[r["image_id"]]
            x, y, w, h = r["bbox"]
            rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w * 0.8, y + h, x, y + h]], H, W)[0]
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    return out


def _pycocotools_direct(gt_file, results_file, iou_type, cat_ids=None):
    gt = COCO(str(gt_file))
    dt = gt.loadRes(str(results_file))
    E = COCOeval(gt, dt, iou_type)
    if cat_ids is not None:
        E.params.catIds = cat_ids
    E.evaluate()
    E.accumulate()
    E.summarize()
    return E.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_evaluation_equals_pycocotools(project, tmp_path, iou_type):
    from studio.ml.data.snapshot import write_snapshot

    snap_file = tmp_path / "dataset.json"
    write_snapshot(project, snap_file)
    snap = Snapshot.load(snap_file)
    gt = snap.coco_gt(list(snap.images), iou_type)
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt))
    results = _fake_results(gt, np.random.default_rng(0), iou_type == "segm")
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(results))

    ours = coco_evaluate(json.loads(gt_file.read_text()), results, iou_type)
    direct = _pycocotools_direct(gt_file, res_file, iou_type)
    assert [ours[k] for k in STAT_NAMES] == [float(v) for v in direct]  # exactly
    assert 0 < ours["AP"] < 1
    for cat_id, ap in ours["per_class"].items():
        assert ap == float(_pycocotools_direct(gt_file, res_file, iou_type, [cat_id])[0])
    assert "id" not in results[0]  # the caller's list is left as it was


def test_evaluation_of_model_outputs_equals_pycocotools(project, tmp_path):
    """The whole path: a model's outputs -> COCO results -> metrics, against pycocotools
    run directly on the results it produced."""
    run = create_run(project, tiny_config(model=TINY_MASK, task="instance_segmentation", epochs=1))
    train_run(run.dir)
    ckpt = load_checkpoint(run.dir / LAST)
    snap = Snapshot.load(run.dir / "dataset.json")
    model = engine.build_with_state(TrainConfig.from_dict(ckpt["config"]), 4, ckpt["model"]).model
    ids = snap.split_ids("val")
    samples = snap.samples(ids, "instance_segmentation", DataReport(), training=False)
    ds = SnapshotDataset(
        samples, "instance_segmentation", build_transforms("instance_segmentation", False)
    )
    pairs = run_model(
        model,
        build_eval_loader(ds, batch_size=2, workers=0),
        torch.device("cpu"),
    )
    res = evaluate_outputs(pairs, "instance_segmentation", snap, ids)
    assert res.results and "segmentation" in res.results[0]
    gt_file, res_file = tmp_path / "gt.json", tmp_path / "res.json"
    for iou_type in ("bbox", "segm"):
        gt_file.write_text(json.dumps(snap.coco_gt(ids, iou_type)))
        res_file.write_text(json.dumps(res.results))
        direct = _pycocotools_direct(gt_file, res_file, iou_type)
        assert [res.metrics[iou_type][k] for k in STAT_NAMES] == [float(v) for v in direct]


# --- training --------------------------------------------------------------------------


def test_loss_falls_when_overfitting_a_few_images(project):
    _only_train(project, 4)
    cfg = tiny_config(epochs=12, batch_size=2, hflip=0.0, color_jitter=0.0, scale_range=(1.0, 1.0),
                      lr=3e-3, warmup_iters=3)  # fmt: skip
    run = create_run(project, cfg)
    msgs = Collect()
    result = train_run(run.dir, emit=msgs)
    losses = [m.losses["loss"] for m in msgs.of(Iteration)]
    assert len(losses) == 24 and result.iteration == 24
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"loss: first 5 iterations {first:.3f}, last 5 {last:.3f}")
    assert last < 0.7 * first, (first, last)
    assert all(math.isfinite(v) for v in losses)
    lrs = [m.lr for m in msgs.of(Iteration)]
    assert lrs[0] < lrs[3]  # warmup
    # The full rate until three quarters of the run (lr_decay_start), then a cosine decay.
    assert lrs[int(0.7 * len(lrs))] == max(lrs) and lrs[-1] < 0.15 * max(lrs)
    assert msgs.of(Started)[0].num_val == 0 and msgs.of(Finished)[0].best_metric is None
    assert (run.dir / "best.pt").is_file()  # without validation, the final weights


def test_train_evaluates_records_and_becomes_current_model(project):
    run = create_run(project, tiny_config(epochs=2))
    msgs = Collect()
    result = execute_run(project, run.id, emit=msgs)
    assert result.status == "finished" and result.epoch == 2
    started = msgs.of(Started)[0]
    assert started.num_train + started.num_val == 12 and started.num_val >= 1
    epochs = msgs.of(EpochMetrics)
    assert [m.epoch for m in epochs] == [0, 1]
    for key in ("bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/APs", "bbox/AR1", "bbox/AR10",
                "bbox/AR100", "train/loss"):  # fmt: skip
        assert key in epochs[0].metrics
    assert any(k.startswith("bbox/AP/") for k in epochs[0].metrics)  # per class
    rec = project.run(run.id)
    assert rec.status == "finished" and rec.epoch == 2 and rec.best_metric_name == "bbox/AP"
    assert project.current_model() == run.id
    iters = project.metrics(run.id, "iter")
    assert {r[1] for r in iters} == set(range(1, result.iteration + 1))
    assert {"loss", "lr", "images_per_s"} <= {r[3] for r in iters}
    assert any(r[3] == "bbox/AP" for r in project.metrics(run.id, "epoch"))
    ckpt = load_checkpoint(run.dir / "best.pt")
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "iteration", "config",
                "class_names", "best_metric"):  # fmt: skip
        assert key in ckpt
    assert ckpt["class_names"] == [c.name for c in project.classes()]
    assert not (run.dir / "train.pid").exists()


def test_instance_segmentation_reports_segm_metrics(project):
    cfg = tiny_config(model=TINY_MASK, task="instance_segmentation", epochs=1)
    run = create_run(project, cfg)
    msgs = Collect()
    train_run(run.dir, emit=msgs)
    metrics = msgs.of(EpochMetrics)[0].metrics
    assert "segm/AP" in metrics and "bbox/AP" in metrics
    assert msgs.of(EpochMetrics)[0].best_metric_name == "segm/AP"


def test_stop_and_resume_in_process(project):
    cfg = tiny_config(epochs=2)
    run = create_run(project, cfg)
    first = Collect()
    result = train_run(run.dir, emit=first, should_stop=lambda: len(first.of(Iteration)) >= 4)
    assert result.status == "stopped"
    per_epoch = first.of(Started)[0].iters_per_epoch
    assert first.of(Stopped)[0].epoch == 4 // per_epoch
    ckpt = load_checkpoint(run.dir / LAST)
    assert ckpt["iteration"] == 4 and ckpt["epoch"] == 4 // per_epoch
    assert ckpt["epoch_step"] == 4 % per_epoch

    second = Collect()
    result = train_run(run.dir, resume=True, emit=second)
    started = second.of(Started)[0]
    assert (started.epoch, started.iteration) == (4 // per_epoch, 4)
    assert first.of(Started)[0].elapsed == 0.0
    assert started.elapsed == pytest.approx(ckpt["elapsed"])  # the budget used before
    its = [m.iteration for m in second.of(Iteration)]
    assert its == list(range(5, 2 * per_epoch + 1))  # continues at the next batch
    assert result.status == "finished" and result.epoch == 2
    final = load_checkpoint(run.dir / LAST)
    steps = {int(s["step"]) for s in final["optimizer"]["state"].values()}
    assert steps == {2 * per_epoch}  # AdamW's state carried over the stop

    # The learning rates equal those of a run that was never stopped.
    run2 = create_run(project, cfg)
    straight = Collect()
    train_run(run2.dir, emit=straight)
    lrs = [m.lr for m in first.of(Iteration) + second.of(Iteration)]
    assert lrs == pytest.approx([m.lr for m in straight.of(Iteration)])


def test_backbone_frozen_first_then_trained_at_a_tenth_of_the_lr(project):
    # A tenth: the default for a pretrained backbone (the tiny one is random: asked for).
    run = create_run(project, tiny_config(epochs=2, freeze_epochs=1, backbone_lr_mult=0.1))
    msgs = Collect()
    per_epoch = 3  # 10 train images, batches of 4
    train_run(run.dir, emit=msgs, should_stop=lambda: len(msgs.of(Iteration)) >= per_epoch)
    initial = tiny_detector(4).model.state_dict()
    after_frozen = load_checkpoint(run.dir / LAST)

    def changed(state, prefix):
        return any(not torch.equal(state[k], initial[k]) for k in state if k.startswith(prefix)
                   and state[k].is_floating_point())  # fmt: skip

    assert not changed(after_frozen["model"], "backbone.body.")
    assert changed(after_frozen["model"], "roi_heads.")
    train_run(run.dir, resume=True)
    final = load_checkpoint(run.dir / LAST)
    assert changed(final["model"], "backbone.body.")
    lrs = {g["part"]: g["initial_lr"] for g in final["optimizer"]["param_groups"]}
    assert lrs["backbone"] == pytest.approx(0.1 * lrs["head"])


def test_time_budget_stops_evaluates_and_saves(project):
    run = create_run(project, tiny_config(epochs=None, time_budget=3.0))
    msgs = Collect()
    result = train_run(run.dir, emit=msgs)
    assert result.status == "finished" and result.reason == "time_budget"
    assert "bbox/AP" in msgs.of(EpochMetrics)[-1].metrics
    assert load_checkpoint(run.dir / LAST)["status"] == "finished"


def test_early_stopping(project):
    run = create_run(project, tiny_config(epochs=10, patience=1, lr=1e-12, min_delta=0.5))
    result = train_run(run.dir)
    assert result.reason == "early_stopping" and result.epoch == 2


def _nan_on(monkeypatch, bad_calls: set[int]) -> None:
    """Make the model's training losses NaN on the given (1-based) forward calls."""
    real_build = engine.build_for_config

    def build(cfg, num_classes, **kw):
        bundle = real_build(cfg, num_classes, **kw)
        base, calls = type(bundle.model), [0]

        class NanLosses(base):  # on the class: copies (the weight average) stay models
            def forward(self, images, targets=None):
                out = base.forward(self, images, targets)
                if self.training:
                    calls[0] += 1
                    if calls[0] in bad_calls:
                        out = {k: v * float("nan") for k, v in out.items()}
                return out

        bundle.model.__class__ = NanLosses
        return bundle

    monkeypatch.setattr(engine, "build_for_config", build)


def test_nonfinite_loss_is_skipped(project, monkeypatch):
    _nan_on(monkeypatch, {2})
    run = create_run(project, tiny_config(epochs=1))
    msgs = Collect()
    result = train_run(run.dir, emit=msgs)
    notices = msgs.of(Notice)
    assert len(notices) == 1 and "non-finite loss" in notices[0].text
    per_epoch = msgs.of(Started)[0].iters_per_epoch
    assert result.status == "finished" and result.iteration == per_epoch - 1
    assert all(math.isfinite(m.losses["loss"]) for m in msgs.of(Iteration))


def test_three_nonfinite_losses_in_a_row_fail_the_run(project, monkeypatch):
    _nan_on(monkeypatch, set(range(2, 100)))
    run = create_run(project, tiny_config(epochs=3))
    msgs = Collect()
    with pytest.raises(TrainingError, match="not finite .* 3 iterations in a row"):
        execute_run(project, run.id, emit=msgs)
    assert len(msgs.of(Notice)) == 3
    rec = project.run(run.id)
    assert rec.status == "failed" and "3 iterations in a row" in rec.error


def test_snapshot_is_frozen_when_labels_change(project):
    run = create_run(project, tiny_config(epochs=1))
    snap_file = run.dir / "dataset.json"
    before = hashlib.sha256(snap_file.read_bytes()).hexdigest()
    n_train = len(Snapshot.load(snap_file).split_ids("train"))
    # Labelling goes on: shapes deleted, a class renamed, a class added, images removed.
    images = project.images()
    project.delete_annotations([a.id for a in project.annotations([images[0].id])])
    project.rename_class(project.classes()[0].id, "renamed")
    project.add_class("new class")
    project.delete_images([im.id for im in project.images("train")[:4]])
    assert hashlib.sha256(snap_file.read_bytes()).hexdigest() == before
    msgs = Collect()
    train_run(run.dir, emit=msgs)
    assert msgs.of(Started)[0].num_train == n_train  # trained on the snapshot, not the DB
    assert hashlib.sha256(snap_file.read_bytes()).hexdigest() == before
    assert load_checkpoint(run.dir / LAST)["class_names"][0] != "renamed"


def test_callbacks_hook_in_without_editing_the_loop(project):
    from studio.ml.train.callbacks import Callback, StopRequest

    class Recorder(Callback):
        def __init__(self) -> None:
            self.events: list = []

        def on_fit_start(self, trainer) -> None:
            self.events.append("fit_start")

        def on_iteration_end(self, trainer, step) -> None:
            self.events.append("iteration")

        def on_validation_end(self, trainer, metrics) -> None:
            self.events.append("validation")

        def on_epoch_end(self, trainer, end) -> None:
            self.events.append(("epoch_end", end.epoch))
            if end.epoch == 1:
                trainer.request_finish("enough")

        def on_checkpoint(self, trainer, status, is_best) -> None:
            self.events.append(("checkpoint", str(status)))

        def on_fit_end(self, trainer, result) -> None:
            self.events.append(("fit_end", result.reason))

    rec = Recorder()
    run = create_run(project, tiny_config(epochs=5))
    result = train_run(run.dir, callbacks=[rec])
    assert result.status == "finished" and result.reason == "enough" and result.epoch == 2
    assert rec.events[0] == "fit_start" and rec.events[-1] == ("fit_end", "enough")
    saves = [e for e in rec.events if isinstance(e, tuple) and e[0] == "checkpoint"]
    assert saves == [("checkpoint", "running"), ("checkpoint", "finished")]
    assert rec.events.count("validation") == 2 and "iteration" in rec.events
    assert load_checkpoint(run.dir / LAST)["reason"] == "enough"

    class Planner(Callback):  # a finishing request, read before every batch
        stop_request = StopRequest("planned")

        def should_stop(self, trainer) -> bool:
            return trainer.state.iteration >= 2

    run2 = create_run(project, tiny_config(epochs=5))
    msgs = Collect()
    result = train_run(run2.dir, emit=msgs, callbacks=[Planner()])
    assert result.reason == "planned" and result.iteration == 2 and result.epoch == 1
    assert "bbox/AP" in msgs.of(EpochMetrics)[-1].metrics  # the cut-short epoch was validated
    assert msgs.of(Finished)[0].reason == "planned"


@pytest.mark.parametrize(
    "setting, value, says",
    [("hflip", 2.0, "hflip must be in [0, 1], got 2.0"),
     ("color_jitter", -1.0, "color jitter must be in [0, 1], got -1.0"),
     ("lr_decay_start", 3.0, "lr decay start must be in [0, 1], got 3.0"),
     ("backbone_lr_mult", -2.0, "backbone lr mult must be in [0, 10], got -2.0")],
)  # fmt: skip
def test_out_of_range_recipe_settings_are_refused(setting, value, says, demo_dir, capsys):
    """They trained to "finished" (or crashed in torchvision for --hflip 2), each
    leaving a run behind; now one line and exit 2, before any run exists."""
    from studio.cli import main

    with pytest.raises(StudioError, match=re.escape(says)):
        tiny_config(**{setting: value}).validate()
    flag = "--" + setting.replace("_", "-")
    assert main(["train", str(demo_dir), flag, str(value), "--time-budget", "5"]) == 2
    assert capsys.readouterr().err.strip() == f"studio: error: {says}"
    assert not (demo_dir / "runs").exists() or not any((demo_dir / "runs").iterdir())

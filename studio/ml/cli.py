"""What the training-related CLI verbs do, as plain functions (the CLI wires argparse).

Every function takes a project folder and plain values, returns data (dicts, lists) or
raises `StudioError` with a message fit for the user. `train` trains in this process
(also one rank of ``torchrun --nproc_per_node N -m studio train ...``); the window uses
`run.process.TrainingProcess` instead. The verbs live where their work is (run/,
infer/); this module ties them to the command line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.import_report import count_of
from studio.core.kinds import RunStatus, Split
from studio.core.project import Project
from studio.ml.data.dataset import SnapshotDataset
from studio.ml.data.loaders import build_eval_loader
from studio.ml.data.snapshot import SNAPSHOT_NAME, DataReport, Snapshot, write_snapshot
from studio.ml.data.transforms import build_transforms, load_max_side
from studio.ml.evaluation.coco import evaluate_outputs, run_model
from studio.ml.infer.predict import (
    DEFAULT_SCORE_THRESHOLD,
    load_model,
)
from studio.ml.run.local import train
from studio.ml.run.recipe import DEFAULT_DETECTOR, DEFAULT_SEGMENTER, default_model
from studio.ml.run.recorder import finished_text
from studio.ml.run.runs import RESUMABLE, find_run, run_checkpoint, runs_list
from studio.ml.train.device import auto_device
from studio.ml.train.messages import Message

# Importable from here as before (analyses and scripts use them).
__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_SEGMENTER",
    "RESUMABLE",
    "auto_device",
    "default_model",
    "eval_command",
    "evaluate_run",
    "export_model",
    "export_model_command",
    "find_run",
    "models_command",
    "predict_command",
    "predict_run",
    "runs_command",
    "runs_list",
    "train",
    "train_command",
    "weights_command",
]


def evaluate_run(
    project_dir: Path | str,
    run: int | str,
    split: str = Split.VAL,
    *,
    checkpoint: str = "best",
    device: str = "auto",
    current_labels: bool = False,
) -> dict[str, Any]:
    """COCO metrics of a run's model on `split` ("val", "train", "test").

    By default against the run's frozen dataset.json (reproducible; with an empty val
    split, the images the run held out); `current_labels=True` evaluates the same
    images (those still in the project) against the project's labels now. Returns
    {"bbox": {"AP", "AP50", ..., "per_class": {...}}, "segm": {...} (masks)} or
    {"semantic": {"mIoU", ...}}, plus "images": n."""
    with Project.open(project_dir) as p:
        rec = find_run(p, run)
        ckpt = run_checkpoint(rec, checkpoint)
        frozen = Snapshot.load(rec.dir / SNAPSHOT_NAME)  # how the run split its images
        snap = frozen
        if current_labels:
            # Beside the run's own (its images' paths resolve from there), named apart.
            tmp = rec.dir / f"eval_snapshot.{os.getpid()}.{id(p)}.json"
            try:
                write_snapshot(p, tmp)
                snap = Snapshot.load(tmp)
            finally:
                tmp.unlink(missing_ok=True)
    lm = load_model(ckpt, device)
    # Classes added, removed or reordered since training: evaluate the model's classes,
    # matched by database id.
    snap = snap.with_categories(lm.category_ids, lm.class_names)
    cfg = lm.config
    if split in (Split.VAL, Split.TRAIN):
        # As the run split them: recomputed on today's image list, a held-out share
        # would be other images (deleting one changed 92 of 100), most of them trained on.
        train, val, _ = frozen.train_val_ids(cfg.val_fraction, cfg.seed)
        ids = [i for i in (val if split == Split.VAL else train) if i in snap.images]
    else:
        ids = snap.split_ids(split)
    report = DataReport()
    samples = snap.samples(ids, lm.task, report, training=False)
    if not samples:
        raise StudioError(f"no images in the {split} split to evaluate on{report.missing_note()}")
    # Decoded as training's validation and `studio predict` decode (at most the largest
    # side the model resizes to): at full size, AP differed slightly from both.
    max_side = load_max_side(lm.image_size)
    ds = SnapshotDataset(samples, lm.task, build_transforms(lm.task, False), max_side)
    loader = build_eval_loader(ds, batch_size=cfg.batch_size, workers=0)
    pairs = run_model(lm.model, loader, lm.device)
    res = evaluate_outputs(pairs, lm.task, snap, [s.image_id for s in samples])
    return {**res.metrics, "images": len(samples), "checkpoint": str(ckpt)}


def predict_run(
    project_dir: Path | str,
    run: int | str | None = None,
    split: str | None = None,
    out: Path | str | None = None,
    *,
    checkpoint: str = "best",
    device: str = "auto",
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Predict the project's images (of `split`, or all) with a run's model (default: the
    project's current model) and store them with scores; images whose pixels and model
    did not change since they were last predicted are skipped (`force`: predict all).
    With `out`, also write those images' predictions as a COCO results JSON.

    Returns {"run_id", "images", "predicted", "skipped", "predictions" (rows stored
    for those images), "missing_files", "unreadable" ([file, reason] of images that
    could not be decoded, left without predictions), "out"}."""
    from studio.ml.analysis.stored_predictions import results_for, update_predictions

    if out is not None and Path(out).is_dir():
        raise StudioError(f"{out}: is a folder; give the .json file to write the predictions to")
    with Project.open(project_dir) as p:
        if run is None:
            current = p.current_model()
            if current is None:
                raise StudioError("no current model: train a run or name one")
            run = current
        rec = find_run(p, run)
        ckpt = run_checkpoint(rec, checkpoint)
        images = p.images(split)
        rep = update_predictions(
            p, rec, ckpt, images, device=device, score_floor=score_threshold,
            batch_size=batch_size, force=force, progress=progress,
        )  # fmt: skip
        results = results_for(p, rec.id, [im.id for im in images])
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(results), encoding="utf-8")
        os.replace(tmp, out)
    return {
        "run_id": rec.id,
        "images": rep.images,
        "predicted": rep.predicted,
        "skipped": rep.skipped,
        "predictions": len(results),
        "missing_files": rep.missing_files,
        "unreadable": [list(u) for u in rep.unreadable],
        "out": str(out) if out is not None else None,
    }


def export_model(
    project_dir: Path | str,
    run: int | str,
    fmt: str = "torchscript",
    out: Path | str | None = None,
    *,
    checkpoint: str = "best",
) -> dict[str, Any]:
    """Export a run's model ("torchscript" | "onnx") to `out` (default: the run folder).
    Returns {"run_id", "format", "out", "metadata"}."""
    from studio.ml.infer.export import export_checkpoint, metadata_path

    with Project.open(project_dir) as p:
        rec = find_run(p, run)
    ckpt = run_checkpoint(rec, checkpoint)
    if out is None:
        out = rec.dir / ("model.torchscript.pt" if fmt == "torchscript" else "model.onnx")
    path = export_checkpoint(ckpt, fmt, Path(out))
    return {
        "run_id": rec.id,
        "format": fmt,
        "out": str(path),
        "metadata": str(metadata_path(path)),
    }


# --- argparse adapters for studio/cli.py ------------------------------------------------
# The CLI calls these with its parsed arguments; they print (results to stdout, progress
# to stderr) and return the exit status. The functions above stay print-free.


class _ProgressBar:
    """Renders training messages as a tqdm bar with the losses, to stderr."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, msg: Message) -> None:
        import sys

        from tqdm import tqdm

        from studio.ml.train.messages import (
            EpochMetrics,
            Finished,
            Iteration,
            Notice,
            Started,
            Stopped,
        )

        if isinstance(msg, Started):
            for w in msg.warnings:
                tqdm.write(f"warning: {w}", file=sys.stderr)
            tqdm.write(
                f"run {msg.run_id}: {msg.model} ({msg.task}) on {msg.device}"
                + (f" ({msg.precision})" if msg.precision != "float32" else "")
                + ", "
                f"{msg.num_train} train / {msg.num_val} val images",
                file=sys.stderr,
            )
            total = msg.epochs * msg.iters_per_epoch if msg.epochs else None
            self.bar = tqdm(
                total=total, initial=msg.iteration, unit="it", file=sys.stderr, dynamic_ncols=True
            )
        elif isinstance(msg, Iteration) and self.bar is not None:
            self.bar.set_description(f"epoch {msg.epoch + 1}", refresh=False)
            self.bar.set_postfix(
                loss=f"{msg.losses.get('loss', float('nan')):.3f}",
                lr=f"{msg.lr:.2e}",
                img_s=f"{msg.images_per_s:.1f}",
                refresh=False,
            )
            self.bar.update(1)
        elif isinstance(msg, EpochMetrics):
            keys = [k for k in ("train/loss", msg.best_metric_name) if k and k in msg.metrics]
            text = ", ".join(f"{k} {msg.metrics[k]:.4f}" for k in keys)
            best = " (best)" if msg.is_best else ""
            tqdm.write(f"epoch {msg.epoch + 1}: {text}{best}", file=sys.stderr)
        elif isinstance(msg, Notice):
            tqdm.write(f"warning: {msg.text}", file=sys.stderr)
        elif isinstance(msg, Finished | Stopped):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _say(line: str) -> None:
    print(f"studio: {line}", file=sys.stderr)


def train_command(a: Any) -> int:
    """`studio train DIR [--model M] [--epochs N] [--time-budget S] ...`: the recipe with the
    options given on top (see run/options.py); exit 0 when the run finished, 130 when
    stopped (Ctrl-C or SIGTERM; resume with --resume RUN)."""
    from studio.ml.run.options import settings_from_args

    settings = settings_from_args(a)
    device = settings.pop("device", "auto")
    bar = _ProgressBar()
    try:
        res = train(a.dir, device=device, resume=a.resume, progress=bar, explain=_say, **settings)
    finally:
        bar.close()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if res["status"] == RunStatus.STOPPED:
        done = count_of(res["epoch"], "complete epoch")
        print(f"run {res['run_id']} stopped after {done}; continue with "
              f"--resume {res['run_id']}")  # fmt: skip
        return 130
    metric = (
        f", best {res['best_metric_name']} {res['best_metric']:.4f}"
        if res["best_metric"] is not None
        else ""
    )
    print(f"run {res['run_id']} finished ({res['reason']}) after {res['epoch']} epochs{metric}")
    print(f"checkpoint: {res['checkpoint']}")
    with Project.open(a.dir) as p:
        current = p.current_model()
    if current != res["run_id"]:  # said as the window says it
        how = f"`studio runs {a.dir} --use {res['run_id']}`"
        print(finished_text(res["run_id"], current, how))
    return 0


def weights_command(a: Any) -> int:
    """`studio weights [--model NAME] [--project DIR]`: the pretrained files each model can
    use, whether each is present and where, and where to put a missing one."""
    from studio.ml.models.weights_catalog import format_weights_table, weights_files
    from studio.ml.run.process import use_weights_setting

    if getattr(a, "project", None):
        with Project.open(a.project) as p:
            use_weights_setting(p)
    print(format_weights_table(weights_files(a.model)))
    return 0


def use_run(project_dir: Path | str, run: str | int) -> int:
    """Make a finished run the project's model (what predict and prelabel use when no run
    is named); returns its id."""
    with Project.open(project_dir) as p:
        rec = find_run(p, str(run))
        if rec.status != RunStatus.FINISHED:
            raise StudioError(f"run {rec.id} is {rec.status}: only a finished run can be the model")
        p.set_current_model(rec.id)
        return rec.id


def runs_command(a: Any) -> int:
    if getattr(a, "use", None) is not None:
        print(f"run {use_run(a.dir, a.use)} is now the project's model")
    runs = runs_list(a.dir)
    if getattr(a, "json", False):
        _print_json(runs)
        return 0
    if not runs:
        print("no runs")
        return 0
    print(f"{'id':>4}  {'status':<9} {'epoch':>5}  {'best':>8}  {'model':<40} created")
    for r in runs:
        best = f"{r['best_metric']:.4f}" if r["best_metric"] is not None else "-"
        mark = "*" if r["current"] else " "
        print(f"{r['id']:>4}{mark} {r['status']:<9} {r['epoch']:>5}  {best:>8}  "
              f"{r['model']:<40} {r['created']}")  # fmt: skip
        if r["error"]:
            print(f"       {r['error']}")
    return 0


def eval_command(a: Any) -> int:
    current = bool(getattr(a, "current_labels", False))
    res = evaluate_run(a.dir, a.run, a.split, current_labels=current)
    if getattr(a, "json", False):
        _print_json(res)
        return 0
    labels = "the project's labels now" if current else "labels as the run trained"
    print(f"{res['images']} {a.split} images, {labels}, {res['checkpoint']}")
    for group, values in res.items():
        if not isinstance(values, dict):
            continue
        print(group)
        for k, v in values.items():
            if isinstance(v, dict):
                label = "AP per class" if k == "per_class" else k
                for name, x in v.items():
                    print(f"  {label:<12} {name:<24} {x:.4f}")
            else:
                print(f"  {k:<12} {v:.4f}")
    return 0


def predict_command(a: Any) -> int:
    res = predict_run(a.dir, a.run, a.split, a.out)
    kept = f", {res['skipped']} unchanged since their last prediction" if res["skipped"] else ""
    with_preds = res["images"] - res["missing_files"] - len(res["unreadable"])
    print(f"run {res['run_id']}: {res['predicted']} images predicted{kept}; "
          f"{res['predictions']} predictions stored for those {with_preds} images"
          + (f", written to {res['out']}" if res["out"] else ""))  # fmt: skip
    if res["missing_files"]:
        print(f"{res['missing_files']} image files are missing and were skipped")
    for path, reason in res["unreadable"]:
        print(f"skipped {path}: {reason}")
    return 0


def export_model_command(a: Any) -> int:
    res = export_model(a.dir, a.run, a.format, a.out)
    print(f"exported run {res['run_id']} as {res['format']} to {res['out']} "
          f"(classes and conventions in {res['metadata']})")  # fmt: skip
    return 0


def models_command(a: Any) -> int:
    """`studio models [--task T] [--no-flops]` lists the registry; `--describe NAME`
    prints each part's outputs, strides, parameters and GFLOPs."""
    from studio.ml import models

    options = {k: getattr(a, k) for k in ("backbone", "neck", "head", "attention") if getattr(a, k)}
    if not a.describe and (options or a.image_size):
        given = ", ".join(f"--{k.replace('_', '-')}" for k in [*options, "image_size"]
                          if k in options or (k == "image_size" and a.image_size))  # fmt: skip
        raise StudioError(
            f"{given}: these describe one model, with --describe NAME (the list shows "
            "each model at its own input size)"
        )
    if a.describe:
        parts = models.describe_model(a.describe, image_size=a.image_size or 640, **options)
        print(models.format_description(parts))
        return 0
    print(models.format_model_table(models.list_models(a.task), with_flops=not a.no_flops))
    return 0

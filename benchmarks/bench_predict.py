"""Prediction benchmark (a script, not a test): `studio predict` over the demo images with
the one-click CPU model, against a plain inference loop on the same model and images.

    python benchmarks/bench_predict.py              # 1,000 demo images
    python benchmarks/bench_predict.py --quick      # 100 images

Studio: `predict_run(project, run, force=True)`, what `studio predict DIR --run R` and the
Inspect panel's Predict do: decode, resize, infer in batches, store every prediction
above the run's score floor in the database. Plain loop: PIL decode, `to_tensor`,
`model(batch)` under `torch.inference_mode()`, batches of the same size, nothing stored.
The model is the recipe's CPU detector after a 15-second training (its speed does not
depend on how well it was trained). Printed: images/s of both and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms.functional import to_tensor  # noqa: E402

from studio.core.demo import create_demo_project  # noqa: E402
from studio.core.project import Project  # noqa: E402
from studio.ml.cli import predict_run  # noqa: E402
from studio.ml.infer.predict import load_model  # noqa: E402
from studio.ml.run.process import create_run, execute_run  # noqa: E402
from studio.ml.run.recipe import default_model, recipe  # noqa: E402
from studio.ml.train.config import TrainConfig  # noqa: E402

BATCH = 4


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def trained_run(folder: Path) -> tuple[int, Path, str]:
    """A finished run of the recipe's CPU model (15 s of training): id, best.pt, model."""
    with Project.open(folder) as p:
        model = default_model(p, "cpu")
        cfg = TrainConfig.from_dict({**recipe(model, "cpu"), "time_budget": 15.0})
        cfg.device = "cpu"
        run = create_run(p, cfg)
        execute_run(p, run.id)
    return run.id, run.dir / "best.pt", model


def plain_loop(checkpoint: Path, paths: list[Path]) -> float:
    """Seconds for a plain inference loop over `paths` in batches of BATCH."""
    model = load_model(checkpoint, "cpu").model
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(paths), BATCH):
            batch = [to_tensor(Image.open(p).convert("RGB")) for p in paths[i : i + BATCH]]
            model(batch)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    ap.add_argument("--quick", action="store_true", help="100 images")
    args = ap.parse_args(argv)
    n = 100 if args.quick else args.images
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="studio-bench-predict-") as d:
        # No pretrained file anywhere: the recipe's offline CPU model, as on a fresh machine.
        os.environ["TORCH_HOME"] = str(Path(d) / "torch")
        os.environ["STUDIO_WEIGHTS_DIR"] = str(Path(d) / "weights")
        folder = Path(d) / "demo"
        create_demo_project(folder, n_images=n).close()
        log(f"demo project: {n} images; training 15 s ...")
        run_id, ckpt, model = trained_run(folder)
        with Project.open(folder) as p:
            paths = [p.abs_path(im.path) for im in p.images()]
        # Plain loop first and Studio second, then again the other way round: the
        # order's cache effects cancel out in the sums.
        plain = plain_loop(ckpt, paths)
        t0 = time.perf_counter()
        res = predict_run(folder, run_id, device="cpu", batch_size=BATCH, force=True)
        studio = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict_run(folder, run_id, device="cpu", batch_size=BATCH, force=True)
        studio += time.perf_counter() - t0
        plain += plain_loop(ckpt, paths)
    ours, theirs = 2 * n / studio, 2 * n / plain
    print(
        f"\nPredict {n} demo images with {model} ({args.threads} thread(s), load average "
        f"{load:.1f} -> {os.getloadavg()[0]:.1f}), two passes each:\n"
        f"  Studio (decode, infer, store {res['predictions']} predictions): {ours:.1f} images/s\n"
        f"  plain loop (PIL, to_tensor, model, nothing stored):      {theirs:.1f} images/s\n"
        f"  ratio {ours / theirs:.2f}x"
    )


if __name__ == "__main__":
    main()

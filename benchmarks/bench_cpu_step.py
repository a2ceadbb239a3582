"""CPU step benchmark (a script, not a test): what a training step of the CPU detector
costs in bfloat16 autocast against float32, and on 1 thread against all cores while
another program keeps a core busy.

    python benchmarks/bench_cpu_step.py             # both parts, about 3 minutes on 2 cores
    python benchmarks/bench_cpu_step.py --steps 2   # quicker

The model is the one-click CPU detector (composable_cspnet_pan_fcos, random init), a
batch of 8 images of 352x264 with two boxes each, AdamW. Part 1 alternates float32 and
bfloat16 autocast steps on one thread (why a CPU trains in float32). Part 2 starts a
busy program (a Python loop, in its own process group) and times steps at the niceness
the window gives training (10), on 1 thread and on every core, in subprocesses (why a
run's threads follow the cores other programs leave free, studio/ml/train/threads.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NICENESS = 10  # studio.ml.run.procinfo.TRAIN_NICENESS


def step_times(threads: int, steps: int, bf16: bool) -> list[float]:
    """Seconds of each of `steps` timed training steps (after one untimed)."""
    import torch

    from studio.ml.models.registry import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(
        "composable_cspnet_pan_fcos", 4, weights="none", backbone_weights="none", image_size=352
    ).model.train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 264, 352, generator=g) for _ in range(8)]
    box = torch.tensor([[10.0, 20.0, 80.0, 90.0], [100.0, 50.0, 200.0, 180.0]])
    targets = [{"boxes": box, "labels": torch.tensor([1, 2])} for _ in range(8)]

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        out.append(time.perf_counter() - t)
    return out


def precision(steps: int) -> None:
    f32 = statistics.median(step_times(1, steps, bf16=False))
    bf = statistics.median(step_times(1, steps, bf16=True))
    print(f"\nPrecision, 1 thread, median of {steps} steps:")
    print(f"  float32            {f32:7.2f} s/step")
    print(f"  bfloat16 autocast  {bf:7.2f} s/step  ({f32 / bf:.2f}x the speed of float32)")


def threads_under_load(steps: int) -> None:
    cores = os.cpu_count() or 1
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        time.sleep(1.0)
        res = {}
        for n in sorted({1, cores}):
            code = (
                f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import bench_cpu_step as b, statistics; "
                f"print(statistics.median(b.step_times({n}, {steps}, False)))"
            )
            out = subprocess.run(
                ["nice", "-n", str(NICENESS), sys.executable, "-c", code],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            res[n] = float(out.stdout.strip().splitlines()[-1])
    finally:
        busy.kill()
        busy.wait()
    print(f"\nThreads, at nice {NICENESS}, with one other program busy on one of {cores} cores:")
    for n, s in res.items():
        print(f"  {n} thread(s)  {s:7.2f} s/step  ({res[1] / s:.2f}x the speed of 1 thread)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case (default 3)")
    ap.add_argument("--part", choices=("precision", "threads", "both"), default="both")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    if args.part in ("precision", "both"):
        precision(args.steps)
    if args.part in ("threads", "both"):
        threads_under_load(args.steps)


if __name__ == "__main__":
    main()

"""Import benchmarks: 100,000 image files; a COCO file with 1,000,000 annotations;
`studio info` on the 100,000-image project.

Prints times and peak memory, and the COCO import as a ratio to pycocotools' own
`COCO()` loading the same file in the same run (absolute times drift between machines;
the ratio does not). Each phase runs in a fresh process so its peak memory is its own.

    python benchmarks/bench_import.py            # full size (several minutes)
    python benchmarks/bench_import.py --quick    # 10x smaller
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_process(fn, *args):
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def make_tiny_images(folder: Path, n: int, size: tuple[int, int] = (8, 8)) -> None:
    """n distinct PNGs: one encode per file of a small random image (distinct bytes, so
    the duplicate check by checksum does not skip them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(exist_ok=True)
        img = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        (sub / f"img_{i:06d}.png").write_bytes(buf.tobytes())


def phase_import_images(project_dir: str, folder: str) -> dict:
    from studio.core.importing import import_images
    from studio.core.project import Project

    t = time.perf_counter()
    with Project.create(project_dir) as p:
        report = import_images(p, [Path(folder)])
    return {
        "seconds": time.perf_counter() - t,
        "added": report.added_images,
        "peak_mib": _peak_rss_mib(),
    }


def make_coco(path: Path, image_folder: Path, n_images: int, per_image: int) -> None:
    """A COCO file referring to images in `image_folder` (640x480 each); half boxes,
    half 8-point polygons."""
    rnd = random.Random(0)
    images, anns = [], []
    aid = 1
    for i in range(n_images):
        images.append({"id": i + 1, "file_name": f"c_{i:06d}.png", "width": 640, "height": 480})
        for j in range(per_image):
            x, y = rnd.uniform(0, 560), rnd.uniform(0, 400)
            w, h = rnd.uniform(4, 80), rnd.uniform(4, 80)
            ann = {"id": aid, "image_id": i + 1, "category_id": 1 + j % 10, "iscrowd": 0,
                   "bbox": [x, y, w, h], "area": w * h}  # fmt: skip
            if j % 2:
                ann["segmentation"] = [[x, y, x + w / 2, y - 0.0, x + w, y, x + w, y + h / 2,
                                        x + w, y + h, x + w / 2, y + h, x, y + h, x, y + h / 2]]  # fmt: skip
            else:
                ann["segmentation"] = []
            anns.append(ann)
            aid += 1
    cats = [{"id": k, "name": f"class_{k}", "supercategory": ""} for k in range(1, 11)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    image_folder.mkdir(parents=True, exist_ok=True)
    base = np.full((480, 640, 3), 127, np.uint8)
    for i in range(n_images):
        base[0, 0] = (i % 256, (i // 256) % 256, 0)  # distinct bytes per file
        ok, buf = cv2.imencode(".png", base, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        (image_folder / f"c_{i:06d}.png").write_bytes(buf.tobytes())


def phase_pycocotools(coco_path: str) -> dict:
    import contextlib
    import io

    from pycocotools.coco import COCO

    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(coco_path)
    return {
        "seconds": time.perf_counter() - t,
        "annotations": len(coco.anns),
        "peak_mib": _peak_rss_mib(),
    }


def phase_import_coco(project_dir: str, coco_path: str, image_folder: str, preload: bool) -> dict:
    from contextlib import contextmanager

    from studio.core import importing
    from studio.core.importing import import_annotations, import_images
    from studio.core.project import Project

    # How long the import holds the project's write lock (its one write transaction,
    # commit included): what other processes, a training run among them, wait for.
    real, held = importing.write_transaction, []

    @contextmanager
    def timed(project):
        t0 = time.perf_counter()
        try:
            with real(project) as conn:
                yield conn
        finally:
            held.append(time.perf_counter() - t0)

    importing.write_transaction = timed
    with Project.create(project_dir) as p:
        if preload:
            import_images(p, [Path(image_folder)])
        held.clear()
        t = time.perf_counter()
        report = import_annotations(p, "coco", Path(coco_path), Path(image_folder))
        seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "lock_s": max(held, default=0.0),
        "annotations": report.added_annotations,
        "peak_mib": _peak_rss_mib(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10x smaller")
    ap.add_argument("--workdir", type=Path, help="keep generated data here (default: a temp dir)")
    args = ap.parse_args()
    n_files = 10_000 if args.quick else 100_000
    n_coco_images, per_image = (1_000, 100) if args.quick else (10_000, 100)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="studio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"data in {work}")

    # 1. 100,000 image files
    folder = work / "tiny"
    if not folder.exists():
        t = time.perf_counter()
        make_tiny_images(folder, n_files)
        print(f"generated {n_files} files in {time.perf_counter() - t:.1f} s")
    proj = work / "p_images"
    if proj.exists():
        import shutil

        shutil.rmtree(proj)
    r = _in_process(phase_import_images, str(proj), str(folder))
    print(f"import {r['added']} image files: {r['seconds']:.1f} s "
          f"({r['added'] / r['seconds']:.0f} files/s), peak memory {r['peak_mib']:.0f} MiB")  # fmt: skip

    # 2. studio info on that project (a fresh interpreter, as a user runs it)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "studio", "info", str(proj), "--json"],
                       check=True, capture_output=True)  # fmt: skip
        times.append(time.perf_counter() - t)
    print(f"studio info --json on {r['added']} images: best {min(times):.2f} s of 3 "
          f"(whole command incl. interpreter start; goal < 1 s)")  # fmt: skip

    # 3. COCO with 1,000,000 annotations
    coco = work / "big_coco.json"
    coco_images = work / "coco_images"
    if not coco.exists():
        t = time.perf_counter()
        make_coco(coco, coco_images, n_coco_images, per_image)
        print(f"generated COCO ({n_coco_images * per_image} annotations, "
              f"{coco.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")  # fmt: skip
    ref = _in_process(phase_pycocotools, str(coco))
    print(f"pycocotools COCO(): {ref['seconds']:.1f} s, peak {ref['peak_mib']:.0f} MiB")
    for preload in (True, False):
        pdir = work / f"p_coco_{preload}"
        if pdir.exists():
            import shutil

            shutil.rmtree(pdir)
        ours = _in_process(phase_import_coco, str(pdir), str(coco), str(coco_images), preload)
        what = "images already in the project" if preload else "images read too"
        print(f"studio import coco ({what}): {ours['seconds']:.1f} s "
              f"(write lock held {ours['lock_s']:.1f} s), peak {ours['peak_mib']:.0f} MiB, "
              f"{ours['annotations']} shapes -> {ours['seconds'] / ref['seconds']:.2f}x pycocotools "
              f"(goal <= 3x)")  # fmt: skip


if __name__ == "__main__":
    main()

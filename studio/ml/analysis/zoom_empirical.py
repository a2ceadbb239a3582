"""The empirical zoom-scale analysis: a run's validation AP as the scene is zoomed out.

At each zoom z every validation image is shrunk by z and pasted at the top left of a
canvas of its own size, the rest filled with the image's mean colour; the model's own
resize then maps the canvas as it maps the image, so the objects reach the model input z
times smaller, as `studio.ml.analysis.zoom` defines zoom (shrinking without the canvas
would not work: the model would resize the image back up). Boxes shrink with the image.

AP (IoU 0.50:0.95), AP50 and recall (IoU 0.5, up to 100 detections an image) come from
pycocotools' COCOeval, overall and by COCO size bucket (small < 32^2, medium < 96^2,
large), with areas measured at the model input, the unit of the whole zoom analysis.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from studio.core.errors import StudioError
from studio.core.progress import Progress
from studio.ml.analysis.zoom import DEFAULT_SCALES, zoomed_side
from studio.ml.analysis.zoom_objects import InputResize

if TYPE_CHECKING:  # torch is imported where it is used: the report module stays light
    import torch

BUCKETS = ("all", "small", "medium", "large")


@dataclass(frozen=True, slots=True)
class ScaleMetrics:
    """AP, AP50 and recall (0..1; -1 where COCO leaves them undefined: no objects)."""

    ap: float
    ap50: float
    recall: float


@dataclass(slots=True)
class ScaleResult:
    """One zoom: `metrics` by bucket ("all", "small", "medium", "large"), `objects`: the
    labelled objects per bucket at this zoom (sizes at the model input)."""

    zoom: float
    metrics: dict[str, ScaleMetrics]
    objects: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """{"zoom", "ap", "ap50", "recall", "buckets": {name: {"ap", "ap50", "recall",
        "objects"}}}, numbers rounded to 4 places."""
        every = self.metrics["all"]
        return {
            "zoom": self.zoom,
            "ap": round(every.ap, 4),
            "ap50": round(every.ap50, 4),
            "recall": round(every.recall, 4),
            "buckets": {
                name: {
                    "ap": round(m.ap, 4),
                    "ap50": round(m.ap50, 4),
                    "recall": round(m.recall, 4),
                    "objects": self.objects.get(name, 0),
                }
                for name, m in self.metrics.items()
                if name != "all"
            },
        }


# --- the zoomed canvas ------------------------------------------------------------------------


def zoom_canvas(image: torch.Tensor, zoom: float) -> tuple[torch.Tensor, float, float]:
    """`image` (float [3, H, W]) shrunk by `zoom` to whole pixels, pasted at the top left of
    an H x W canvas of its mean colour. Returns the canvas and the (x, y) factors boxes
    shrink by (the whole-pixel sides over the original)."""
    import torch.nn.functional as F

    _, h, w = image.shape
    zh, zw = max(1, zoomed_side(h, zoom)), max(1, zoomed_side(w, zoom))
    if (zh, zw) == (h, w):
        return image, 1.0, 1.0
    small = F.interpolate(image[None], size=(zh, zw), mode="bilinear", antialias=True)[0]
    canvas = image.mean(dim=(1, 2), keepdim=True).expand(-1, h, w).clone()
    canvas[:, :zh, :zw] = small
    return canvas, zw / w, zh / h


# --- evaluation -------------------------------------------------------------------------------


def _coco_metrics(
    gt: dict[str, Any], results: list[dict[str, Any]], objects: dict[str, int]
) -> dict[str, ScaleMetrics]:
    """COCOeval ("bbox") of `results` against `gt`, read by area range. `objects`: labels
    per bucket (with no results, buckets with labels score 0, the others -1)."""
    if not results:  # pycocotools cannot load an empty results list
        return {b: ScaleMetrics(*(0.0 if objects[b] else -1.0,) * 3) for b in BUCKETS}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes([dict(r) for r in results]), "bbox")
        ev.evaluate()
        ev.accumulate()
    prec, rec = ev.eval["precision"], ev.eval["recall"]  # [T,R,K,A,M], [T,K,A,M]
    t50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    labels = list(ev.params.areaRngLbl)

    def mean(x: np.ndarray) -> float:
        v = x[x > -1]
        return float(v.mean()) if v.size else -1.0

    out = {}
    for b in BUCKETS:
        a = labels.index(b)
        out[b] = ScaleMetrics(
            mean(prec[:, :, :, a, -1]), mean(prec[t50, :, :, a, -1]), mean(rec[t50, :, a, -1])
        )
    return out


def _bucket(area: float) -> str:
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


@dataclass(slots=True)
class _Image:
    """One validation image: database id, displayed size, labels (xyxy displayed, 1..K)."""

    image_id: int
    path: str
    width: int
    height: int
    boxes: list[list[float]]
    labels: list[int]


def _evaluate_zoom(
    model: torch.nn.Module,
    device: torch.device,
    images: Sequence[_Image],
    resize: InputResize,
    zoom: float,
    load: Callable[[_Image], torch.Tensor],
    progress: Progress,
) -> ScaleResult:
    import torch

    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    results: list[dict[str, Any]] = []
    objects = dict.fromkeys(BUCKETS, 0)
    labels_seen: set[int] = set()
    for im in images:
        progress.step(text=f"zoom {zoom:g}")
        pixels = load(im)
        canvas, fx, fy = zoom_canvas(pixels, zoom)
        sx, sy = resize.scales(im.width, im.height)  # displayed -> model input pixels
        dx, dy = im.width / pixels.shape[2], im.height / pixels.shape[1]
        with torch.no_grad():
            out = model([canvas.to(device)])[0]
        gt["images"].append({"id": im.image_id, "width": im.width, "height": im.height})
        for box, label in zip(im.boxes, im.labels, strict=True):
            x0, y0, x1, y1 = box[0] * fx * sx, box[1] * fy * sy, box[2] * fx * sx, box[3] * fy * sy
            area = (x1 - x0) * (y1 - y0)
            objects["all"] += 1
            objects[_bucket(area)] += 1
            labels_seen.add(label)
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": im.image_id, "category_id": label,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": area, "iscrowd": 0,
            })  # fmt: skip
        boxes = out["boxes"].detach().cpu().double()
        for (x0, y0, x1, y1), score, label in zip(
            boxes.tolist(), out["scores"].tolist(), out["labels"].tolist(), strict=True
        ):
            x0, x1 = x0 * dx * sx, x1 * dx * sx
            y0, y1 = y0 * dy * sy, y1 * dy * sy
            results.append({"image_id": im.image_id, "category_id": int(label),
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)})  # fmt: skip
    gt["categories"] = [
        {"id": k} for k in sorted(labels_seen | {r["category_id"] for r in results})
    ]
    return ScaleResult(zoom, _coco_metrics(gt, results, objects), objects)


def empirical_zoom(
    project_dir: Path | str,
    run: int | str,
    scales: Sequence[float] = DEFAULT_SCALES,
    *,
    device: str = "auto",
    progress: Progress | None = None,
    on_scale: Callable[[ScaleResult], None] | None = None,
) -> list[ScaleResult]:
    """Evaluate run `run`'s model (best.pt) on its validation images (as `studio eval`
    chooses them) at each zoom of `scales`. `progress` counts images (scales x images) and
    can cancel (raises Cancelled); `on_scale` gets each scale's result as it finishes."""
    progress = progress or Progress()
    lm, images, resize = _load(project_dir, run, device)
    if not images:
        raise StudioError(f"run {run}: no validation images with labels to evaluate on")
    progress.start(len(images) * len(scales), "evaluating zoom scales")
    cache: dict[int, Any] = {}  # decoded images, reused by every scale

    def load(im: _Image) -> torch.Tensor:
        if im.image_id not in cache:
            cache[im.image_id] = _decode(im, lm.image_size)
        return cache[im.image_id]

    out = []
    for zoom in scales:
        result = _evaluate_zoom(lm.model, lm.device, images, resize, zoom, load, progress)
        out.append(result)
        if on_scale is not None:
            on_scale(result)
    return out


def _decode(im: _Image, image_size: int | None) -> torch.Tensor:
    import torch

    from studio.core.imageinfo import decode_image
    from studio.ml.data.transforms import load_max_side

    arr = decode_image(Path(im.path), max_side=load_max_side(image_size))
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(255)


def _load(project_dir: Path | str, run: int | str, device: str):
    """(LoadedModel, validation images, the model's InputResize) of a run."""
    from studio.core.kinds import Split
    from studio.core.project import Project
    from studio.ml.analysis.zoom_model import run_model_input
    from studio.ml.data.snapshot import SNAPSHOT_NAME, DataReport, Snapshot
    from studio.ml.infer.predict import load_model
    from studio.ml.run.runs import find_run, run_checkpoint

    with Project.open(project_dir) as project:
        record = find_run(project, run)
        checkpoint = run_checkpoint(record)
        snap = Snapshot.load(record.dir / SNAPSHOT_NAME)
        lm = load_model(checkpoint, device)
        # The size the model trained at, from the checkpoint just read (not read again).
        resize = run_model_input(project, str(record.id), lm.image_size).resize
    snap = snap.with_categories(lm.category_ids, lm.class_names)
    ids = snap.train_val_ids(lm.config.val_fraction, lm.config.seed)[1]
    if not ids:
        ids = snap.split_ids(Split.VAL)
    report = DataReport()
    samples = snap.samples(ids, "detection", report, training=False)
    images = [
        _Image(s.image_id, s.path, s.width, s.height, s.boxes, s.labels) for s in samples if s.boxes
    ]
    if not images and report.missing:
        raise StudioError(f"run {run}: no validation images{report.missing_note()}")
    return lm, images, resize

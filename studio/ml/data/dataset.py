"""Training data as torch Datasets: images and targets in torchvision's detection format.

`SnapshotDataset` decodes the images of `Sample`s (see snapshot.py) and rasterises their
shapes; the samplers and loaders that batch it are in loaders.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset
from torchvision import tv_tensors

from studio.core.errors import StudioError
from studio.core.imageinfo import decode_image
from studio.ml.data.snapshot import Sample
from studio.ml.tasks import TASKS, Task

Transform = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, Any]]]


class SnapshotDataset(Dataset):
    """Images and targets in the torchvision detection format.

    Item: (image float32 [3, H, W] in [0, 1], target) where target has "boxes" float32
    [N, 4] xyxy, "labels" int64 [N] (1..K), "masks" uint8 [N, H, W] for instance
    segmentation, "sem_mask" int64 [H, W] (0 background) for semantic segmentation, and
    "image_id" (database id) and "orig_size" (height, width of the full image) for
    mapping predictions back. H, W are the image's size after the transforms.
    """

    def __init__(
        self,
        samples: list[Sample],
        task: str,
        transforms: Transform | None = None,
        max_side: int | None = None,
        cache: bool = False,
    ):
        if task not in TASKS:
            raise StudioError(f"unknown task {task!r}")
        self.samples = samples
        self.task = task
        self.transforms = transforms
        # Decoding huge photos at a reduced size saves most of the loading time; the
        # geometry is scaled to match. None: decode at full size.
        self.max_side = max_side
        # Decoded images kept in memory (see `cache_fits`): after the first epoch a step
        # decodes nothing. Each DataLoader worker process keeps its own.
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def aspect_ratios(self) -> list[float]:
        """width / height of every image, from the snapshot (nothing is decoded)."""
        return [s.width / s.height for s in self.samples]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Sample `key`: an index, or (index, seed) from a seeded batch sampler
        (loaders.GroupedBatchSampler): then the random augmentation is drawn from a
        generator seeded with `seed`, not from the process's, so an image's augmentation
        in an epoch is the same whichever worker process loads it and after a resume."""
        if isinstance(key, tuple):
            index, seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self._item(index)
        return self._item(key)

    def _item(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        s = self.samples[index]
        arr = self._decoded(index)
        h, w = arr.shape[:2]
        sx, sy = w / s.width, h / s.height
        image = tv_tensors.Image(torch.from_numpy(arr).permute(2, 0, 1).contiguous())
        boxes = torch.tensor(s.boxes, dtype=torch.float32).reshape(-1, 4)
        boxes *= torch.tensor([sx, sy, sx, sy])
        labels = torch.tensor(s.labels, dtype=torch.int64)
        target: dict[str, Any] = {"image_id": s.image_id, "orig_size": (s.height, s.width)}
        if self.task == Task.SEMANTIC_SEGMENTATION:
            target["sem_mask"] = tv_tensors.Mask(_semantic_map(s, h, w, sx, sy))
        else:
            target["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))
            target["labels"] = labels
            if self.task == Task.INSTANCE_SEGMENTATION:
                target["masks"] = tv_tensors.Mask(_instance_masks(s, h, w, sx, sy))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return _plain(image), {k: _plain(v) for k, v in target.items()}

    def _decoded(self, index: int) -> np.ndarray:
        """The image of sample `index`, HxWx3 uint8, decoded at most at max_side."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        arr = decode_image(Path(self.samples[index].path), max_side=self.max_side)
        if self._cache is not None:
            self._cache[index] = arr
        return arr

    def enable_cache(self) -> None:
        """Keep decoded images in memory from now on."""
        if self._cache is None:
            self._cache = {}

    def decoded_bytes(self) -> int:
        """Bytes the decoded images take (from the snapshot's sizes and max_side)."""
        total = 0
        for s in self.samples:
            f = min(1.0, self.max_side / max(s.width, s.height)) if self.max_side else 1.0
            total += round(s.width * f) * round(s.height * f) * 3
        return total


def cache_fits(nbytes: int, limit: int = 2 * 2**30, share: float = 0.25) -> bool:
    """Whether `nbytes` of decoded images may stay in memory: at most `limit` bytes and
    `share` of the memory available now."""
    try:
        import psutil

        available = psutil.virtual_memory().available
    except ImportError:  # pragma: no cover - psutil is a dependency
        available = limit * 4
    return nbytes <= min(limit, share * available)


def _plain(v: Any) -> Any:
    # tv_tensors subclasses cost a dispatch per op in the model and pickle bigger
    # between DataLoader workers; the model wants plain tensors.
    return v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v


def _seg_mask(seg: Any, box: list[float], h: int, w: int, sx: float, sy: float) -> np.ndarray:
    """uint8 [h, w] mask of one shape at the decoded size (h, w)."""
    if isinstance(seg, dict):
        rle = seg
        if isinstance(rle.get("counts"), list):
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        m = mask_utils.decode(rle)
        if m.shape != (h, w):
            t = torch.from_numpy(m)[None, None].float()
            m = F.interpolate(t, size=(h, w), mode="nearest")[0, 0].to(torch.uint8).numpy()
        return m
    if isinstance(seg, list) and seg:
        parts = [[v * (sx if i % 2 == 0 else sy) for i, v in enumerate(p)] for p in seg]
    else:  # a plain box: its rectangle
        x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        parts = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(parts, h, w)))


def _instance_masks(s: Sample, h: int, w: int, sx: float, sy: float) -> torch.Tensor:
    if not s.boxes:
        return torch.zeros((0, h, w), dtype=torch.uint8)
    ms = [_seg_mask(seg, box, h, w, sx, sy) for seg, box in zip(s.segs, s.boxes, strict=True)]
    return torch.from_numpy(np.stack(ms))


def _semantic_map(s: Sample, h: int, w: int, sx: float, sy: float) -> torch.Tensor:
    """int64 [h, w] class map; larger shapes are painted first so small ones stay visible."""
    out = np.zeros((h, w), dtype=np.int64)
    order = sorted(
        range(len(s.boxes)),
        key=lambda i: -(s.boxes[i][2] - s.boxes[i][0]) * (s.boxes[i][3] - s.boxes[i][1]),
    )
    for i in order:
        m = _seg_mask(s.segs[i], s.boxes[i], h, w, sx, sy)
        out[m.astype(bool)] = s.labels[i]
    return torch.from_numpy(out)

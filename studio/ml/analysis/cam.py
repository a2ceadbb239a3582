"""Activation maps: what a layer of a detector responds to in one image.

Three methods, on any layer of `cam_layers.list_layers`:

- EigenCAM (Muhammad and Yeasin, 2020): the activations' first principal component, the
  direction of largest variation over the image's cells. Needs no gradient and no
  prediction, so it works for every model. The SVD leaves the component's sign open; it
  is chosen so that the strongest response is positive (Seg-Eigen-CAM's correction, Chung
  and Ying 2025), then negative values are cut to 0.
- Grad-CAM (Selvaraju et al., 2017) of one prediction: the gradient of that box's class
  score weighs each channel (its mean over the cells), and the weighted sum, cut at 0, is
  the map of where the evidence for that box lies.
- Feature maps: the mean over channels, and optionally the channels with the strongest
  mean response, each its own map.

Why Studio computes these itself rather than through the `grad-cam` package is in
docs/adr/0006-activation-maps.md.

Geometry. A torchvision detector resizes the image (its `transform`) and pads the batch to
a multiple of 32 at the bottom and right. A map is computed on the cells that cover the
image (the padding is left out, so it cannot dominate the principal component) and kept
at that resolution (`ActivationMap.cells`, one value per cell, `stride` input pixels per
cell). `at_input` upsamples it to the image at the model input, `at_display` to the
image's displayed pixels (after EXIF orientation), undoing the model's resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.errors import StudioError
from studio.ml.analysis.cam_layers import LayerInfo, capture


class CamMethod(StrEnum):
    EIGENCAM = "eigencam"
    GRADCAM = "gradcam"
    FEATURES = "features"


@dataclass(frozen=True, slots=True)
class CamTarget:
    """The prediction a Grad-CAM explains: its rank by score (0 = the highest), box (x0, y0,
    x1, y1 in displayed pixels), score and class label (1..K, the model's label order)."""

    index: int
    box: tuple[float, float, float, float]
    score: float
    label: int


@dataclass(slots=True)
class ActivationMap:
    """A map of one image at one layer.

    `cells`: float32 [h, w] in 0..1, one value per feature cell over the image (cell (i, j)
    covers input pixels [j*stride, (j+1)*stride) x [i*stride, (i+1)*stride)); `stride`:
    input pixels per cell; `input_size`: (height, width) of the image at the model input;
    `display_size`: (width, height) of the image as displayed. `channels`, `channel_ids`:
    with a grid, the strongest channels' maps [k, h, w] in 0..1 and their indices.
    """

    cells: np.ndarray
    stride: int
    input_size: tuple[int, int]
    display_size: tuple[int, int]
    layer: str
    method: str
    target: CamTarget | None = None
    channels: np.ndarray | None = None
    channel_ids: list[int] = field(default_factory=list)

    def at_input(self, cells: np.ndarray | None = None) -> np.ndarray:
        """`cells` (default: the map) upsampled bilinearly to the image at the model input:
        float32 [height, width] of `input_size`."""
        grid = self.cells if cells is None else cells
        h, w = grid.shape
        t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
        up = F.interpolate(
            t, size=(h * self.stride, w * self.stride), mode="bilinear", align_corners=False
        )
        ih, iw = self.input_size
        return up[0, 0, :ih, :iw].numpy()

    def at_display(self, cells: np.ndarray | None = None) -> np.ndarray:
        """`cells` (default: the map) at the image's displayed size: float32 [H, W] in 0..1,
        aligned to the displayed pixels (the model's resize undone)."""
        width, height = self.display_size
        out = cv2.resize(self.at_input(cells), (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(out, 0.0, 1.0)


# --- the methods, on activations [C, h, w] ---------------------------------------------------


def _normalised(cam: torch.Tensor) -> np.ndarray:
    top = float(cam.max()) if cam.numel() else 0.0
    out = cam / top if top > 0 else torch.zeros_like(cam)
    return out.float().cpu().numpy()


def _min_max(x: torch.Tensor) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    out = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    return out.float().cpu().numpy()


def eigencam(acts: torch.Tensor) -> np.ndarray:
    """EigenCAM of activations [C, h, w]: the projection of each cell's (centred) channel
    vector on the first principal direction, sign-corrected, cut at 0, scaled to max 1."""
    c, h, w = acts.shape
    m = acts.reshape(c, h * w).T.double()
    m = m - m.mean(dim=0, keepdim=True)
    if not torch.isfinite(m).all() or float(m.abs().max()) == 0.0:
        return np.zeros((h, w), np.float32)
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    proj = (m @ vh[0]).reshape(h, w)
    if abs(float(proj.min())) > abs(float(proj.max())):
        proj = -proj
    return _normalised(proj.clamp(min=0))


def gradcam(acts: torch.Tensor, grads: torch.Tensor) -> np.ndarray:
    """Grad-CAM of activations and their gradients [C, h, w]: channels weighted by their
    mean gradient, summed, cut at 0, scaled to max 1."""
    weights = grads.mean(dim=(1, 2))
    return _normalised((weights[:, None, None] * acts).sum(0).clamp(min=0))


def channel_mean(acts: torch.Tensor) -> np.ndarray:
    """The mean over channels of activations [C, h, w], scaled to 0..1 (min to max)."""
    return _min_max(acts.mean(0))


def strongest_channels(acts: torch.Tensor, k: int) -> tuple[np.ndarray, list[int]]:
    """The `k` channels with the highest mean activation, each scaled to 0..1, and their
    indices, strongest first."""
    k = max(1, min(k, acts.shape[0]))
    order = torch.argsort(acts.mean(dim=(1, 2)), descending=True)[:k]
    maps = np.stack([_min_max(acts[i]) for i in order])
    return maps, [int(i) for i in order]


# --- one forward pass ------------------------------------------------------------------------


def _combined(tensors: list[torch.Tensor]) -> torch.Tensor:
    """[C, h, w] from per-level [1, C_i, h_i, w_i]: resized to the finest, stacked."""
    size = max((t.shape[-2:] for t in tensors), key=lambda s: s[0] * s[1])
    parts = [
        t if t.shape[-2:] == size else F.interpolate(t, size=tuple(size), mode="bilinear")
        for t in tensors
    ]
    return torch.cat(parts, dim=1)[0]


def _pick_target(output: dict[str, torch.Tensor], index: int) -> tuple[int, torch.Tensor]:
    scores = output.get("scores")
    if scores is None:
        raise StudioError("Grad-CAM needs a detector's predictions; use eigencam or features")
    if scores.numel() == 0:
        raise StudioError("the model predicts nothing in this image: no box for Grad-CAM")
    order = torch.argsort(scores.detach(), descending=True)
    if not 0 <= index < len(order):
        raise StudioError(
            f"--box {index}: the model predicts {len(order)} boxes here (0 to {len(order) - 1},"
            " by score)"
        )
    return int(order[index]), scores[order[index]]


@dataclass(slots=True)
class CamRequest:
    """What to compute: `method`, `box` (Grad-CAM: the prediction's rank by score) and
    `grid` (features: that many strongest channels, 0 for none)."""

    method: CamMethod = CamMethod.EIGENCAM
    box: int = 0
    grid: int = 0


def activation_map(
    model: nn.Module,
    image: np.ndarray,
    display_size: tuple[int, int],
    layer: LayerInfo,
    request: CamRequest,
) -> ActivationMap:
    """The map of `image` (RGB uint8 [h, w, 3], the displayed image, possibly decoded at a
    reduced size) at `layer` of `model` (eval mode), for an image of `display_size` (width,
    height) displayed pixels. Raises StudioError when Grad-CAM has no prediction to explain."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
    x = x.to(device)
    model.eval()
    target = None
    grads: torch.Tensor | None = None
    with capture(model, layer) as cap:
        if request.method == CamMethod.GRADCAM:
            with torch.enable_grad():
                x.requires_grad_(True)
                output = model([x])[0]
                i, score = _pick_target(output, request.box)
                model.zero_grad(set_to_none=True)
                score.backward()
            target = _target(output, i, request.box, image.shape, display_size)
            grads = _combined([t.grad if t.grad is not None else torch.zeros_like(t)
                               for t in cap.tensors])  # fmt: skip
        else:
            with torch.no_grad():
                model([x])
    if not cap.tensors:
        raise StudioError(f"layer {layer.id} did not run on this image")
    acts = _combined([t.detach() for t in cap.tensors])
    return _build(acts, grads, cap.padded, cap.size, display_size, layer, request, target)


def _target(
    output: dict[str, torch.Tensor],
    i: int,
    rank: int,
    shape: tuple[int, ...],
    display_size: tuple[int, int],
) -> CamTarget:
    sx, sy = display_size[0] / shape[1], display_size[1] / shape[0]
    x0, y0, x1, y1 = (float(v) for v in output["boxes"][i].detach().cpu())
    return CamTarget(
        rank,
        (x0 * sx, y0 * sy, x1 * sx, y1 * sy),
        float(output["scores"][i].detach()),
        int(output["labels"][i]),
    )


def _build(
    acts: torch.Tensor,
    grads: torch.Tensor | None,
    padded: tuple[int, int],
    size: tuple[int, int] | None,
    display_size: tuple[int, int],
    layer: LayerInfo,
    request: CamRequest,
    target: CamTarget | None,
) -> ActivationMap:
    """The map on the cells that cover the image (the batch padding left out)."""
    input_size = tuple(size) if size else tuple(padded)
    stride = int(2 ** round(math.log2(max(padded[0] / acts.shape[-2], 1e-9))))
    hc = min(acts.shape[-2], math.ceil(input_size[0] / stride))
    wc = min(acts.shape[-1], math.ceil(input_size[1] / stride))
    acts = acts[:, :hc, :wc].float()
    channels, ids = None, []
    if request.method == CamMethod.EIGENCAM:
        cells = eigencam(acts)
    elif request.method == CamMethod.GRADCAM:
        assert grads is not None
        cells = gradcam(acts, grads[:, :hc, :wc].float())
    else:
        cells = channel_mean(acts)
        if request.grid > 0:
            channels, ids = strongest_channels(acts, request.grid)
    return ActivationMap(
        cells=cells.astype(np.float32),
        stride=stride,
        input_size=(int(input_size[0]), int(input_size[1])),
        display_size=(int(display_size[0]), int(display_size[1])),
        layer=layer.id,
        method=str(request.method),
        target=target,
        channels=channels,
        channel_ids=ids,
    )

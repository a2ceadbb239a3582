"""Measured receptive fields of any registered model, by input gradients.

For each feature map (backbone stage, level) the centre cell's output (summed over
channels) is backpropagated to the input batch the backbone reads (pixels at the model
input, after the model's own resize; y down, x right):

- theoretical field: the side of the bounding square of input pixels whose gradient is
  non-zero, every pixel that can influence the cell. Measured on a copy of the model made
  "transparent" (positive averaging weights, identity BatchNorm, average pooling in place
  of max pooling, float64) so that no ReLU, max-pool or cancellation hides a pixel: for a
  ResNet it equals the recurrence of `studio.ml.analysis.zoom` exactly. `clipped`: the
  field touched the input border, so it is at least that side.
- effective field: the side of the smallest square, centred on the cell's centre, that
  holds 95% of the absolute gradient mass of the randomly initialised model (seeded) on a
  random input: where most of the influence lies (Luo et al. 2016).

Results are cached per model, options and input size in the user cache, since one
measurement builds the model and runs a few passes (seconds on a CPU). Torch is imported
inside the functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EFFECTIVE_SHARE = 0.95  # the share of the gradient mass the effective field holds
DEFAULT_INPUT = 512  # input side in pixels of the measurement
_CACHE_VERSION = 1


@dataclass(frozen=True, slots=True)
class MeasuredField:
    """The receptive field of one feature map, in input pixels.

    `layer`: the layer id ("P3", "backbone.body.layer4"); `stride`: input pixels per cell;
    `theoretical`: the side of the bounding square of influencing pixels, `clipped` when it
    touched the input border (then it is a lower bound); `effective`: the side of the
    centred square holding 95% of the influence.
    """

    layer: str
    stride: int
    theoretical: int
    clipped: bool
    effective: int


def _cache_path() -> Path:
    import platformdirs
    import torch

    folder = Path(platformdirs.user_cache_dir("studio"))
    return folder / f"receptive-fields-torch{torch.__version__}.json"


def _read_cache() -> dict[str, Any]:
    try:
        return json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_cache(data: dict[str, Any]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a cache only: a read-only home folder just means measuring again


def cache_key(model: str, options: Mapping[str, Any] | None, size: int) -> str:
    """The cache entry of `model` with build `options` measured on a `size`-pixel input."""
    opts = json.dumps(dict(options or {}), sort_keys=True, default=str)
    return f"v{_CACHE_VERSION}:{model}:{opts}@{size}"


def cached_fields(
    model: str, options: Mapping[str, Any] | None = None, size: int = DEFAULT_INPUT
) -> list[MeasuredField] | None:
    """The cached measurement of `model`, or None when it was never measured."""
    entry = _read_cache().get(cache_key(model, options, size))
    if entry is None:
        return None
    try:
        return [MeasuredField(**e) for e in entry]
    except TypeError:
        return None


def measure_fields(
    model: str, options: Mapping[str, Any] | None = None, size: int = DEFAULT_INPUT
) -> list[MeasuredField]:
    """The receptive fields of every backbone stage and level of registered `model`
    (random init; `options`: build options) on a `size` x `size` input, from the cache
    when measured before. Deterministic: seeded init and input."""
    cached = cached_fields(model, options, size)
    if cached is not None:
        return cached
    import torch

    from studio.ml.analysis.cam_layers import LayerGroup, list_layers
    from studio.ml.models import build_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model(model, 1, image_size=size, **dict(options or {})).model.eval()
        layers = [
            lv
            for lv in list_layers(net, (size, size))
            if lv.group in (LayerGroup.BACKBONE, LayerGroup.LEVELS) and not lv.keys
        ]
        effective = _gradients(net, layers, size, structural=False)
        _make_transparent(net)
        theoretical = _gradients(net, layers, size, structural=True)
    fields = []
    for lv, grad, full in zip(layers, effective, theoretical, strict=True):
        side, clipped = theoretical_side(full)
        centre = _cell_centre(grad.shape, lv.stride)
        # The centre of a cell and of its field can differ by half a pixel: never report
        # an effective field wider than the theoretical one.
        eff = min(effective_side(grad, centre), side)
        fields.append(MeasuredField(lv.id, lv.stride, side, clipped, eff))
    data = _read_cache()
    data[cache_key(model, options, size)] = [asdict(f) for f in fields]
    _write_cache(data)
    return fields


def _cell_centre(shape: tuple[int, ...], stride: int) -> tuple[float, float]:
    """The input pixel (y, x; may be half-integer) at the centre of the centre cell."""
    h, w = shape[-2:]
    cy, cx = (h // stride) // 2, (w // stride) // 2
    return (cy + 0.5) * stride - 0.5, (cx + 0.5) * stride - 0.5


def _gradients(net, layers, size: int, structural: bool) -> list:
    """Per layer, the [H, W] map of |d(centre cell, summed over channels) / d input|,
    summed over the input's colour channels."""
    import contextlib

    import torch

    from studio.ml.analysis.cam_layers import capture, input_root

    dtype = torch.float64 if structural else torch.float32
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, size, size, generator=gen, dtype=dtype)
    if structural:
        x = x + 0.5  # positive: every ReLU passes
    x.requires_grad_(True)
    with contextlib.ExitStack() as stack:
        caps = [stack.enter_context(capture(net, lv)) for lv in layers]
        net.get_submodule(input_root(net))(x)
    maps = []
    for cap in caps:
        out = cap.tensors[0]
        cell = out[0, :, out.shape[-2] // 2, out.shape[-1] // 2].sum()
        (grad,) = torch.autograd.grad(cell, x, retain_graph=True)
        maps.append(grad[0].abs().sum(0).detach())
    return maps


def _make_transparent(net) -> None:
    """Weights that let every path through: each conv and linear averages its inputs
    (1 / fan-in, bias 0), each BatchNorm is the identity, max pools average; float64 so
    the tails of deep fields do not underflow."""
    import torch
    from torch import nn
    from torchvision.ops import FrozenBatchNorm2d

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.fill_(1.0 / max(m.weight[0].numel(), 1))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm | FrozenBatchNorm2d):
                for name, value in (("weight", 1), ("bias", 0)):
                    if getattr(m, name, None) is not None:
                        getattr(m, name).fill_(value)
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            for name, child in m.named_children():
                if isinstance(child, nn.MaxPool2d):
                    pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding)
                    setattr(m, name, pool)
    net.double()


def theoretical_side(grad) -> tuple[int, bool]:
    """(side of the bounding square of non-zero pixels of the [H, W] map `grad`, whether
    that box touches the map's border)."""
    nz = (grad > 0).nonzero()
    if len(nz) == 0:
        return 0, False
    (y0, x0), (y1, x1) = nz.min(0).values.tolist(), nz.max(0).values.tolist()
    h, w = grad.shape
    clipped = y0 == 0 or x0 == 0 or y1 == h - 1 or x1 == w - 1
    return int(max(y1 - y0, x1 - x0) + 1), bool(clipped)


def effective_side(grad, centre: tuple[float, float], share: float = EFFECTIVE_SHARE) -> int:
    """The side in pixels of the smallest square centred on `centre` (y, x; pixel centres
    at integers) that holds `share` of the mass of the [H, W] map `grad`, at most the map's
    longer side."""
    import torch

    h, w = grad.shape
    ys = (torch.arange(h, dtype=torch.float64) - centre[0]).abs()
    xs = (torch.arange(w, dtype=torch.float64) - centre[1]).abs()
    dist = torch.maximum(ys[:, None], xs[None, :]).flatten()
    mass = grad.double().flatten()
    total = float(mass.sum())
    if total <= 0:
        return 0
    order = torch.argsort(dist)
    cum = torch.cumsum(mass[order], 0)
    index = int(torch.searchsorted(cum, share * total * (1 - 1e-12)))
    radius = float(dist[order][min(index, len(order) - 1)])
    return int(min(round(2 * radius + 1), max(h, w)))


def fields_by_stride(fields: list[MeasuredField]) -> dict[int, tuple[int, bool, int]]:
    """Stride -> (theoretical, clipped, effective) of the backbone's last stage at each
    stride, or of the level (a neck's P6, P7) where the backbone has no stage there, to
    match the backbone fields the ResNet recurrence gives."""
    out: dict[int, tuple[int, bool, int]] = {}
    backbone: set[int] = set()
    for f in fields:
        is_level = f.layer.startswith("P") and f.layer[1:].isdigit()
        if is_level and f.stride in backbone:
            continue
        if not is_level:
            backbone.add(f.stride)
        out[f.stride] = (f.theoretical, f.clipped, f.effective)
    return out

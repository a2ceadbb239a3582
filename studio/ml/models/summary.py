"""Model size and cost: parameter counts, GFLOPs and per-part output shapes, as text tables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from studio.ml.models import composable
from studio.ml.models.registry import ModelSpec, build_model, get_spec
from studio.ml.models.segmentation import SemanticSegmenter

# Children described part by part (backbone, encoder...) or holding no layers.
_SKIPPED_CHILDREN = ("backbone", "encoder", "decoder", "transform", "anchor_generator", "box_coder")
_NO_STRIDE_PARTS = ("rpn", "roi_heads")
# A part with more outputs than this (e.g. RoI heads' per-image dicts) shows only the first ones.
_MAX_OUTPUTS = 8

# (model key, image_size, with_flops) -> (params, GFLOPs or None); building and running every model
# is slow on a CPU, so a process computes each only once.
_COMPLEXITY_CACHE: dict[tuple[str, int, bool], tuple[int, float | None]] = {}


@dataclass(frozen=True)
class PartSummary:
    """One part of a model after a forward on one image_size x image_size image (batch 1).

    `outputs` maps each output (feature level, head output...) to its shape; `strides` maps
    those that are [N,C,H,W] maps to the input pixels per map pixel, relative to the batched
    input after the model's resizing. `gflops` are 1e9 floating-point operations (a
    multiply-add counts 2), as counted by torch.utils.flop_counter.
    """

    name: str
    outputs: dict[str, tuple[int, ...]]
    strides: dict[str, int]
    params: int
    gflops: float


@contextmanager
def _seeded() -> Iterator[None]:
    # Random init decides how many boxes survive post-processing, hence the heads' FLOPs: a fixed
    # seed makes the numbers repeat, and fork_rng leaves the caller's random state alone.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def _dummy_image(image_size: int) -> torch.Tensor:
    # Fixed noise so the number of proposals and detections, hence the FLOPs, repeat run to run.
    return torch.rand(3, image_size, image_size, generator=torch.Generator().manual_seed(0))


def model_complexity(model: nn.Module, image_size: int) -> tuple[int, float]:
    """(parameter count, GFLOPs of one eval-mode forward on a 3 x image_size x image_size image)
    for a model following the list API. Restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model([_dummy_image(image_size)])
    finally:
        model.train(was_training)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 1e9


def model_parts(model: nn.Module) -> list[tuple[str, str]]:
    """(label, module path) of the parts worth describing, in forward order."""
    root, prefix = (model.net, "net.") if isinstance(model, SemanticSegmenter) else (model, "")
    parts: list[tuple[str, str]] = []
    backbone = getattr(root, "backbone", None)
    if backbone is not None and hasattr(backbone, "body"):
        parts.append(("backbone", "backbone.body"))
        parts += [("neck", f"backbone.{n}") for n in ("fpn", "neck") if hasattr(backbone, n)]
        parts += _attention_parts(backbone)
    elif isinstance(getattr(root, "encoder", None), nn.ModuleList):
        levels = len(root.encoder)
        parts += [(f"encoder.L{i + 1}", f"encoder.{i}") for i in range(levels)]
        parts += [(f"decoder.L{levels - 1 - i}", f"decoder.{i}") for i in range(len(root.decoder))]
    elif backbone is not None:
        parts.append(("backbone", "backbone"))
    for child_name, child in root.named_children():
        if child_name not in _SKIPPED_CHILDREN and any(True for _ in child.parameters()):
            parts.append((child_name, child_name))
    return [(label, prefix + path) for label, path in parts]


def _attention_parts(backbone: nn.Module) -> list[tuple[str, str]]:
    """The composable detector's attention modules, one per neck level, labelled by their
    class and level ("CBAM@P3"): they run after the neck, before the head."""
    attention = getattr(backbone, "attention", None)
    if not isinstance(attention, nn.ModuleDict):
        return []
    return [(f"{type(m).__name__}@{level}", f"backbone.attention.{level}")
            for level, m in attention.items()]  # fmt: skip


def _has_tensor(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, dict):
        obj = list(obj.values())
    return isinstance(obj, list | tuple) and any(_has_tensor(v) for v in obj)


def _flatten(obj: Any, key: str = "") -> Iterator[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor in a nested output. Detection heads return a per-image list
    next to an empty loss dict ((proposals, {}), ([{"boxes": ...}], {})): sequences holding one
    non-empty item add no index to the name."""
    if isinstance(obj, torch.Tensor):
        yield key or "out", tuple(obj.shape)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{key}.{k}" if key else str(k))
    elif isinstance(obj, list | tuple):
        items = [v for v in obj if _has_tensor(v)]
        if len(items) == 1:
            yield from _flatten(items[0], key)
            return
        for i, v in enumerate(items):
            yield from _flatten(v, f"{key}.{i}" if key else str(i))


def describe_model(
    name: str, num_classes: int = 3, image_size: int | None = 640, **options: Any
) -> list[PartSummary]:
    """Build `name` (random init, for `image_size`), run one eval forward on an image_size x
    image_size image and summarise each part (backbone, neck levels, heads) in forward order.
    `image_size` None means the model's default size."""
    if image_size is None:
        image_size = get_spec(name).default_image_size
    with _seeded():
        model = build_model(name, num_classes, image_size=image_size, **options).model.eval()
    parts = model_parts(model)
    outputs: dict[str, Any] = {}
    input_hw: list[tuple[int, int]] = []
    handles = []

    def record_input(_module: nn.Module, args: tuple[Any, ...]) -> None:
        if not input_hw and args and isinstance(args[0], torch.Tensor):
            input_hw.append(tuple(args[0].shape[-2:]))

    for label, path in parts:
        module = model.get_submodule(path)
        handles.append(
            module.register_forward_hook(
                lambda _m, _a, out, label=label: outputs.setdefault(label, out)
            )
        )
    handles.append(model.get_submodule(parts[0][1]).register_forward_pre_hook(record_input))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model([_dummy_image(image_size)])
    finally:
        for handle in handles:
            handle.remove()

    counts = counter.get_flop_counts()
    root = type(model).__name__
    in_h = input_hw[0][0] if input_hw else image_size
    summaries = []
    for label, path in parts:
        shapes = dict(list(_flatten(outputs.get(label)))[:_MAX_OUTPUTS])
        # Masks pasted back at image size are [N,1,H,W] too, but they are no feature map.
        strides = {
            k: round(in_h / s[-2])
            for k, s in shapes.items()
            if len(s) == 4 and s[-2] > 0 and label not in _NO_STRIDE_PARTS
        }
        flops = sum(counts.get(f"{root}.{path}", {}).values())
        params = sum(p.numel() for p in model.get_submodule(path).parameters())
        summaries.append(PartSummary(label, shapes, strides, params, flops / 1e9))
    return summaries


def complexity(
    name: str, image_size: int | None = None, with_flops: bool = True
) -> tuple[int, float | None]:
    """(params, GFLOPs) of model `name` built with default options at `image_size` (its default
    if None); GFLOPs is None without `with_flops`. Cached per process."""
    spec = get_spec(name)
    size = spec.default_image_size if image_size is None else image_size
    # Composable presets that spell out the defaults are the same model: share their entry.
    key = name
    if spec.family == "composable":
        key = repr(sorted({**composable.DEFAULT_OPTIONS, **spec.options}.items()))
    for flops in (True, with_flops):
        if (key, size, flops) in _COMPLEXITY_CACHE:
            return _COMPLEXITY_CACHE[(key, size, flops)]
    disk = _disk_cache()
    disk_key = f"{key}@{size}"
    if disk_key in disk:
        params, gflops = disk[disk_key]
        return params, (gflops if with_flops else None)
    with _seeded():
        model = build_model(name, 3, image_size=size).model
    if with_flops:
        result: tuple[int, float | None] = model_complexity(model, size)
        # Counting FLOPs runs a forward pass (seconds per model on a CPU): keep the
        # numbers across runs so `studio models` is slow only the first time.
        disk[disk_key] = list(result)
        _save_disk_cache(disk)
    else:
        result = (sum(p.numel() for p in model.parameters()), None)
    _COMPLEXITY_CACHE[(key, size, with_flops)] = result
    return result


def _disk_cache_path() -> Path:
    import platformdirs

    return (
        Path(platformdirs.user_cache_dir("studio"))
        / f"model-complexity-torch{torch.__version__}.json"
    )


def _disk_cache() -> dict:
    try:
        return json.loads(_disk_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_disk_cache(data: dict) -> None:
    path = _disk_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache only: a read-only home folder just means recomputing next time


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def format_model_table(specs: Iterable[ModelSpec], with_flops: bool = True) -> str:
    """`studio models`: name, task, default input size, params (M), GFLOPs at that size and
    description, one model a line. Builds each model (slow with FLOPs: tens of seconds)."""
    rows = []
    for spec in specs:
        params, gflops = complexity(spec.name, with_flops=with_flops)
        rows.append(
            [
                spec.name,
                spec.task,
                str(spec.default_image_size),
                f"{params / 1e6:.2f}",
                "-" if gflops is None else f"{gflops:.1f}",
                spec.description,
            ]
        )
    header = ["name", "task", "size", "params (M)", "GFLOPs", "description"]
    return _table(header, rows, right={2, 3, 4})


def _millions(params: int) -> str:
    # Small parts (attention modules: a few thousand weights) would all read 0.000.
    return f"{params / 1e6:.6f}" if 0 < params < 100_000 else f"{params / 1e6:.3f}"


def _gflops(gflops: float) -> str:
    return f"{gflops:.5f}" if 0 < gflops < 0.01 else f"{gflops:.2f}"


def format_description(parts: Iterable[PartSummary]) -> str:
    """`studio models --describe`: one line per part output (shape, stride), with the part's
    params and GFLOPs on its first line, and a total. Parts of under 0.1M params or 0.01
    GFLOPs (attention modules) get more decimals. GFLOPs count matmuls and convolutions only
    (torch's FlopCounterMode): the elementwise products of attention are not in them."""
    parts = list(parts)
    rows = []
    for part in parts:
        outputs = list(part.outputs.items()) or [("-", ())]
        for i, (key, shape) in enumerate(outputs):
            stride = part.strides.get(key)
            rows.append(
                [
                    part.name if i == 0 else "",
                    key,
                    "x".join(map(str, shape)) or "-",
                    "" if stride is None else str(stride),
                    _millions(part.params) if i == 0 else "",
                    _gflops(part.gflops) if i == 0 else "",
                ]
            )
    total_params = sum(p.params for p in parts)
    total_flops = sum(p.gflops for p in parts)
    rows.append(["total", "", "", "", f"{total_params / 1e6:.3f}", f"{total_flops:.2f}"])
    header = ["part", "output", "shape", "stride", "params (M)", "GFLOPs"]
    return _table(header, rows, right={3, 4, 5})

"""The layers of a model that activation maps can be taken from, as a tree by group, and the
hooks that capture one of them during a forward pass.

A model is probed once with a gray image: forward hooks on every module record what each
returns, and the layers worth showing are picked from those records:

- backbone: the stages of the backbone body (a ResNet's layer1..layer4, a MobileNet's
  features.N where the stride changes), named by module path ("backbone.body.layer2");
- levels: the feature maps the head reads (the output of the model's `backbone`, which is
  the neck's output where there is a neck), named "P3".."P7" by stride (P<k> has stride 2^k),
  plus "levels": every level at once, resized to the finest and stacked channel-wise;
- neck: the blocks of a PAN neck ("backbone.neck.td3", ...);
- attention: the attention modules (studio.ml.models.attention) after the composable
  detector's neck levels ("neck.attention@P3"). For CBAM the layer is its spatial gate, so
  the feature map is the spatial attention map ([1, 1, h, w]); for SE and ECA it is the
  module's output, the channel-reweighted features, so the feature mean is the
  channel-weighted mean;
- head: the towers and output convs of one-stage heads and of the RPN, which run once per
  level, so each is listed per level ("head.classification_head.conv@P3").

Strides are input pixels per feature cell, measured from the padded batch the model's own
transform builds (powers of two). Torch is imported by the caller; no Qt here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import nn

from studio.core.errors import StudioError
from studio.ml.models.attention import CBAM, ChannelAttentionBase

ALL_LEVELS = "levels"  # the layer id of every level, combined
_BODY_ROOTS = ("backbone.body", "backbone.features", "net.backbone", "net.encoder", "backbone")
_LEVEL_ROOTS = ("backbone", "net.backbone")
_NECK_ROOTS = ("backbone.neck", "backbone.fpn")
_HEAD_ROOTS = ("head", "rpn.head")


class LayerGroup(StrEnum):
    """Where a layer sits in the detector (the tree's branches)."""

    BACKBONE = "backbone"
    LEVELS = "levels"
    NECK = "neck"
    ATTENTION = "attention"
    HEAD = "head"


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer maps can be taken from.

    `id`: what `--layer` takes. `module`: the module path whose output it is ("" for the
    model itself); `key`: the entry of a dict output (a level), or None; `call`: which call
    of a module run once per level (0 for the first), or None; `keys`: for "levels", every
    level's (key) in order. `stride`: input pixels per cell; `channels`: feature channels.
    """

    id: str
    group: LayerGroup
    module: str
    stride: int
    channels: int
    key: str | None = None
    call: int | None = None
    keys: tuple[str, ...] = field(default=())


def level_name(stride: int) -> str:
    """ "P3" for stride 8: level k has stride 2^k."""
    return f"P{round(math.log2(max(stride, 1)))}"


def _pow2(ratio: float) -> int:
    return int(2 ** round(math.log2(max(ratio, 1e-9))))


# --- the probe ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Probe:
    """Every module call of one forward pass, in order: (module path, call index of that
    module, output shape: a 4-D tensor's (C, h, w), a dict of those, or None)."""

    padded: tuple[int, int] = (0, 0)  # (height, width) of the batch the backbone reads
    events: list[tuple[str, int, object]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def stride(self, shape: tuple[int, ...]) -> int:
        return _pow2(self.padded[0] / shape[-2])

    def output(self, path: str) -> tuple[str, int, object] | None:
        """(module, call, shape) of `path`'s output: its only call, or where it was never
        called itself (a container in a traced backbone) the last call inside it, which is
        the container's output up to a functional op (a residual add) after it."""
        if self.counts.get(path, 0) == 1:
            return next(e for e in self.events if e[0] == path)
        if self.counts.get(path, 0) > 1:
            return None
        inside = [e for e in self.events if e[0].startswith(path + ".")]
        return inside[-1] if inside else None

    def child_strides(self, model: nn.Module, path: str) -> set[int]:
        """The strides of the outputs of `path`'s direct children."""
        out = set()
        for child, _ in model.get_submodule(path).named_children():
            e = self.output(f"{path}.{child}")
            if e is not None and isinstance(e[2], tuple):
                out.add(self.stride(e[2]))
        return out


def _shape_of(out: object) -> object:
    """A 4-D tensor's (channels, height, width), a dict of those, or None."""
    if isinstance(out, torch.Tensor):
        return tuple(out.shape[1:]) if out.dim() == 4 else None
    if isinstance(out, Mapping):
        shapes = {str(k): _shape_of(v) for k, v in out.items()}
        return shapes if shapes and all(isinstance(s, tuple) for s in shapes.values()) else None
    return None


def input_root(model: nn.Module) -> str:
    """The module that reads the normalised, padded image batch: "backbone" or "net"."""
    names = dict(model.named_children())
    for name in ("backbone", "net"):
        if name in names:
            return name
    raise StudioError(
        f"cannot take activation maps of a {type(model).__name__}: it has no `backbone` or "
        "`net` module"
    )


def probe_model(model: nn.Module, size: tuple[int, int] = (256, 256)) -> _Probe:
    """Run `model` (in eval mode) once on a gray image of `size` (height, width) and record
    every module call with its output shape."""
    probe = _Probe()
    root = input_root(model)
    handles = []

    def record(name: str):
        def hook(module, args, out):
            if name == root and args and isinstance(args[0], torch.Tensor):
                probe.padded = tuple(args[0].shape[-2:])
            probe.events.append((name, probe.counts[name], _shape_of(out)))
            probe.counts[name] += 1

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model.eval()([torch.full((3, *size), 0.5, device=device)])
    finally:
        for h in handles:
            h.remove()
    return probe


# --- picking the layers ---------------------------------------------------------------------


def _stages(model: nn.Module, probe: _Probe, prefix: str, depth: int = 0) -> Iterator[LayerInfo]:
    """Children of `prefix` with a 4-D output, descending into those whose insides change
    the stride (MobileNet's `features`, RegNet's `trunk_output`)."""
    for child, _ in model.get_submodule(prefix).named_children():
        path = f"{prefix}.{child}"
        if depth < 2 and len(probe.child_strides(model, path)) > 1:
            yield from _stages(model, probe, path, depth + 1)
            continue
        out = probe.output(path)
        if out is not None and isinstance(out[2], tuple):
            module, call, shape = out
            yield LayerInfo(
                path, LayerGroup.BACKBONE, module, probe.stride(shape), shape[0], call=call
            )


def _last_per_stride(stages: list[LayerInfo]) -> list[LayerInfo]:
    """The last stage at each stride: a backbone's C1..C5 maps."""
    last = {lv.stride: lv for lv in stages}
    return [lv for lv in stages if last[lv.stride] is lv]


def _first_existing(model: nn.Module, roots: tuple[str, ...]) -> str | None:
    names = {n for n, _ in model.named_modules()}
    return next((r for r in roots if r in names), None)


def _level_layers(model: nn.Module, probe: _Probe) -> list[LayerInfo]:
    root = _first_existing(model, _LEVEL_ROOTS)
    out = probe.output(root) if root else None
    if out is None or not isinstance(out[2], dict):
        return []
    levels = []
    for key, shape in out[2].items():
        stride = probe.stride(shape)
        levels.append(
            LayerInfo(level_name(stride), LayerGroup.LEVELS, out[0], stride, shape[0], key=key)
        )
    finest = min(levels, key=lambda lv: lv.stride)
    total = sum(lv.channels for lv in levels)
    keys = tuple(lv.key for lv in levels if lv.key is not None)
    levels.append(LayerInfo(ALL_LEVELS, LayerGroup.LEVELS, out[0], finest.stride, total, keys=keys))
    return levels


def _neck_layers(model: nn.Module, probe: _Probe) -> list[LayerInfo]:
    neck = _first_existing(model, _NECK_ROOTS)
    out = []
    for child, _ in model.get_submodule(neck).named_children() if neck else []:
        path = f"{neck}.{child}"
        if probe.counts.get(path) == 1 and isinstance(shape := probe.output(path)[2], tuple):
            out.append(LayerInfo(path, LayerGroup.NECK, path, probe.stride(shape), shape[0]))
    return out


def _attention_layers(model: nn.Module, probe: _Probe) -> list[LayerInfo]:
    """One layer per attention module that ran once: "neck.attention@P3" for the composable
    detector's (`backbone.attention.P3`), else the module path with its level."""
    out = []
    for path, module in model.named_modules():
        if not isinstance(module, ChannelAttentionBase) or probe.counts.get(path) != 1:
            continue
        # CBAM's spatial map is what it attends to; SE/ECA weigh channels only, so their
        # reweighted output is the map to show.
        source = f"{path}.spatial" if isinstance(module, CBAM) else path
        shape = probe.output(source)[2] if probe.counts.get(source) == 1 else None
        if not isinstance(shape, tuple):
            continue
        stride = probe.stride(shape)
        parent, _, _ = path.rpartition(".")
        name = "neck.attention" if parent == "backbone.attention" else path
        out.append(
            LayerInfo(
                f"{name}@{level_name(stride)}", LayerGroup.ATTENTION, source, stride, shape[0]
            )  # fmt: skip
        )
    return out


def _head_layers(model: nn.Module, probe: _Probe) -> list[LayerInfo]:
    """Modules up to two below a head root with 4-D outputs; one entry per call (level)."""
    out = []
    for root in _HEAD_ROOTS:
        if _first_existing(model, (root,)) is None:
            continue
        for name, _ in model.get_submodule(root).named_modules():
            path = f"{root}.{name}"
            calls = [e[2] for e in probe.events if e[0] == path]
            if not name or name.count(".") > 1 or not calls:
                continue
            if not all(isinstance(s, tuple) for s in calls):
                continue
            if any(path.startswith(lv.module + ".") for lv in out):
                continue  # inside a tower already listed
            for i, shape in enumerate(calls):
                stride = probe.stride(shape)
                suffix = f"@{level_name(stride)}" if len(calls) > 1 else ""
                out.append(
                    LayerInfo(path + suffix, LayerGroup.HEAD, path, stride, shape[0], call=i)
                )
    return out


def list_layers(model: nn.Module, size: tuple[int, int] = (256, 256)) -> list[LayerInfo]:
    """The layers of `model` maps can be taken from, by group (backbone stages, levels,
    neck blocks, attention modules, head towers per level), each with its stride and channel count, probed
    on a gray image of `size` (height, width) pixels before the model's own resize."""
    probe = probe_model(model, size)
    body = _first_existing(model, _BODY_ROOTS)
    out = _last_per_stride(list(_stages(model, probe, body))) if body else []
    out += _level_layers(model, probe)
    out += _neck_layers(model, probe)
    out += _attention_layers(model, probe)
    out += _head_layers(model, probe)
    return out


def default_layer(layers: list[LayerInfo]) -> LayerInfo:
    """Every level at once where the model has levels, else its deepest backbone stage."""
    by_id = {lv.id: lv for lv in layers}
    if ALL_LEVELS in by_id:
        return by_id[ALL_LEVELS]
    backbone = [lv for lv in layers if lv.group == LayerGroup.BACKBONE]
    if not backbone:
        raise StudioError("the model has no layer activation maps can be taken from")
    return backbone[-1]


def find_layer(layers: list[LayerInfo], layer_id: str | None) -> LayerInfo:
    """The layer `layer_id` (None: `default_layer`); StudioError naming the choices."""
    if layer_id is None:
        return default_layer(layers)
    for lv in layers:
        if lv.id == layer_id:
            return lv
    shown = ", ".join(lv.id for lv in layers[:12]) + (" ..." if len(layers) > 12 else "")
    raise StudioError(f"no layer {layer_id!r} in this model; choose one of: {shown}")


def format_layers(layers: list[LayerInfo]) -> str:
    """The layer tree as text, one group a heading, one layer a line."""
    lines: list[str] = []
    for group in LayerGroup:
        members = [lv for lv in layers if lv.group == group]
        if not members:
            continue
        lines.append(str(group))
        width = max(len(lv.id) for lv in members)
        for lv in members:
            what = f"stride {lv.stride}, {lv.channels} channels"
            if lv.id == ALL_LEVELS:
                what = f"every level resized to stride {lv.stride}, {lv.channels} channels"
            lines.append(f"  {lv.id:<{width}}  {what}")
    return "\n".join(lines)


# --- capturing one layer --------------------------------------------------------------------


@dataclass(slots=True)
class Capture:
    """What one forward pass produced at a layer: `tensors` (one per level for "levels",
    else one), each [1, C, h, w], kept in the autograd graph when it needs gradients;
    `padded`: the (height, width) of the batch the backbone read; `sizes`: the image's
    (height, width) inside that batch, after the model's own resize."""

    tensors: list[torch.Tensor] = field(default_factory=list)
    padded: tuple[int, int] = (0, 0)
    size: tuple[int, int] | None = None


def _pick(out: object, layer: LayerInfo) -> list[torch.Tensor]:
    if layer.keys:
        return [out[k] for k in layer.keys]  # type: ignore[index]
    if layer.key is not None:
        return [out[layer.key]]  # type: ignore[index]
    return [out]  # type: ignore[list-item]


@contextmanager
def capture(model: nn.Module, layer: LayerInfo) -> Iterator[Capture]:
    """Hooks that fill a `Capture` of `layer` during the forward passes inside the block."""
    cap = Capture()
    calls = [0]
    root = input_root(model)

    def at_layer(module, args, out):
        index, calls[0] = calls[0], calls[0] + 1
        if layer.call is None or index == layer.call:
            tensors = _pick(out, layer)
            for t in tensors:
                if t.requires_grad:
                    t.retain_grad()
            cap.tensors = tensors

    def at_root(module, args, out):
        cap.padded = tuple(args[0].shape[-2:])

    def at_transform(module, args, out):
        cap.size = tuple(out[0].image_sizes[0])

    handles = [
        model.get_submodule(layer.module).register_forward_hook(at_layer),
        model.get_submodule(root).register_forward_hook(at_root),
    ]
    transform = getattr(model, "transform", None)
    if isinstance(transform, nn.Module):
        handles.append(transform.register_forward_hook(at_transform))
    try:
        yield cap
    finally:
        for h in handles:
            h.remove()

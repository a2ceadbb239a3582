"""Fitting a weights file to a built model: to the whole model, or to its backbone.

A file may be a torchvision classification state dict (its published name or any other,
e.g. mobilenet_v2-b0353104.pth with keys "features.0.0.weight", ...), a detection model's
state dict, or a Studio checkpoint (last.pt / best.pt, read by `read_weights_file`). Its
keys are compared with each candidate part of the model, as saved and with common prefixes
stripped ("module.", "backbone.body.", "features.", ...); the pairing where the most
tensors fit (same name and shape) is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from studio.ml.models.weights import WeightsError, freeze_batchnorm, load_matching

# Prefixes stripped from a file's keys: DataParallel's "module.", Studio's semantic wrapper
# "net.", detection models' "backbone.body." / "backbone.", and a classifier's "features."
# (torchvision's detection backbones keep a MobileNet's features without that prefix).
_STRIP = ("module.", "net.", "backbone.body.", "backbone.", "body.", "features.", "model.")
# Where a built model keeps its backbone, by family (see groups.py): two- and one-stage
# detectors and the composable detector, SSD, torchvision segmenters, the UNet.
BACKBONE_PATHS = ("backbone.body", "backbone.features", "net.backbone", "net.encoder")


class Part:
    """What a weights file is loaded into: the whole model or its backbone."""

    MODEL = "whole model"
    BACKBONE = "backbone"


@dataclass
class Fit:
    """The best pairing of a file's tensors with a part of the model."""

    path: str  # the submodule's path ("" for the whole model)
    module: nn.Module
    state: dict[str, torch.Tensor]  # the file's tensors, renamed to the module's keys
    matched: int  # tensors of equal name and shape


def _variants(state: Mapping[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The file's keys as saved and with each known prefix (or two of them) stripped."""
    out = [dict(state)]
    for _round in range(2):  # "module.backbone.body." takes two strips
        more = []
        for variant in out:
            for prefix in _STRIP:
                kept = {
                    k.removeprefix(prefix): v for k, v in variant.items() if k.startswith(prefix)
                }
                if kept:
                    more.append(kept)
        out += more
    return out


def _matched(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> int:
    return sum(1 for k, v in state.items() if k in own and own[k].shape == v.shape)


def backbone_of(model: nn.Module) -> tuple[str, nn.Module] | None:
    """(path, module) of the model's backbone, or None for a model without a known one."""
    modules = dict(model.named_modules())
    for path in BACKBONE_PATHS:
        if path in modules:
            return path, modules[path]
    return None


def best_fit(model: nn.Module, state: Mapping[str, torch.Tensor], part: str) -> Fit:
    """The part of `model` (the backbone for Part.BACKBONE; the whole model or the backbone
    for Part.MODEL) and renaming of `state` where the most tensors fit."""
    targets: list[tuple[str, nn.Module]] = [] if part == Part.BACKBONE else [("", model)]
    backbone = backbone_of(model)
    if backbone is not None:
        targets.append(backbone)
    best = Fit("", model, {}, 0)
    for path, module in targets:
        own = module.state_dict()
        for variant in _variants(state):
            n = _matched(own, variant)
            if n > best.matched:
                best = Fit(path, module, variant, n)
    return best


def load_weights_into(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, part: str
) -> list[str]:
    """Load the tensors of `state` (from file `source`) that fit `model` (see `best_fit`);
    the rest keeps its random init. A backbone given its own file gets frozen BatchNorm, as
    with torchvision's ImageNet weights. Returns warnings for the user.

    Raises WeightsError naming `source` and the count of tensors that matched when the file
    fits no part of the model."""
    fit = best_fit(model, state, part)
    if fit.matched == 0:
        where = "the backbone" if part == Part.BACKBONE else "the model or its backbone"
        raise WeightsError(
            f"{source}: fits no part of this model: 0 of its {len(state)} tensors match "
            f"{where} by name and shape (it was saved from a different architecture)"
        )
    if fit.path == "":
        return load_matching(model, fit.state, source)
    own = fit.module.state_dict()
    loadable = {k: v for k, v in fit.state.items() if k in own and own[k].shape == v.shape}
    fit.module.load_state_dict(loadable, strict=False)
    freeze_batchnorm(fit.module)
    wanted = [k for k in own if not k.endswith("num_batches_tracked")]
    missing = len(wanted) - len([k for k in wanted if k in loadable])
    if missing:
        return [
            f"{source}: loaded {len(loadable)} tensors into the backbone; {missing} of its "
            "tensors are not in the file and keep their random init"
        ]
    return []

"""Backbone, neck and head: the parameter groups of a built model, for freezing schedules
and per-group learning rates."""

from __future__ import annotations

from torch import nn

# Parameter-name prefixes of each group, across the model families built here: torchvision's
# two-stage and one-stage detectors (backbone.body / backbone.fpn), SSD (backbone.features /
# backbone.extra), the composable detector (backbone.body / backbone.neck), torchvision
# segmenters (net.backbone) and the UNet (net.encoder / net.decoder). Anything else is head.
_GROUP_PREFIXES = {
    "backbone": ("backbone.body.", "backbone.features.", "net.backbone.", "net.encoder."),
    "neck": ("backbone.fpn.", "backbone.neck.", "backbone.extra.", "net.decoder."),
}


def param_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Split a built model's parameters into "backbone", "neck" and "head" (every key present,
    possibly empty), for freezing schedules and per-group learning rates.

    All parameters are listed, including those torchvision froze at build time
    (requires_grad False, e.g. the stem of a pretrained ResNet).
    """
    groups: dict[str, list[nn.Parameter]] = {"backbone": [], "neck": [], "head": []}
    for pname, param in model.named_parameters():
        group = next(
            (g for g, prefixes in _GROUP_PREFIXES.items() if pname.startswith(prefixes)), "head"
        )
        groups[group].append(param)
    return groups

"""`studio weights`: for each model, the pretrained files it can use and where they are.

An offline lab copies torchvision's files, by their published names, into a weights folder
($STUDIO_WEIGHTS_DIR or a project's "weights folder" setting) once; Studio looks there before
torch's cache and before trying to download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch.hub

from studio.ml.models.composable import BACKBONE_NODES
from studio.ml.models.registry import get_spec, list_models
from studio.ml.models.spec import ModelSpec
from studio.ml.models.torchvision_models import BACKBONE_ARCH
from studio.ml.models.weights import (
    WEIGHTS_DIR_ENV,
    WeightsError,
    default_weights,
    locate,
    published_files,
    published_name,
    weights_dirs,
)
from studio.ml.models.weights_fit import Part


@dataclass(frozen=True)
class WeightsFile:
    """One file a model can use: torchvision's published name, the part it fills (whole
    model or backbone), and where it is on this machine (None: absent)."""

    model: str
    arch: str  # torchvision's builder the file belongs to, e.g. "mobilenet_v2"
    name: str  # e.g. "mobilenet_v2-7ebf99e0.pth", the DEFAULT one
    part: str  # Part.MODEL or Part.BACKBONE
    found: Path | None  # the file used: the DEFAULT one, or another where only that is here
    others: tuple[str, ...] = ()  # other published files of the same weights, also accepted


def _files(spec: ModelSpec) -> list[tuple[str, str]]:
    """(torchvision arch, part) of the files `spec` can use."""
    if not spec.supports_pretrained:
        return []
    if spec.family == "composable":
        if "backbone" in spec.options:
            return [(str(spec.options["backbone"]), Part.BACKBONE)]
        # The generic composable detector takes any backbone: each one's file.
        return [(b, Part.BACKBONE) for b in BACKBONE_NODES]
    if spec.name in BACKBONE_ARCH:
        return [(spec.name, Part.MODEL), (BACKBONE_ARCH[spec.name], Part.BACKBONE)]
    return []  # a plugin's model: its files are its own business


def weights_files(model: str | None = None) -> list[WeightsFile]:
    """The files each model (or only `model`) can use, with where each one is found."""
    specs = [get_spec(model)] if model else list_models()
    out = []
    for spec in specs:
        for arch, part in _files(spec):
            try:
                files = published_files(arch)
            except WeightsError:
                continue
            used = locate(default_weights(arch))
            names = tuple(published_name(w) for w in files)
            out.append(WeightsFile(spec.name, arch, names[0], part, used, names[1:]))
    return out


def cache_dir() -> Path:
    """torch's hub cache of checkpoints ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def format_weights_table(files: list[WeightsFile]) -> str:
    """The table `studio weights` prints: one line a file, then where to put missing ones."""
    dirs = weights_dirs()
    lines = [
        "weights folders: "
        + (", ".join(map(str, dirs)) if dirs else f"none (set {WEIGHTS_DIR_ENV})"),
        f"torch cache: {cache_dir()}",
        "",
    ]
    model = None
    for f in files:
        if f.model != model:
            model = f.model
            lines.append(model)
        where = f"present: {f.found}" if f.found else "missing"
        lines.append(f"  {f.part:<12} {f.name:<50} {where}")
        if f.others and not f.found:
            lines.append(f"  {'':<12} (or {', '.join(f.others)})")
    if not files:
        lines.append("no pretrained files known for this model")
    target = dirs[0] if dirs else f"${WEIGHTS_DIR_ENV}"
    lines += [
        "",
        f"Put a missing file, under the name shown, in {target} (or the project's weights "
        f"folder setting, or {cache_dir()}); Studio looks there before downloading.",
    ]
    return "\n".join(lines)

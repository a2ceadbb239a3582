"""Before a run starts: the settings that will run, and what cannot work.

`config_from_settings(project, settings)` is the one-click recipe (recipe.py) with the
Advanced section's remembered choices on top. `check(project, cfg)` says plainly what
cannot work before anything starts:

* errors (training does not start): no classes, no labelled training images, no class
  with a training example, a weights file that does not exist, a device that is absent;
* warnings (training starts): a class without training examples, an empty validation
  split (part of train is held out, or nothing is evaluated), pretrained weights that are
  neither cached nor downloadable. Then the run trains from scratch (or from the ImageNet
  backbone when only that is cached) rather than refusing, and says so.

Qt-free; it reads the project (a few queries) and may probe the network for a second,
so the window runs it in a worker thread. What the window's Advanced section lists
(models, parts, the model summary) is in choices.py.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.kinds import Split
from studio.core.project import Project
from studio.ml.data.snapshot import LABELLED_STATUSES

# The Advanced section's offer and the recipe stay importable from here, where the
# window reads them.
from studio.ml.run.choices import (
    ModelChoice,
    PanelInfo,
    init_summary_worker,
    panel_info,
    summary_text,
)
from studio.ml.run.recipe import (
    CPU_INSTANCE_BATCH,
    CPU_INSTANCE_IMAGE_SIZE,
    DEFAULT_DETECTOR,
    DEFAULT_SEGMENTER,
    default_model,
    recipe,
    recommended,
)
from studio.ml.train.config import TrainConfig
from studio.ml.train.device import resolve_device

DOWNLOAD_HOST = ("download.pytorch.org", 443)
SETTINGS_KEY = "train_settings"  # project setting: the Advanced section's choices
_CONFIG_FIELDS = {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Problem:
    level: str  # "error": training cannot start; "warning": it starts, but the user should know
    text: str


@dataclass
class Preflight:
    """The config that will run (unavailable weights switched off) and the problems found."""

    config: TrainConfig
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [p.text for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [p.text for p in self.problems if p.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


# --- the settings ------------------------------------------------------------------------


def config_from_settings(
    project: Project, settings: dict[str, Any], device: str | None = None
) -> tuple[TrainConfig, list[Problem]]:
    """The recipe for `project` with the remembered `settings` (TrainConfig fields) on top.

    Unknown keys (a setting of an older version) are dropped with a warning instead of
    refusing: a remembered setting must not make the Train button fail forever."""
    auto_model, auto_dev = recommended(project)
    model = str(settings.get("model") or auto_model)
    base = recipe(model, device or auto_dev)
    unknown = sorted(set(settings) - _CONFIG_FIELDS)
    problems = [Problem("warning", f"ignored unknown remembered setting(s): {', '.join(unknown)}")]
    # None is a value here: epochs None trains until the time budget runs out.
    known = {k: v for k, v in settings.items() if k in _CONFIG_FIELDS}
    known["model"] = model  # "" in the settings means the recommended one
    cfg = TrainConfig.from_dict({**base, **known})
    return cfg, problems if unknown else []


# --- the checks --------------------------------------------------------------------------


def check(
    project: Project, cfg: TrainConfig, *, online: Callable[[], bool] | None = None
) -> Preflight:
    """What cannot work for `cfg` on `project`. `online()` says whether pretrained weights
    could be downloaded (default: a 2-second connection to download.pytorch.org); it is
    only asked when a file is missing from the cache."""
    from studio.ml.run.process import use_weights_setting

    use_weights_setting(project)  # the project's weights folder is searched too
    problems: list[Problem] = []
    try:
        cfg.validate()
    except StudioError as e:
        problems.append(Problem("error", f"The settings cannot work: {e}."))
    problems += data_problems(project, cfg)
    problems += device_problems(cfg.device) + budget_problems(cfg)
    cfg, weight_problems = weights_problems(cfg, online or can_download)
    return Preflight(cfg, problems + weight_problems)


def data_problems(project: Project, cfg: TrainConfig) -> list[Problem]:
    """Classes, labelled images and the validation split, as the engine will see them."""
    snap = project.snapshot()
    if not snap.classes:
        return [Problem("error", "The project has no classes: add classes and label images.")]
    shapes: dict[int, Counter[int]] = {}  # image id -> shapes per class
    for a in snap.annotations:
        shapes.setdefault(a.image_id, Counter())[a.class_id] += 1
    usable = {
        split: [
            im
            for im in snap.images
            if im.split == split and (im.id in shapes or im.status in LABELLED_STATUSES)
        ]
        for split in (Split.TRAIN, Split.VAL)
    }
    train, val = usable[Split.TRAIN], usable[Split.VAL]
    if not train:
        where = " (the labelled ones are all in the val or test split)" if shapes else ""
        return [
            Problem(
                "error",
                "No labelled images to train on: draw boxes or polygons on some images in "
                f"the train split, or mark images without objects as done{where}.",
            )
        ]
    per_class: Counter[int] = Counter()
    for im in train:
        per_class.update(shapes.get(im.id, Counter()))
    missing = [c.name for c in snap.classes if per_class[c.id] == 0]
    problems = _class_problems(missing, len(snap.classes))
    if not val:
        problems.append(_empty_val_problem(cfg, len(train)))
    return problems


def _class_problems(missing: list[str], n_classes: int) -> list[Problem]:
    """What it means that the classes `missing` have no training example."""
    if len(missing) == n_classes:
        text = (
            "No class has a labelled example in the train split: the model would have "
            "nothing to learn. Draw shapes on training images first."
        )
        return [Problem("error", text)]
    if not missing:
        return []
    names = ", ".join(f"'{n}'" for n in missing[:8]) + (" …" if len(missing) > 8 else "")
    text = (
        f"No training example of {names}: the model cannot learn "
        f"{'this class' if len(missing) == 1 else 'these classes'}."
    )
    return [Problem("warning", text)]


def _empty_val_problem(cfg: TrainConfig, n_train: int) -> Problem:
    if cfg.val_fraction > 0 and n_train >= 5:
        n = max(1, round(n_train * cfg.val_fraction))
        text = (
            f"The validation split is empty: {n} of the {n_train} training images "
            "are held out to measure AP. Put images in the val split for a stable measure."
        )
    else:
        text = (
            "The validation split is empty and there are too few training images to hold "
            "some out: AP is not measured and the last epoch's weights become the model."
        )
    return Problem("warning", text)


SHORT_BUDGET_S = 20.0  # below this, set-up (data, model) is most of a time budget


def budget_problems(cfg: TrainConfig) -> list[Problem]:
    """A time budget too short to train much: the set-up alone (reading the data,
    building the model) took 5-9 s here, so a 5 s budget ended late and trained nothing."""
    b = cfg.time_budget
    if b is not None and b < SHORT_BUDGET_S:
        return [Problem("warning", f"A {b:g} s budget is mostly set-up (reading the data, "
                        "building the model): the run may train little or nothing, and end "
                        "a few seconds late.")]  # fmt: skip
    return []


def device_problems(device: str) -> list[Problem]:
    try:
        resolve_device(device)
    except (StudioError, RuntimeError) as e:
        return [Problem("error", f"{e}: choose the device auto or cpu.")]
    return []


# --- pretrained weights -----------------------------------------------------------------


def needed_weights(cfg: TrainConfig) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(full-model files, backbone files) that `cfg` loads from torchvision's cache, as
    (architecture, cache path). Empty for factories of one's own and models without them."""
    from studio.ml.models import get_spec
    from studio.ml.models.composable import DEFAULT_OPTIONS
    from studio.ml.models.torchvision_models import BACKBONE_ARCH, LOCAL_BUILDERS
    from studio.ml.models.weights import cache_path, default_weights, locate

    if ":" in cfg.model:
        return [], []
    spec = get_spec(cfg.model)
    if not spec.supports_pretrained:
        return [], []
    if spec.family == "composable":
        options = {**DEFAULT_OPTIONS, **spec.options, **cfg.model_options}
        full, backbone = [], [str(options["backbone"])]
    else:
        # A model built here from torchvision's parts has no whole-model file: its
        # "default" is its ImageNet backbone (it was refused as "no pretrained weights").
        full = [] if spec.name in LOCAL_BUILDERS else [spec.name]
        backbone = [BACKBONE_ARCH[spec.name]]

    def files(archs: list[str]) -> list[tuple[str, Path]]:
        # Where each file is (a weights folder, the cache), else where it would be cached.
        out = []
        for a in archs:
            w = default_weights(a)
            out.append((a, locate(w) or cache_path(w)))
        return out

    weights = cfg.weights.strip().lower()
    # A backbone file of one's own is checked as a file, not fetched.
    wants_backbone = cfg.backbone_weights.strip().lower() in ("imagenet", "default")
    if weights == "default":
        # Composable detectors take "default" to mean their ImageNet backbone.
        return files(full), files(backbone) if (wants_backbone or not full) else []
    return [], files(backbone) if wants_backbone else []


def weights_problems(
    cfg: TrainConfig, online: Callable[[], bool]
) -> tuple[TrainConfig, list[Problem]]:
    """`cfg` with pretrained weights that cannot be had switched off, and what was switched."""
    weights = cfg.weights.strip()
    backbone = cfg.backbone_weights.strip()
    if backbone.lower() not in ("none", "imagenet", "default"):
        if not Path(backbone).expanduser().is_file():
            return cfg, [Problem("error", f"The backbone weights file {backbone} does not exist.")]
        if weights.lower() == "default":
            return cfg, []  # a backbone file replaces the default weights: nothing to fetch
    if weights.lower() not in ("none", "default"):
        if not Path(weights).expanduser().is_file():
            return cfg, [Problem("error", f"The weights file {weights} does not exist.")]
        return cfg, []
    try:
        full, backbone = needed_weights(cfg)
    except StudioError as e:
        return cfg, [Problem("error", f"{e}.")]
    missing_full = [a for a, p in full if not p.is_file()]
    missing_backbone = [a for a, p in backbone if not p.is_file()]
    if full and not missing_full:
        return cfg, []  # the full model is cached; the backbone file is not used then
    if not missing_full and not missing_backbone:
        return cfg, []
    if online():
        return cfg, []  # the engine downloads them
    if backbone and not missing_backbone:
        text = (
            f"Pretrained weights for {', '.join(missing_full)} are not cached and this "
            "computer is offline: training starts from the ImageNet backbone instead."
        )
        return replace(cfg, weights="none"), [Problem("warning", text)]
    text = (
        f"Pretrained weights ({', '.join(missing_full + missing_backbone)}) are not cached "
        "and this computer is offline: the model trains from scratch (random init). Expect "
        "lower accuracy and longer training; put the files in "
        f"{_cache_dir()} to use them."
    )
    return replace(cfg, weights="none", backbone_weights="none"), [Problem("warning", text)]


def _cache_dir() -> str:
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def can_download(timeout: float = 2.0) -> bool:
    """Whether torchvision's download server answers (a TCP connection, nothing fetched)."""
    try:
        with socket.create_connection(DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False


__all__ = [
    "CPU_INSTANCE_BATCH",
    "CPU_INSTANCE_IMAGE_SIZE",
    "DEFAULT_DETECTOR",
    "DEFAULT_SEGMENTER",
    "SETTINGS_KEY",
    "ModelChoice",
    "PanelInfo",
    "Preflight",
    "Problem",
    "can_download",
    "check",
    "config_from_settings",
    "data_problems",
    "default_model",
    "device_problems",
    "init_summary_worker",
    "needed_weights",
    "panel_info",
    "recipe",
    "recommended",
    "summary_text",
    "weights_problems",
]

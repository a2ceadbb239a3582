"""The options of `studio train`, and how they become training settings: torch-free.

One list of options (`add_train_arguments`) and one mapping to TrainConfig fields
(`settings_from_args`), so the command line offers what the window's Advanced section
offers and both build the same config: the recipe with the chosen settings on top
(`preflight.config_from_settings`, used by the window and by `studio train` alike). Only
options given on the command line become settings; the rest is the recipe's.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any

from studio.core.errors import StudioError
from studio.ml.train.config import DEVICES, OPTIMIZERS, TrainConfig

# The composable detector's build options (see composable.DEFAULT_OPTIONS): flag -> (type, help).
COMPOSABLE_OPTIONS: dict[str, tuple[type, str]] = {
    "backbone": (str, "composable detector: torchvision backbone, e.g. mobilenet_v2, resnet18"),
    "neck": (str, "composable detector: the neck, fpn or pan"),
    "head": (str, "composable detector: the head, fcos or retinanet"),
    "neck_channels": (int, "composable detector: channels of every P level (multiple of 16)"),
    "downsample": (str, "composable detector: PAN downsampling, conv or s2d (space-to-depth)"),
    "block": (str, "composable detector: PAN block, c2f or c3"),
    "depth": (int, "composable detector: bottlenecks per PAN block"),
    "head_convs": (int, "composable detector: FCOS tower depth"),
    "attention": (
        str,
        "composable detector: attention after each neck level: none, se, eca "
        "(channel) or cbam (channel + spatial)",
    ),
}
# Options with a fixed set of values. Spelled out here because this module stays torch-free;
# equal to studio.ml.models.attention.ATTENTIONS (tests/ml/test_attention.py checks).
COMPOSABLE_CHOICES: dict[str, tuple[str, ...]] = {"attention": ("none", "se", "eca", "cbam")}
_FIELDS = {f.name for f in fields(TrainConfig)}
# Command-line option -> TrainConfig field, with its argparse keywords.
RECIPE_OPTIONS: dict[str, dict[str, Any]] = {
    "epochs": {"type": int, "help": "train for this many epochs (with a budget: whichever ends first)"},
    "time_budget": {"type": float, "metavar": "SECONDS", "help": "train for this long, evaluation included"},
    "batch_size": {"type": int, "help": "images per step (default: the recipe's, by device)"},
    "image_size": {"type": int, "metavar": "PIXELS", "help": "shorter (or fixed) input side, pixels"},
    "weights": {"metavar": "default|none|PATH", "help": "pretrained weights of the whole model: torchvision's (default), none, or a file (torchvision state dict or Studio last.pt/best.pt)"},
    "backbone_weights": {"metavar": "imagenet|none|PATH", "help": "backbone weights: torchvision's ImageNet file (imagenet), none, or a file such as mobilenet_v2-b0353104.pth"},
    "optimizer": {"choices": OPTIMIZERS, "help": "adamw (fine-tuning) or sgd (momentum 0.9)"},
    "lr": {"type": float, "help": "head learning rate (default: AdamW 1e-3 x batch / 8 on a pretrained backbone, 2e-3 x batch / 8 from scratch, 1e-4 x batch / 8 for a pretrained detector; SGD 0.02 x batch / 16)"},
    "backbone_lr_mult": {"type": float, "metavar": "X", "help": "pretrained backbone learning rate = lr x this, once unfrozen (a backbone from scratch trains at lr)"},
    "weight_decay": {"type": float, "help": "weight decay (not on biases and norms)"},
    "lr_decay_start": {"type": float, "metavar": "F", "help": "share of the run at the full learning rate before its cosine decay (default 0.75; 0: cosine over the whole run)"},
    "resize_from": {"type": float, "metavar": "F", "help": "start training on inputs this share of the input size, grown to full by the learning-rate decay (default: 0.625 from scratch, 1 on pretrained weights; 1: off)"},
    "ema": {"action": argparse.BooleanOptionalAction, "help": "validate and save a moving average of the weights (default on)"},
    "freeze_epochs": {"type": int, "metavar": "N", "help": "epochs the pretrained backbone stays frozen (default: progressive unfreezing planned over the run)"},
    "patience": {"type": int, "metavar": "EPOCHS", "help": "stop after this many evaluations without improvement (runs given --epochs only: a time budget runs to its end)"},
    "hflip": {"type": float, "metavar": "P", "help": "probability of a horizontal flip"},
    "color_jitter": {"type": float, "metavar": "S", "help": "brightness/contrast/saturation jitter strength; 0: off"},
    "scale_range": {"type": float, "nargs": 2, "metavar": ("LO", "HI"), "help": "random shorter side, x image size"},
    "workers": {"type": int, "help": "data-loader worker processes"},
    "seed": {"type": int, "help": "random seed"},
}  # fmt: skip
# Augmentation off: the values of each augmentation setting that mean "none".
NO_AUGMENT = {"hflip": 0.0, "color_jitter": 0.0, "scale_range": [1.0, 1.0]}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `studio train` (besides DIR and --resume), each with a --help line."""
    p.add_argument(
        "--model",
        help="a model name from `studio models` (default: chosen for you); with --backbone/"
        "--neck/--head, composable (also composable_<backbone>_<neck>_<head>)",
    )
    for name, (kind, text) in COMPOSABLE_OPTIONS.items():
        choices = COMPOSABLE_CHOICES.get(name)
        p.add_argument(
            _flag(name),
            type=kind,
            dest=f"part_{name}",
            choices=choices,
            metavar=None if choices else ("N" if kind is int else name.split("_")[0].upper()),
            help=text,
        )
    for name, kw in RECIPE_OPTIONS.items():
        if name in _FIELDS:  # a setting the config no longer has is not offered
            p.add_argument(_flag(name), dest=name, default=None, **kw)
    p.add_argument("--no-augment", action="store_true", help="no flips, colour jitter or scaling")
    p.add_argument("--device", choices=DEVICES, help="where to train (default auto)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any other training setting (a TrainConfig field), VALUE as JSON, e.g. "
        "--set warmup_iters=50; repeatable",
    )


def settings_from_args(a: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the command line set (what is absent is the recipe's).

    Raises StudioError for a --set of an unknown field or a part option without a
    composable model."""
    out: dict[str, Any] = {}
    parts = {n: getattr(a, f"part_{n}") for n in COMPOSABLE_OPTIONS}
    parts = {n: v for n, v in parts.items() if v is not None}
    model = getattr(a, "model", None)
    if parts:
        model = model or "composable"
        if not model.startswith("composable"):
            shown = ", ".join(_flag(n) for n in parts)
            raise StudioError(f"{shown}: options of the composable detector (--model composable)")
        out["model_options"] = parts
    if model:
        out["model"] = model
    if getattr(a, "no_augment", False):
        out.update(NO_AUGMENT)
    for name in RECIPE_OPTIONS:
        value = getattr(a, name, None)
        if value is not None:
            out[name] = list(value) if name == "scale_range" else value
    if getattr(a, "device", None):
        out["device"] = a.device
    out.update(_parse_sets(getattr(a, "set", []) or []))
    return out


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _FIELDS:
            raise StudioError(
                f"--set {item!r}: expected FIELD=VALUE with FIELD a training setting "
                f"({', '.join(sorted(_FIELDS))})"
            )
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text  # a bare word: a string
        _check_type(item, key, out[key])
    return out


def _check_type(item: str, key: str, value: Any) -> None:
    """Refuse a --set value of the wrong kind for its field (by the field's type and
    default) before a run exists: warmup_iters=abc used to fail inside the run."""
    f = next(f for f in fields(TrainConfig) if f.name == key)
    kind = str(f.type)
    default = f.default
    if value is None:
        ok = "None" in kind
    elif kind.startswith(("list", "tuple")):
        ok = isinstance(value, list)
    elif kind.startswith("dict"):
        ok = isinstance(value, dict)
    elif "bool" in kind:
        ok = isinstance(value, bool)
    elif "int" in kind and "float" not in kind:
        ok = type(value) is int
    elif "float" in kind:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif "str" in kind:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        shown = "null" if default is None else json.dumps(default, default=str)
        raise StudioError(
            f"--set {item!r}: {key} takes {kind.replace(' | None', ' or null')} "
            f"(default {shown}), not {json.dumps(value)}"
        )


def config_from_args(a: argparse.Namespace, base: dict[str, Any]) -> TrainConfig:
    """`base` (the recipe's TrainConfig fields) with the command line's settings on top: what
    `preflight.config_from_settings` makes of the same settings in the window."""
    settings = settings_from_args(a)
    return TrainConfig.from_dict({**base, **settings})

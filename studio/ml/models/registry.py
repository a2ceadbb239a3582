"""The model registry: what Studio can train, and how to build each model for a class count.

Every model is a `ModelSpec` registered with `register_model`: the built-in ones of
builtin.py, and those of plugins, which pass a builder of their own (see `ModelBuilder`). A builder
returns a module following the contract of the package docstring (torchvision's
detection API).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch import nn

from studio.ml.models import composable
from studio.ml.models.builtin import (
    BUILTIN_SPECS,
    FAMILY_BUILDERS,
    ModelBuilder,
    composable_spec,
)
from studio.ml.models.groups import param_groups
from studio.ml.models.spec import BuiltModel, ModelConfigError, ModelSpec
from studio.ml.models.weights import (
    BACKBONE_PRETRAINED,
    DEFAULT_WEIGHTS,
    NO_WEIGHTS,
    WEIGHTS_DIR_ENV,
    WeightsUnavailable,
    is_path_like,
    read_weights_file,
)
from studio.ml.models.weights_fit import Part, load_weights_into
from studio.ml.tasks import TASKS

# Importable from here, where they were defined before.
__all__ = [
    "MODELS",
    "TASKS",
    "BuiltModel",
    "ModelBuilder",
    "ModelConfigError",
    "ModelSpec",
    "build_model",
    "get_spec",
    "list_models",
    "param_groups",
    "register_model",
    "register_plugin_models",
    "resize_for",
]

MODELS: dict[str, ModelSpec] = {}  # name -> spec, in registration order


def _parse_composable(name: str) -> dict[str, Any] | None:
    """Options for a name "composable_<backbone>_<neck>_<head>", or None when it is not one."""
    rest = name.removeprefix("composable_")
    if rest == name:
        return None
    parts = rest.rsplit("_", 2)
    if len(parts) != 3:
        return None
    backbone, neck, head = parts
    if (
        backbone in composable.BACKBONE_NODES
        and neck in composable.NECKS
        and head in composable.HEADS
    ):
        return {"backbone": backbone, "neck": neck, "head": head}
    return None


_plugins_registered = False


def register_plugin_models() -> None:
    """Register the models plugins contributed (`studio.core.plugins`), once per process.

    A plugin registers a model through `PluginAPI.add_model(spec)` (a spec of a built-in
    family) or by calling `register_model(spec, build)` from its `register()`. Names are
    resolved only through the registry: a run's config or checkpoint cannot make Studio
    import a module of its choosing."""
    global _plugins_registered
    if _plugins_registered:
        return
    _plugins_registered = True
    from studio.core.plugins import contributions, load_plugins

    load_plugins()
    for plugin in contributions().models:
        if plugin.spec.name not in MODELS:
            try:
                register_model(plugin.spec, getattr(plugin, "build", None))
            except ModelConfigError:
                continue  # a spec without a builder: it stays unknown, and says so when named


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model (plugins' included), or of any
    "composable_<backbone>_<neck>_<head>" name."""
    if name not in MODELS:
        register_plugin_models()
    if name in MODELS:
        return MODELS[name]
    options = _parse_composable(name)
    if options is not None:
        return composable_spec(
            name,
            options,
            f"{options['backbone']} + {options['neck'].upper()} + {options['head']} head",
        )
    raise ModelConfigError(f"unknown model {name!r}; `studio models` lists them")


def list_models(task: str | None = None) -> list[ModelSpec]:
    """Registered models in a stable order, optionally only those for `task`."""
    if task is not None and task not in TASKS:
        raise ModelConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    register_plugin_models()
    return [s for s in MODELS.values() if task is None or s.task == task]


def resize_for(spec: ModelSpec, image_size: int) -> dict[str, int]:
    """The model's resize settings scaled to `image_size` (min_size, or the fixed size)."""
    if "fixed" in spec.resize:
        return {"fixed": image_size}
    ratio = spec.resize["max_size"] / spec.resize["min_size"]
    return {"min_size": image_size, "max_size": round(image_size * ratio)}


_MODEL_BUILDERS: dict[str, ModelBuilder] = {}  # name -> builder of its own


def register_model(
    spec: ModelSpec, build: ModelBuilder | None = None, *, replace: bool = False
) -> ModelSpec:
    """Make `spec` trainable: `get_spec`, `list_models` and `build_model` know it from now.

    `build` constructs it (see `ModelBuilder`); without one, spec.family must be a
    built-in family. A name already registered raises unless `replace`. For plugins:
    ``register_model(ModelSpec(name="my_detector", ...), build_my_detector)``."""
    if spec.name in MODELS and not replace:
        raise ModelConfigError(f"a model named {spec.name!r} is already registered")
    if spec.task not in TASKS:
        raise ModelConfigError(f"unknown task {spec.task!r}; choose one of: {', '.join(TASKS)}")
    if build is None and spec.family not in FAMILY_BUILDERS:
        raise ModelConfigError(
            f"model {spec.name!r} of family {spec.family!r} needs a builder of its own"
        )
    MODELS[spec.name] = spec
    if build is not None:
        _MODEL_BUILDERS[spec.name] = build
    else:
        _MODEL_BUILDERS.pop(spec.name, None)
    return spec


for _s in BUILTIN_SPECS:
    register_model(_s)


def _construct(
    spec: ModelSpec,
    num_classes: int,
    resize: dict[str, int],
    pretrained: bool,
    backbone_pretrained: bool,
    options: dict[str, Any],
) -> nn.Module:
    build = _MODEL_BUILDERS.get(spec.name) or FAMILY_BUILDERS[spec.family]
    return build(spec, num_classes, resize, pretrained, backbone_pretrained, options)


def _checked_size(spec: ModelSpec, num_classes: int, image_size: int | None) -> int:
    """The input size to build for; raises ModelConfigError for bad arguments."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelConfigError(f"num_classes must be a positive integer, not {num_classes!r}")
    size = spec.default_image_size if image_size is None else int(image_size)
    if size < 32:
        raise ModelConfigError(f"image_size must be at least 32 pixels, not {size}")
    return size


def _backbone_mode(backbone_weights: str | os.PathLike[str]) -> str:
    """NO_WEIGHTS, DEFAULT_WEIGHTS (torchvision's ImageNet file) or the path as given."""
    mode = str(backbone_weights).strip()
    if mode.lower() == NO_WEIGHTS:
        return NO_WEIGHTS
    if mode.lower() in BACKBONE_PRETRAINED:
        return DEFAULT_WEIGHTS
    if not mode:
        raise ModelConfigError("backbone_weights must be 'none', 'imagenet' or a file path")
    return mode


def build_model(
    name: str,
    num_classes: int,
    *,
    weights: str | os.PathLike[str] = NO_WEIGHTS,
    backbone_weights: str | os.PathLike[str] = NO_WEIGHTS,
    image_size: int | None = None,
    **options: Any,
) -> BuiltModel:
    """Build model `name` for `num_classes` object classes (background not counted).

    weights: "none" (random init), "default" (torchvision's pretrained weights, found in a
    weights folder, the torch cache or downloaded; for composable detectors, the ImageNet
    backbone) or a path to a state dict / Studio checkpoint, fitted to the whole model or
    its backbone (tensors whose shape differs, such as heads for another class count, keep
    their random init, with a warning).
    backbone_weights: "none", "imagenet" (alias "default"): torchvision's ImageNet weights
    for the backbone, BatchNorm then frozen; or a path to a file for the backbone (a
    torchvision classification state dict by any name, or a Studio checkpoint). A backbone
    file replaces weights="default".
    Pretrained weights that cannot be had (offline, not in a weights folder) never stop the
    build: it falls back (model -> ImageNet backbone -> random init) with ONE warning.
    image_size: the input size in pixels (min_size, or the fixed size); the spec's default if None.
    options: model-specific, e.g. backbone=/neck=/head= for "composable", or keywords of the
    torchvision builder (score_thresh, trainable_backbone_layers...).

    Raises ModelConfigError or WeightsError (StudioError) for bad arguments and files.
    """
    spec = get_spec(name)
    size = _checked_size(spec, num_classes, image_size)
    backbone = _backbone_mode(backbone_weights)
    merged = {**spec.options, **options}
    resize = resize_for(spec, size)
    warnings: list[str] = []
    if backbone != NO_WEIGHTS and spec.family == "unet":
        warnings.append("unet has no pretrained backbone; backbone_weights ignored")
        backbone = NO_WEIGHTS
    if merged.get("backbone") in composable.SCRATCH_BACKBONES:
        # Made to train from scratch: there is no file to miss, so no warning.
        backbone = NO_WEIGHTS if backbone == DEFAULT_WEIGHTS else backbone
        weights = NO_WEIGHTS if str(weights).strip().lower() == DEFAULT_WEIGHTS else weights

    def construct(pretrained: bool, backbone_pretrained: bool) -> nn.Module:
        return _construct(spec, num_classes, resize, pretrained, backbone_pretrained, dict(merged))

    model, class_names = _with_weights(spec, str(weights), backbone, construct, warnings)
    return BuiltModel(
        model=model,
        spec=spec,
        warnings=warnings,
        image_size=size,
        resize=resize,
        options=merged,
        class_names=class_names,
    )


def _with_weights(
    spec: ModelSpec,
    weights: str,
    backbone: str,
    construct: Callable[[bool, bool], nn.Module],
    warnings: list[str],
) -> tuple[nn.Module, list[str] | None]:
    """The model built with `weights` and `backbone` (see build_model) and the class names
    of a Studio checkpoint given as weights; appends to `warnings` what could not be used."""
    mode = weights.strip().lower()
    backbone_file = backbone if is_path_like(backbone) else None
    # Read files before the slow build: a bad file fails fast.
    loaded = read_weights_file(weights) if is_path_like(weights) else None
    backbone_state = read_weights_file(backbone_file).state_dict if backbone_file else None
    want_model = mode == DEFAULT_WEIGHTS and backbone_file is None and loaded is None
    if want_model and not spec.supports_pretrained:
        warnings.append(f"{spec.name} has no pretrained weights; it starts from random init")
        want_model = False
    model = _construct_pretrained(
        spec, construct, want_model, backbone == DEFAULT_WEIGHTS, warnings
    )
    if backbone_state is not None:
        warnings += load_weights_into(model, backbone_state, str(backbone_file), Part.BACKBONE)
    if loaded is not None:
        warnings += load_weights_into(model, loaded.state_dict, weights, Part.MODEL)
        return model, loaded.class_names
    return model, None


def _construct_pretrained(
    spec: ModelSpec,
    construct: Callable[[bool, bool], nn.Module],
    want_model: bool,
    want_backbone: bool,
    warnings: list[str],
) -> nn.Module:
    """Build with the pretrained weights wanted, falling back from the model's weights to
    the ImageNet backbone to random init when files cannot be had, with one warning."""
    attempts = [(True, want_backbone)] if want_model else []
    if want_backbone:
        attempts.append((False, True))
    missing: list[str] = []
    for pretrained, backbone_pretrained in attempts:
        try:
            model = construct(pretrained, backbone_pretrained)
        except WeightsUnavailable as exc:
            if exc.filename not in missing:
                missing.append(exc.filename or str(exc))
            continue
        if missing:
            warnings.append(_fallback_warning(spec, missing, "the ImageNet backbone"))
        return model
    if missing:
        warnings.append(_fallback_warning(spec, missing, "random init"))
    return construct(False, False)


def _fallback_warning(spec: ModelSpec, missing: list[str], start: str) -> str:
    files = ", ".join(missing)
    return (
        f"pretrained weights for {spec.name} ({files}) are not in a weights folder or the torch "
        f"cache and cannot be downloaded: it starts from {start}. `studio weights --model "
        f"{spec.name}` says where to put the files (or set {WEIGHTS_DIR_ENV})."
    )

"""Plugins: third-party code adds formats, models, panels and canvas layers.

A plugin is a module with a `register(api: PluginAPI)` function, advertised either as an
entry point in the group "studio.plugins" of an installed package::

    [project.entry-points."studio.plugins"]
    my_format = "my_package.studio_plugin"

or as a `*.py` file in a folder listed in the STUDIO_PLUGIN_PATH environment variable
(separated like PATH). `plugins/` at the top of this repository holds examples.
A plugin that fails to load is reported, never fatal: Studio starts without it.

The command line and the window load plugins the same way (`load_plugins()`); what a
plugin registered is kept in `contributions()`. Core holds the registrations without
knowing Qt or torch: the ml layer builds the contributed models, the window the panels
and canvas layers.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from studio.core.errors import StudioError

GROUP = "studio.plugins"
ENV_PATH = "STUDIO_PLUGIN_PATH"


@dataclass
class PluginInfo:
    name: str
    origin: str  # "entry point pkg:module" or a file path
    error: str | None = None


@dataclass(frozen=True)
class FormatPlugin:
    """`reader(path, images_dir, class_names) -> DatasetSpec`; `writer(snapshot, out) ->
    list[str]` (warnings). Either may be None. See studio.core.formats."""

    name: str
    reader: Callable[..., Any] | None
    writer: Callable[..., Any] | None


@dataclass(frozen=True)
class ModelPlugin:
    """A trainable model: `spec` is a `studio.ml.models.ModelSpec`, registered with the
    model registry when the ml layer first lists or builds models."""

    spec: Any


@dataclass(frozen=True)
class PanelPlugin:
    """A dock panel: `factory(window) -> QWidget`, called once per window; `window` is
    the main window (its `project` attribute is the open Project or None)."""

    title: str
    factory: Callable[[Any], Any]
    area: str = "right"  # "left", "right" or "bottom"


@dataclass(frozen=True)
class CanvasLayerPlugin:
    """A canvas layer: `factory() -> Layer` (see studio.ui.canvas.layers), added to
    every canvas the window makes."""

    name: str
    factory: Callable[[], Any]


@dataclass
class Contributions:
    formats: list[FormatPlugin] = field(default_factory=list)
    models: list[ModelPlugin] = field(default_factory=list)
    panels: list[PanelPlugin] = field(default_factory=list)
    canvas_layers: list[CanvasLayerPlugin] = field(default_factory=list)


_AREAS = ("left", "right", "bottom")


class PluginAPI:
    """What a plugin may extend. Kept small on purpose: each hook is a promise."""

    def __init__(self, into: Contributions):
        self._into = into

    def add_format(
        self,
        name: str,
        reader: Callable[..., Any] | None = None,
        writer: Callable[..., Any] | None = None,
    ) -> None:
        """Register an annotation format for `studio import`/`export` and File menus."""
        from studio.core import formats

        if name in formats.READERS or name in formats.WRITERS:
            raise StudioError(f"format {name!r} exists already")
        if reader is None and writer is None:
            raise StudioError(f"format {name!r} needs a reader or a writer")
        if reader is not None:
            formats.READERS[name] = reader
        if writer is not None:
            formats.WRITERS[name] = writer
        self._into.formats.append(FormatPlugin(name, reader, writer))

    def add_model(self, spec: Any) -> None:
        """Register a trainable model (a `studio.ml.models.ModelSpec`)."""
        if not getattr(spec, "name", None):
            raise StudioError("a model plugin's spec needs a name")
        self._into.models.append(ModelPlugin(spec))

    def add_panel(self, title: str, factory: Callable[[Any], Any], area: str = "right") -> None:
        """Register a dock panel built by `factory(window)`."""
        if area not in _AREAS:
            raise StudioError(f"panel area {area!r}: use one of {', '.join(_AREAS)}")
        self._into.panels.append(PanelPlugin(title, factory, area))

    def add_canvas_layer(self, name: str, factory: Callable[[], Any]) -> None:
        """Register a canvas layer built by `factory()` for each canvas."""
        self._into.canvas_layers.append(CanvasLayerPlugin(name, factory))


_loaded: list[PluginInfo] | None = None
_contributions = Contributions()


def _load_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"studio_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _discover() -> list[tuple[str, str, Callable[[], ModuleType]]]:
    found: list[tuple[str, str, Callable[[], ModuleType]]] = []
    for ep in entry_points(group=GROUP):
        found.append((ep.name, f"entry point {ep.value}", ep.load))
    for folder in filter(None, os.environ.get(ENV_PATH, "").split(os.pathsep)):
        for file in sorted(Path(folder).glob("*.py")):
            found.append((file.stem, str(file), lambda f=file: _load_file(f)))
    return found


def load_plugins(reload: bool = False) -> list[PluginInfo]:
    """Find and register every plugin once per process; returns what was found."""
    global _loaded, _contributions
    if _loaded is not None and not reload:
        return _loaded
    if reload:
        _forget_formats(_contributions)
        _contributions = Contributions()
    infos = []
    for name, origin, load in _discover():
        info = PluginInfo(name, origin)
        # A plugin that fails halfway registers nothing: it writes into its own
        # Contributions, merged only when register() returned.
        own = Contributions()
        try:
            load().register(PluginAPI(own))
        except Exception as e:  # a broken plugin must not stop Studio
            info.error = f"{type(e).__name__}: {e}"
            _forget_formats(own)
        else:
            for name_ in ("formats", "models", "panels", "canvas_layers"):
                getattr(_contributions, name_).extend(getattr(own, name_))
        infos.append(info)
    _loaded = infos
    return infos


def _forget_formats(contrib: Contributions) -> None:
    from studio.core import formats

    for f in contrib.formats:
        if f.reader is not None and formats.READERS.get(f.name) is f.reader:
            del formats.READERS[f.name]
        if f.writer is not None and formats.WRITERS.get(f.name) is f.writer:
            del formats.WRITERS[f.name]


def contributions() -> Contributions:
    """What the loaded plugins registered (empty until `load_plugins()` ran)."""
    return _contributions

"""Plugin discovery: third-party packages add annotation formats without patching Studio.

A plugin is a module with a `register(api: PluginAPI)` function, advertised either as an
entry point in the group "studio.plugins" of an installed package::

    [project.entry-points."studio.plugins"]
    my_format = "my_package.studio_plugin"

or as a `*.py` file in a folder listed in the STUDIO_PLUGIN_PATH environment variable
(separated like PATH). `plugins/` at the top of this repository holds an example.
A plugin that fails to load is reported, never fatal: Studio starts without it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from studio.core.errors import StudioError

GROUP = "studio.plugins"
ENV_PATH = "STUDIO_PLUGIN_PATH"


@dataclass
class PluginInfo:
    name: str
    origin: str  # "entry point pkg:module" or a file path
    error: str | None = None


class PluginAPI:
    """What a plugin may extend. Kept small on purpose: each hook is a promise."""

    def add_format(
        self,
        name: str,
        reader: Callable | None = None,
        writer: Callable | None = None,
    ) -> None:
        """Register an annotation format: `reader(path, images_dir, class_names) ->
        DatasetSpec`, `writer(snapshot, out) -> list[str]` (see studio.core.formats)."""
        from studio.core import formats

        if name in formats.READERS or name in formats.WRITERS:
            raise StudioError(f"format {name!r} exists already")
        if reader is not None:
            formats.READERS[name] = reader
        if writer is not None:
            formats.WRITERS[name] = writer


_loaded: list[PluginInfo] | None = None


def _load_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"studio_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_plugins(reload: bool = False) -> list[PluginInfo]:
    """Find and register every plugin once per process; returns what was found."""
    global _loaded
    if _loaded is not None and not reload:
        return _loaded
    found: list[tuple[str, str, Callable[[], ModuleType]]] = []
    for ep in entry_points(group=GROUP):
        found.append((ep.name, f"entry point {ep.value}", ep.load))
    for folder in filter(None, os.environ.get(ENV_PATH, "").split(os.pathsep)):
        for file in sorted(Path(folder).glob("*.py")):
            found.append((file.stem, str(file), lambda f=file: _load_file(f)))
    api = PluginAPI()
    infos = []
    for name, origin, load in found:
        info = PluginInfo(name, origin)
        try:
            module = load()
            module.register(api)
        except Exception as e:  # a broken plugin must not stop Studio
            info.error = f"{type(e).__name__}: {e}"
        infos.append(info)
    _loaded = infos
    return infos

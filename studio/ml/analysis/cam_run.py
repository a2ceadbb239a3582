"""Activation maps of a run's model on a project's images, cached.

`RunCams` loads the run's checkpoint once (only when a map is not cached) and serves maps
of many images; it holds paths and tensors only, no database session, so it can live on a
worker thread. Images are decoded as prediction decodes them (EXIF applied, huge photos
reduced to what the model's resize needs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.errors import StudioError
from studio.core.imageinfo import decode_image
from studio.core.project import Project
from studio.core.records import ImageRecord
from studio.ml.analysis.cam import ActivationMap, CamRequest, activation_map
from studio.ml.analysis.cam_cache import cache_path, load_map, save_map
from studio.ml.analysis.cam_layers import LayerInfo, find_layer, list_layers


def find_image(project: Project, name: str) -> ImageRecord:
    """The image `name`: its path as stored, its absolute path, its file name (when only
    one image has it) or its database id. StudioError naming the project otherwise."""
    images = project.images()
    for im in images:
        if name in (im.path, str(im.abs_path)):
            return im
    named = [im for im in images if im.name == name]
    if len(named) == 1:
        return named[0]
    if named:
        paths = ", ".join(im.path for im in named[:3])
        raise StudioError(f"{len(named)} images are named {name!r} ({paths}); give its path")
    if name.isdigit() and int(name) in {im.id for im in images}:
        return project.image(int(name))
    raise StudioError(f"no image {name!r} in {project.path}")


class RunCams:
    """Maps of one run's model. `checkpoint`: its best.pt (or last.pt); `cache_dir`: the
    project's cache folder, or None for no cache; `device`: "auto", "cpu", "cuda"..."""

    def __init__(self, run_id: int, checkpoint: Path, cache_dir: Path | None, device: str = "auto"):
        self.run_id = run_id
        self.checkpoint = Path(checkpoint)
        self.cache_dir = cache_dir
        self.device = device
        self._loaded = None
        self._layers: list[LayerInfo] | None = None

    @classmethod
    def for_run(cls, project: Project, run: int | str, device: str = "auto") -> RunCams:
        """For run `run` (id or name) of `project`, caching under its cache folder."""
        from studio.ml.run.runs import find_run, run_checkpoint

        record = find_run(project, run)
        return cls(record.id, run_checkpoint(record), project.cache_dir, device)

    @property
    def model(self):
        """The run's LoadedModel (studio.ml.infer.predict), loaded on first use."""
        if self._loaded is None:
            from studio.ml.infer.predict import load_model

            self._loaded = load_model(self.checkpoint, self.device)
        return self._loaded

    def layers(self) -> list[LayerInfo]:
        """The model's layer tree (`cam_layers.list_layers`), probed at its input size."""
        if self._layers is None:
            side = int(self.model.image_size or 256)
            self._layers = list_layers(self.model.model, (side, side))
        return self._layers

    def map(
        self, image: ImageRecord, layer: str | None = None, request: CamRequest | None = None
    ) -> ActivationMap:
        """The map of `image` at `layer` (an id of `layers()`; None: every level, or the
        deepest backbone stage), from the cache when it is there."""
        request = request or CamRequest()
        path = None
        if self.cache_dir is not None:
            path = cache_path(
                self.cache_dir,
                self.run_id,
                image.id,
                self.checkpoint,
                image.checksum,
                layer or "default",
                request,
            )
            cached = load_map(path)
            if cached is not None:
                return cached
        chosen = find_layer(self.layers(), layer)
        pixels = self.decode(image)
        amap = activation_map(
            self.model.model, pixels, (image.width, image.height), chosen, request
        )
        if path is not None:
            save_map(path, amap)
        return amap

    def decode(self, image: ImageRecord) -> np.ndarray:
        """The image as the model reads it: RGB uint8, displayed orientation, reduced to the
        largest size the model's resize can use."""
        from studio.ml.data.transforms import load_max_side

        return decode_image(Path(image.abs_path), max_side=load_max_side(self.model.image_size))

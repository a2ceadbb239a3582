"""The activation-map cache: one file per run, image, layer and method, under the
project's cache folder (``cache/cam/run-<id>/image-<id>/<layer>-<method>...-<key>.npz``).

The key covers everything the map depends on: the checkpoint file (path, size and time
of change, so a resumed run's new best.pt misses), the image file (checksum), the layer,
the method and its options. A file that cannot be read is treated as a miss and
rewritten. Files are written to a temporary name first, then renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np

from studio.ml.analysis.cam import ActivationMap, CamRequest, CamTarget

CACHE_FOLDER = "cam"


def cache_path(
    cache_dir: Path,
    run_id: int,
    image_id: int,
    checkpoint: Path,
    image_checksum: str,
    layer: str,
    request: CamRequest,
) -> Path:
    """Where the map of these inputs is cached (the file may not exist)."""
    st = checkpoint.stat()
    parts = [str(checkpoint.resolve()), st.st_size, st.st_mtime_ns, image_checksum]
    parts += [layer, str(request.method), request.box, request.grid]
    key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", layer)
    name = f"{safe}-{request.method}"
    if request.method == "gradcam":
        name += f"-box{request.box}"
    if request.grid:
        name += f"-grid{request.grid}"
    return cache_dir / CACHE_FOLDER / f"run-{run_id}" / f"image-{image_id}" / f"{name}-{key}.npz"


def save_map(path: Path, amap: ActivationMap) -> None:
    """Write `amap` to `path` atomically (temporary file, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "stride": amap.stride,
        "input_size": list(amap.input_size),
        "display_size": list(amap.display_size),
        "layer": amap.layer,
        "method": amap.method,
        "target": asdict(amap.target) if amap.target else None,
        "channel_ids": amap.channel_ids,
    }
    arrays = {"cells": amap.cells, "meta": np.array(json.dumps(meta))}
    if amap.channels is not None:
        arrays["channels"] = amap.channels
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


def load_map(path: Path) -> ActivationMap | None:
    """The cached map at `path`, or None when there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            cells = data["cells"].astype(np.float32)
            channels = data["channels"].astype(np.float32) if "channels" in data else None
        target = meta["target"]
        return ActivationMap(
            cells=cells,
            stride=int(meta["stride"]),
            input_size=tuple(meta["input_size"]),
            display_size=tuple(meta["display_size"]),
            layer=str(meta["layer"]),
            method=str(meta["method"]),
            target=CamTarget(**{**target, "box": tuple(target["box"])}) if target else None,
            channels=channels,
            channel_ids=[int(i) for i in meta["channel_ids"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None

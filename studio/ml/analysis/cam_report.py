"""`studio analyze cam`: an activation map blended over its image, written as a PNG.

The overlay is at the image's displayed size (EXIF orientation applied): the map
(`ActivationMap.at_display`) through an OpenCV colour map, blended with the image. A
Grad-CAM overlay outlines the box it explains. With `--grid N` (features) the N strongest
channels are tiled, each over a reduced copy of the image, labelled with its channel index.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from studio.core.errors import StudioError
from studio.ml.analysis.cam import ActivationMap, CamMethod, CamRequest

GRID_TILE = 256  # longer side of one tile of a channel grid, pixels
_WHITE = (255, 255, 255)


def colorize(heat: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a map [H, W] in 0..1 through an OpenCV colour map."""
    u8 = np.clip(heat * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, colormap), cv2.COLOR_BGR2RGB)


def overlay(
    image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """`image` (RGB uint8 [H, W, 3]) with `heat` ([H, W] in 0..1, same size) blended in:
    (1 - alpha) * image + alpha * colour."""
    if image.shape[:2] != heat.shape:
        raise ValueError(f"map {heat.shape} and image {image.shape[:2]} differ in size")
    return cv2.addWeighted(image, 1.0 - alpha, colorize(heat, colormap), alpha, 0.0)


def map_overlay(image: np.ndarray, amap: ActivationMap, alpha: float = 0.5) -> np.ndarray:
    """The map over the displayed image, with the Grad-CAM box outlined."""
    out = overlay(image, amap.at_display(), alpha)
    if amap.target is not None:
        x0, y0, x1, y1 = (round(v) for v in amap.target.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), _WHITE, max(1, round(max(out.shape) / 400)))
    return out


def channel_grid(image: np.ndarray, amap: ActivationMap, alpha: float = 0.5) -> np.ndarray:
    """Tiles of the strongest channels' maps over a reduced image, labelled by channel."""
    if amap.channels is None or not len(amap.channels):
        raise StudioError("no channel grid: use --method features with --grid N")
    h, w = image.shape[:2]
    scale = GRID_TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    tiles = []
    for ch, cells in zip(amap.channel_ids, amap.channels, strict=True):
        heat = cv2.resize(amap.at_display(cells), size, interpolation=cv2.INTER_AREA)
        tile = overlay(small, np.clip(heat, 0, 1), alpha)
        cv2.putText(tile, f"#{ch}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _WHITE, 1)
        tiles.append(tile)
    cols = math.ceil(math.sqrt(len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    return np.vstack(rows)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write RGB uint8 to `path` (a PNG); StudioError naming the file when it cannot."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise StudioError(f"{path}: --out must be a .png file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except (OSError, cv2.error) as exc:
        raise StudioError(f"{path}: cannot write ({exc})") from None
    if not ok:
        raise StudioError(f"{path}: cannot write the PNG")


def _request(a: argparse.Namespace) -> CamRequest:
    method = CamMethod(a.method)
    if a.box is not None and method != CamMethod.GRADCAM:
        raise StudioError("--box chooses the prediction Grad-CAM explains: add --method gradcam")
    if a.grid and method != CamMethod.FEATURES:
        raise StudioError("--grid shows feature channels: add --method features")
    if a.box is not None and a.box < 0:
        raise StudioError(f"--box must be 0 or more (0 is the highest-scoring box), not {a.box}")
    if not 0.0 <= a.alpha <= 1.0:
        raise StudioError(f"--alpha must be between 0 and 1, not {a.alpha:g}")
    return CamRequest(method, a.box or 0, max(0, a.grid or 0))


def cam_command(a: argparse.Namespace) -> int:
    """`studio analyze cam DIR --run R (--layer list | --image NAME --out PNG) ...`."""
    from studio.core.imageinfo import decode_image
    from studio.core.project import Project
    from studio.ml.analysis.cam_layers import format_layers
    from studio.ml.analysis.cam_run import RunCams, find_image

    listing = a.layer == "list"
    if not listing and (a.image is None or a.out is None):
        raise StudioError("give --image NAME and --out PNG (or --layer list for the layers)")
    request = _request(a)
    with Project.open(a.dir) as project:
        cams = RunCams.for_run(project, a.run, a.device)
        image = None if listing else find_image(project, a.image)
    if listing:
        print(format_layers(cams.layers()))
        return 0
    amap = cams.map(image, a.layer, request)
    pixels = decode_image(Path(image.abs_path))
    if request.grid:
        picture = channel_grid(pixels, amap, a.alpha)
    else:
        picture = map_overlay(pixels, amap, a.alpha)
    write_png(a.out, picture)
    line = f"wrote {a.out}: {amap.method} of layer {amap.layer} on {image.name}"
    line += f", {picture.shape[1]}x{picture.shape[0]} px"
    if amap.target is not None:
        t = amap.target
        box = ", ".join(f"{v:.0f}" for v in t.box)
        line += f"; box {t.index} ({box}), score {t.score:.2f}"
    print(line)
    return 0

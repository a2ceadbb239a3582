"""The heatmap layer: an activation map over the shown image, translucent and colour-mapped.

The map is a float array in 0..1 that covers the whole image: either at the image's
displayed size (one value per image pixel) or at any other size that spans the same
image, such as the model input after the model's own resize (`ActivationMap.at_input`):
the item is scaled so that the map's pixel (i, j) covers displayed pixels
[j * W / w, (j + 1) * W / w) x [i * H / h, (i + 1) * H / h), which is exactly the inverse
of the model's (aspect-keeping or fixed) resize. Colouring at the smaller size and letting
the scene scale the pixmap keeps the GUI thread's work to a few milliseconds even for
photos of tens of megapixels.

The map belongs to one image: a map for another image (a late result after the user moved
on) is refused, and showing another image clears it.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene

from studio.core.project import Project
from studio.core.records import ImageRecord
from studio.ui.canvas.layers.base import SceneLayer
from studio.ui.canvas.scene_items import Z_IMAGE, Z_SHAPES

Z_HEATMAP = (Z_IMAGE + Z_SHAPES) / 2  # over the image and its tiles, under every shape
DEFAULT_OPACITY = 0.5
DEFAULT_COLORMAP = "jet"
# The colour maps offered, by the name OpenCV gives them (cv2.COLORMAP_<NAME>).
COLORMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "hot", "bone")


def colormap_lut(name: str) -> np.ndarray:
    """The 256 RGB colours (uint8 [256, 3]) of OpenCV colour map `name` (see COLORMAPS);
    ValueError naming the choices for an unknown name."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, getattr(cv2, f"COLORMAP_{name.upper()}"))
    return np.ascontiguousarray(bgr[:, 0, ::-1])


def colorize(heat: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """RGB uint8 [h, w, 3] of `heat` (float [h, w], values outside 0..1 clipped)."""
    index = np.clip(np.nan_to_num(heat, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return lut[index]


class HeatmapLayer(SceneLayer):
    """One map at a time on the shown image. `set_map` shows it, `set_opacity` and
    `set_colormap` restyle it, `clear_map` removes it."""

    name = "heatmap"
    z = Z_HEATMAP

    def __init__(self) -> None:
        super().__init__()
        self.item = QGraphicsPixmapItem()
        self.item.setZValue(Z_HEATMAP)
        # Bilinear scaling: the map is smooth, and cell edges would suggest false precision.
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.item.setVisible(False)
        self.image: ImageRecord | None = None
        self.heat: np.ndarray | None = None  # float [h, w] in 0..1 of `map_image_id`
        self.map_image_id: int | None = None
        self.opacity = DEFAULT_OPACITY
        self.colormap = DEFAULT_COLORMAP
        self._lut = colormap_lut(DEFAULT_COLORMAP)
        self.item.setOpacity(self.opacity)

    # --- the Layer hooks ---------------------------------------------------------------

    def attach(self, scene: QGraphicsScene) -> None:
        super().attach(scene)
        scene.addItem(self.item)

    def show_image(self, image: ImageRecord, project: Project) -> None:
        if image.id != self.map_image_id:
            self.clear_map()
        self.image = image

    def clear(self) -> None:
        self.image = None
        self.clear_map()

    def _apply_visible(self) -> None:
        self.item.setVisible(self.visible and self.heat is not None)

    # --- the map -----------------------------------------------------------------------

    @property
    def has_map(self) -> bool:
        return self.heat is not None

    def set_map(self, image_id: int, heat: np.ndarray) -> bool:
        """Show `heat` (float [h, w] in 0..1, covering the whole image: at its displayed
        size or at the model input) over image `image_id`. Returns False, showing nothing
        new, when that image is not the one shown (a result that came too late)."""
        if self.image is None or image_id != self.image.id:
            return False
        heat = np.asarray(heat, dtype=np.float32)
        if heat.ndim != 2 or heat.shape[0] == 0 or heat.shape[1] == 0:
            raise ValueError(f"a heatmap is a 2-D array, not one of shape {heat.shape}")
        self.heat, self.map_image_id = heat, image_id
        self._repaint()
        return True

    def clear_map(self) -> None:
        """Remove the map (the image stays)."""
        self.heat, self.map_image_id = None, None
        self.item.setPixmap(QPixmap())
        self.item.setVisible(False)

    def set_opacity(self, opacity: float) -> None:
        """Opacity of the map over the image, 0 (invisible) to 1 (opaque)."""
        self.opacity = min(1.0, max(0.0, float(opacity)))
        self.item.setOpacity(self.opacity)

    def set_colormap(self, name: str) -> None:
        """Colour the map with OpenCV colour map `name` (one of COLORMAPS)."""
        self._lut = colormap_lut(name)
        self.colormap = name
        if self.heat is not None:
            self._repaint()

    def rgb(self) -> np.ndarray | None:
        """The coloured map (RGB uint8 [h, w, 3] at the map's own size), or None."""
        return None if self.heat is None else colorize(self.heat, self._lut)

    def _repaint(self) -> None:
        assert self.heat is not None and self.image is not None
        rgb = np.ascontiguousarray(self.rgb())
        h, w = rgb.shape[:2]
        qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.item.setPixmap(QPixmap.fromImage(qimg))
        # Map pixels -> displayed image pixels: the map spans the image whatever its size.
        self.item.setTransform(QTransform.fromScale(self.image.width / w, self.image.height / h))
        self.item.setPos(0.0, 0.0)
        self.item.setVisible(self.visible)

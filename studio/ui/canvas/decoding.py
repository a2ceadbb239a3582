"""Decoding image files into the canvas's pixels: worker-thread code, numpy only.

Two products: a *preview* (the whole image, longest side at most `PREVIEW_MAX_SIDE`)
and a *level* (the image at full resolution, or at 1/2, 1/4, 1/8 of it). Both come in
image pixels as displayed: EXIF orientation applied. No Qt here: `image_source` runs
these on the background-work pool and makes pixmaps on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from studio.core.errors import ImageFileError
from studio.core.imageinfo import decode_image
from studio.core.records import ImageRecord

T = TypeVar("T")

PREVIEW_MAX_SIDE = 2048
# Pixels a level may hold (3 bytes each): 450 MP keeps a 20000 x 20000 scan at full
# resolution (1.2 GB) and halves anything bigger.
LEVEL_PIXEL_BUDGET = 450_000_000

_REDUCED_FLAG = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Level:
    """Pixels of one image at 1/`reduce` of its resolution. `pixels` may be a strided
    view (EXIF orientation applied by flips); `bgr` says the channels are reversed."""

    image_id: int
    reduce: int
    pixels: np.ndarray
    bgr: bool

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    def rgb(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """A contiguous RGB copy of a region (the channel swap rides along the copy)."""
        region = self.pixels[y0:y1, x0:x1]
        return np.ascontiguousarray(region[..., ::-1] if self.bgr else region)


def is_jpeg(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def preview_side(width: int, height: int, jpeg: bool) -> int | None:
    """The max_side to ask `decode_image` for, None for "as is". For JPEGs it is picked so
    that libjpeg can decode at half scale or less: a 6000 x 4000 photo gets a 1500 px
    preview in half the time a 2048 px one takes, and full resolution follows on zoom."""
    side = max(width, height)
    if side <= PREVIEW_MAX_SIDE:
        return None
    if jpeg and 1280 * 4 <= side < PREVIEW_MAX_SIDE * 4:
        return side // 4
    return PREVIEW_MAX_SIDE


def decode_preview(image: ImageRecord) -> np.ndarray:
    """Worker side: the preview of an image, RGB, C-contiguous. Raises ImageFileError."""
    side = preview_side(image.width, image.height, is_jpeg(image.abs_path))
    return np.ascontiguousarray(decode_image(image.abs_path, max_side=side))


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation with views only (no copy), as decode_image does."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.rot90(a, 2).transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def decode_level(image: ImageRecord, reduce: int) -> tuple[np.ndarray, bool]:
    """Worker side: the image at 1/`reduce` scale as (pixels, bgr). OpenCV decodes
    straight into one array (PIL would hold a second copy of a 1.2 GB scan) and decodes
    JPEGs at reduced DCT scale; anything OpenCV cannot show as 8-bit colour the same way
    as the preview (16-bit, alpha, exotic TIFF) goes through `decode_image`."""
    path = image.abs_path
    flags = cv2.IMREAD_IGNORE_ORIENTATION
    if is_jpeg(path):
        a = cv2.imread(str(path), _REDUCED_FLAG[reduce] | flags)
    else:
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | flags)
        if a is not None and a.dtype == np.uint8 and a.ndim == 2:
            a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
        elif a is not None and not (a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3):
            a = None
        if a is not None and reduce > 1:
            size = (max(1, a.shape[1] // reduce), max(1, a.shape[0] // reduce))
            a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    if a is None:
        side = max(image.width, image.height) // reduce
        return decode_image(path, max_side=side if reduce > 1 else None), False
    return _orient(a, image.orientation), True


def decode_or_reason(job: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run a decode: (result, None), or (None, why it failed in a few words). Never
    raises an Exception: one bad file, or a decoder bug, must not end the background
    work for the images after it."""
    try:
        return job(), None
    except ImageFileError as e:
        return None, e.reason
    except MemoryError:
        return None, "not enough memory to decode"
    except Exception as e:
        return None, f"cannot decode: {e}"

"""Image pixels for the canvas, decoded off the GUI thread.

Two products, both decoded by worker threads into numpy arrays and turned into
QPixmaps on the GUI thread only:

* a *preview*: the whole image with its longest side at most `PREVIEW_MAX_SIDE`
  (`decode_image` does the work: EXIF orientation, 16-bit stretch, reduced JPEG
  decode). Previews live in a small LRU, which `prefetch` fills for the neighbours.
* a *level*: the image at full resolution, or at 1/2, 1/4, 1/8 of it, kept for the
  current image only. The canvas cuts the visible tiles from it when zoomed in past the
  preview's resolution, so no pixmap larger than a tile is ever made (Qt's image
  allocation limit and painting speed both stay fine for 20000 x 20000 scans).

Workers take tasks by priority: the shown image's preview first, then its level, then
prefetches, so flipping through images never waits behind a neighbour's decode.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from studio.core.errors import ImageFileError
from studio.core.imageinfo import decode_image
from studio.core.records import ImageRecord

PREVIEW_MAX_SIDE = 2048
# Pixels a level may hold (3 bytes each): 450 MP keeps a 20000 x 20000 scan at full
# resolution (1.2 GB) and halves anything bigger.
LEVEL_PIXEL_BUDGET = 450_000_000
PRIORITY_STOP, PRIORITY_SHOWN, PRIORITY_LEVEL, PRIORITY_PREFETCH = -1, 0, 1, 2

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


@dataclass(order=True)
class _Task:
    priority: int
    seq: int
    kind: str = field(compare=False)  # "preview" | "level" | "stop"
    image: ImageRecord | None = field(compare=False)
    reduce: int = field(compare=False, default=1)
    token: int = field(compare=False, default=0)


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


def array_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """GUI thread only. `rgb` must be C-contiguous HxWx3 uint8; it is copied."""
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img)


# Sources whose workers may still run; stopped at exit if the window did not (a thread
# killed inside a decoder by interpreter shutdown aborts the whole process).
_LIVE: weakref.WeakSet[ImageSource] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for source in list(_LIVE):
        source.shutdown()


class ImageSource(QObject):
    """Decodes previews and levels in worker threads; hands results out as signals."""

    preview_ready = Signal(int, QPixmap)
    preview_failed = Signal(int, str)
    level_ready = Signal(object)  # Level
    level_failed = Signal(int, str)
    _finished = Signal(object, object, object)  # task, result, error (worker -> GUI)

    def __init__(self, workers: int = 2, cache_size: int = 6, parent: QObject | None = None):
        super().__init__(parent)
        self.cache_size = cache_size
        self._cache: OrderedDict[int, tuple[Path, QPixmap]] = OrderedDict()
        self._errors: OrderedDict[int, tuple[Path, str]] = OrderedDict()
        self._pending: set[tuple[str, int, int]] = set()
        self._queue: queue.PriorityQueue[_Task] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._level_token = 0
        self._finished.connect(self._on_finished)
        self._threads = [
            threading.Thread(target=self._work, name=f"canvas-decode-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()
        _LIVE.add(self)

    # --- GUI thread API ---------------------------------------------------------------

    def cached_preview(self, image: ImageRecord) -> QPixmap | None:
        hit = self._cache.get(image.id)
        if hit is None or hit[0] != image.abs_path:
            return None
        self._cache.move_to_end(image.id)
        return hit[1]

    def cached_error(self, image: ImageRecord) -> str | None:
        hit = self._errors.get(image.id)
        return hit[1] if hit and hit[0] == image.abs_path else None

    def request_preview(self, image: ImageRecord, priority: int = PRIORITY_SHOWN) -> None:
        key = ("preview", image.id, 0)
        # Shown images go newest first: while someone holds the "next" key, the image
        # now on screen is decoded before the ones flipped past.
        seq = -next(self._seq) if priority == PRIORITY_SHOWN else next(self._seq)
        if key in self._pending:
            if priority == PRIORITY_SHOWN:  # a prefetch in the queue: jump ahead of it
                self._put(_Task(priority, seq, "preview", image))
            return
        self._pending.add(key)
        self._put(_Task(priority, seq, "preview", image))

    def prefetch(self, images: list[ImageRecord]) -> None:
        for im in images:
            if self.cached_preview(im) is None and self.cached_error(im) is None:
                self.request_preview(im, PRIORITY_PREFETCH)

    def request_level(self, image: ImageRecord, reduce: int) -> None:
        """Ask for a level; a newer request makes older ones moot (their results are
        dropped), so only the last zoom's level is ever handed out."""
        self._level_token += 1
        self._put(_Task(PRIORITY_LEVEL, next(self._seq), "level", image, reduce, self._level_token))

    def cancel_levels(self) -> None:
        self._level_token += 1

    def invalidate(self, image_id: int) -> None:
        self._cache.pop(image_id, None)
        self._errors.pop(image_id, None)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the workers and wait for them (a decode in flight cannot be cut short):
        a thread still inside a decoder when Python exits aborts the process."""
        _LIVE.discard(self)
        self._level_token += 1
        for _ in self._threads:  # stops sort first: queued decodes are dropped
            self._queue.put(_Task(PRIORITY_STOP, next(self._seq), "stop", None))
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # --- workers ----------------------------------------------------------------------

    def _put(self, task: _Task) -> None:
        self._queue.put(task)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task.kind == "stop":
                return
            if task.kind == "level" and task.token != self._level_token:
                continue  # superseded before it started
            result, error = self._run(task)
            try:
                self._finished.emit(task, result, error)
            except RuntimeError:  # the source was deleted with the window
                return

    def _run(self, task: _Task) -> tuple[object, str | None]:
        assert task.image is not None
        if task.kind == "preview" and task.image.id in self._cache:
            # Decoded meanwhile (prefetched, then shown): a racy read of the dict is
            # fine for skipping work; "" tells the GUI thread there is nothing to add.
            return None, ""
        try:
            if task.kind == "preview":
                return decode_preview(task.image), None
            return decode_level(task.image, task.reduce), None
        except ImageFileError as e:
            return None, e.reason
        except MemoryError:
            return None, "not enough memory to decode"
        except Exception as e:  # a decoder bug must not kill the worker
            return None, f"cannot decode: {e}"

    # --- back on the GUI thread ---------------------------------------------------------

    def _on_finished(self, task: _Task, result: object, error: str | None) -> None:
        im = task.image
        assert im is not None
        if task.kind == "preview":
            self._pending.discard(("preview", im.id, 0))
            if error == "":
                return
            if error is not None:
                self._errors[im.id] = (im.abs_path, error)
                while len(self._errors) > 64:
                    self._errors.popitem(last=False)
                self.preview_failed.emit(im.id, error)
                return
            if self.cached_preview(im) is not None:
                return  # decoded twice (prefetch then shown): the first one won
            pix = array_to_pixmap(result)  # type: ignore[arg-type]
            self._cache[im.id] = (im.abs_path, pix)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            self.preview_ready.emit(im.id, pix)
            return
        if task.token != self._level_token:
            return
        if error is not None:
            self.level_failed.emit(im.id, error)
            return
        pixels, bgr = result  # type: ignore[misc]
        self.level_ready.emit(Level(im.id, task.reduce, pixels, bgr))

"""Image pixels for the canvas, decoded off the GUI thread.

Two products (see `decoding`), both decoded on a thread pool into numpy arrays and
turned into QPixmaps on the GUI thread only:

* a *preview*: the whole image, its longest side at most `decoding.PREVIEW_MAX_SIDE`.
  Previews live in a small LRU, which `prefetch` fills for the neighbours.
* a *level*: the image at full resolution, or at 1/2, 1/4, 1/8 of it, kept for the
  current image only. The canvas cuts the visible tiles from it when zoomed in past the
  preview's resolution, so no pixmap larger than a tile is ever made (Qt's image
  allocation limit and painting speed both stay fine for 20000 x 20000 scans).

The work runs through the window's one background-work API (`run_task`) on a pool of
the canvas's own, so decodes never queue behind imports or thumbnails. Only as many
tasks as threads are started; the rest wait here by priority (the shown image's
preview first, then its level, then prefetches), where a newer request can still jump
ahead, so flipping through images never waits behind a neighbour's decode.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from studio.core.progress import Progress
from studio.core.records import ImageRecord
from studio.ui.canvas.decoding import Level, decode_level, decode_or_reason, decode_preview
from studio.ui.common.concurrency import run_task

PRIORITY_SHOWN, PRIORITY_LEVEL, PRIORITY_PREFETCH = 0, 1, 2
MAX_ERRORS = 64  # failed previews remembered, so a broken file is not decoded again


class Product(StrEnum):
    PREVIEW = "preview"
    LEVEL = "level"


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    product: Product = field(compare=False)
    image: ImageRecord = field(compare=False)
    reduce: int = field(compare=False, default=1)
    token: int = field(compare=False, default=0)
    generation: int = field(compare=False, default=0)


def _decode(job: _Job, progress: Progress) -> tuple[_Job, object, str | None]:
    """Worker side: the job's pixels, or why there are none."""
    if job.product == Product.PREVIEW:
        result, error = decode_or_reason(partial(decode_preview, job.image))
    else:
        result, error = decode_or_reason(partial(decode_level, job.image, job.reduce))
    return job, result, error


def array_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """GUI thread only. `rgb` must be C-contiguous HxWx3 uint8; it is copied."""
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(img)


class ImageSource(QObject):
    """Decodes previews and levels in the background; hands results out as signals.
    All its methods and signals are for the GUI thread."""

    preview_ready = Signal(int, QPixmap)
    preview_failed = Signal(int, str)
    level_ready = Signal(object)  # Level
    level_failed = Signal(int, str)

    def __init__(self, workers: int = 2, cache_size: int = 6, parent: QObject | None = None):
        super().__init__(parent)
        self.cache_size = cache_size
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(workers)
        self._cache: OrderedDict[int, tuple[Path, QPixmap]] = OrderedDict()
        self._errors: OrderedDict[int, tuple[Path, str]] = OrderedDict()
        self._pending: set[int] = set()  # image ids whose preview is queued or running
        self._jobs: list[_Job] = []  # a heap: the most urgent first
        self._running = 0
        self._seq = itertools.count()
        self._level_token = 0
        # Image ids are per project: `reset` starts a new generation, and results of
        # an older one (a decode still running for the last project) are dropped.
        self._generation = 0
        self._closed = False
        app = QCoreApplication.instance()
        if app is not None:
            # A decode still running when Python exits would abort the process.
            app.aboutToQuit.connect(self.shutdown)

    # --- requests ---------------------------------------------------------------------

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
        # Shown images go newest first: while someone holds the "next" key, the image
        # now on screen is decoded before the ones flipped past.
        seq = -next(self._seq) if priority == PRIORITY_SHOWN else next(self._seq)
        if image.id in self._pending:
            if priority == PRIORITY_SHOWN:  # a prefetch in the queue: jump ahead of it
                self._push(_Job(priority, seq, Product.PREVIEW, image))
            return
        self._pending.add(image.id)
        self._push(_Job(priority, seq, Product.PREVIEW, image))

    def prefetch(self, images: list[ImageRecord]) -> None:
        for im in images:
            if self.cached_preview(im) is None and self.cached_error(im) is None:
                self.request_preview(im, PRIORITY_PREFETCH)

    def request_level(self, image: ImageRecord, reduce: int) -> None:
        """Ask for a level; a newer request makes older ones moot (their results are
        dropped), so only the last zoom's level is ever handed out."""
        self._level_token += 1
        job = _Job(PRIORITY_LEVEL, next(self._seq), Product.LEVEL, image, reduce)
        job.token = self._level_token
        self._push(job)

    def cancel_levels(self) -> None:
        self._level_token += 1

    def reset(self) -> None:
        """Forget every cached, queued and running decode (another project is opening:
        its image ids mean other files)."""
        self._generation += 1
        self._level_token += 1
        self._cache.clear()
        self._errors.clear()
        self._pending.clear()
        self._jobs.clear()

    def invalidate(self, image_id: int) -> None:
        self._cache.pop(image_id, None)
        self._errors.pop(image_id, None)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Drop queued decodes and wait for those running (a decode in flight cannot be
        cut short): a thread still inside a decoder when Python exits aborts it."""
        self._closed = True
        self._level_token += 1
        self._jobs.clear()
        self.pool.clear()
        self.pool.waitForDone(int(timeout * 1000))

    # --- running ----------------------------------------------------------------------

    def _push(self, job: _Job) -> None:
        if not self._closed:
            job.generation = self._generation
            heapq.heappush(self._jobs, job)
            self._dispatch()

    def _dispatch(self) -> None:
        while self._jobs and self._running < self.pool.maxThreadCount():
            job = heapq.heappop(self._jobs)
            if job.product == Product.LEVEL and job.token != self._level_token:
                continue  # superseded before it started
            if job.product == Product.PREVIEW and self.cached_preview(job.image) is not None:
                self._pending.discard(job.image.id)  # decoded meanwhile (prefetched)
                continue
            self._running += 1
            # Bound slots of this QObject: Qt drops the results if the source is gone.
            run_task(partial(_decode, job), self._on_done, self._on_crash, pool=self.pool)

    def _on_crash(self, _exc: BaseException) -> None:
        self._running -= 1  # `_decode` returns every error; this is not one of them
        self._dispatch()

    def _on_done(self, outcome: tuple[_Job, object, str | None]) -> None:
        self._running -= 1
        job, result, error = outcome
        try:
            if self._closed or job.generation != self._generation:
                return
            if job.product == Product.PREVIEW:
                self._preview_done(job.image, result, error)  # type: ignore[arg-type]
            else:
                self._level_done(job, result, error)  # type: ignore[arg-type]
        finally:
            self._dispatch()

    def _preview_done(self, im: ImageRecord, pixels: np.ndarray | None, error: str | None) -> None:
        self._pending.discard(im.id)
        if error is not None:
            self._errors[im.id] = (im.abs_path, error)
            while len(self._errors) > MAX_ERRORS:
                self._errors.popitem(last=False)
            self.preview_failed.emit(im.id, error)
            return
        if self.cached_preview(im) is not None:
            return  # decoded twice (prefetch then shown): the first one won
        assert pixels is not None
        pix = array_to_pixmap(pixels)
        self._cache[im.id] = (im.abs_path, pix)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self.preview_ready.emit(im.id, pix)

    def _level_done(
        self, job: _Job, result: tuple[np.ndarray, bool] | None, error: str | None
    ) -> None:
        if job.token != self._level_token:
            return
        if error is not None or result is None:
            self.level_failed.emit(job.image.id, error or "cannot decode")
            return
        pixels, bgr = result
        self.level_ready.emit(Level(job.image.id, job.reduce, pixels, bgr))

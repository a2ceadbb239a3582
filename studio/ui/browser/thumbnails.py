"""Thumbnails for the browser: made off the GUI thread, cached on disk and in memory.

The browser asks for a thumbnail only when a view paints a row, so a 100,000-image
project costs what the visible rows cost. Asking is cheap and idempotent: requests are
de-duplicated, the queue is capped (the oldest requests go first: they belong to rows
scrolled past), the newest request runs first, and `retain()` drops what is no longer on
screen after a fast scroll.

The work runs through the window's one background-work API (`run_task`) on a pool of its
own, so that a fast scroll never queues thumbnails ahead of imports or counts. Workers
make `QImage`s (safe off the GUI thread); the GUI thread turns them into `QPixmap`s.

Files: ``project.cache_dir / "thumbs" / <checksum>.jpg``, at most `DISK_SIDE` pixels on
the long side; keyed by checksum, so renaming or re-importing a file reuses its thumb.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap

from studio.core.errors import ImageFileError
from studio.core.imageinfo import decode_image
from studio.core.progress import Progress
from studio.ui.common.concurrency import run_task

DISK_SIDE = 256  # pixels, long side, of the thumbnails cached on disk
MAX_PENDING = 200  # requests waiting; older ones are dropped
MEMORY_ITEMS = 800  # pixmaps kept in memory (about 50 MB at 128 x 128)

# (image id, the thumbnail or a null image, why it failed or "") from a worker
ThumbResult = tuple[int, QImage, str]


def thumb_path(cache_dir: Path, checksum: str) -> Path:
    return cache_dir / "thumbs" / f"{checksum}.jpg"


def make_thumbnail(image_path: Path, cache_file: Path | None, size: QSize) -> QImage:
    """Read the cached JPEG, or decode the image and write the cache; scaled to fit
    `size` (pixels) and centred on a transparent tile of exactly `size`. Runs in a worker
    thread (QImage, unlike QPixmap, is fine there). Raises ImageFileError for unreadable
    images."""
    image = QImage()
    if cache_file is not None and cache_file.is_file():
        image = QImage(str(cache_file))
    if image.isNull():
        rgb = decode_image(image_path, max_side=DISK_SIDE)
        if cache_file is not None:
            _write_cache(cache_file, rgb)
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        # QImage borrows the buffer; copy() makes it own its pixels.
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    scaled = image.scaled(
        size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    # Every thumbnail is exactly `size`, the picture centred on a transparent tile: the
    # grid uses one size hint for all rows, so a tall image must not push its name out.
    tile = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    tile.fill(Qt.GlobalColor.transparent)
    painter = QPainter(tile)
    painter.drawImage(
        (size.width() - scaled.width()) // 2, (size.height() - scaled.height()) // 2, scaled
    )
    painter.end()
    return tile


def _write_cache(cache_file: Path, rgb: np.ndarray) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.{id(rgb)}.tmp")
        Image.fromarray(rgb).save(tmp, "JPEG", quality=85)
        os.replace(tmp, cache_file)  # atomic: a reader never sees half a file
    except OSError:
        pass  # a read-only project still gets thumbnails, just not cached


def _thumbnail_job(
    image_id: int, path: Path, cache: Path | None, size: QSize, _progress: Progress
) -> ThumbResult:
    """One thumbnail, in a worker: failures come back as text, never as an exception,
    so a broken file shows a crossed tile with the reason in its tooltip."""
    try:
        return image_id, make_thumbnail(path, cache, size), ""
    except ImageFileError as e:
        return image_id, QImage(), e.reason
    except Exception as e:  # noqa: BLE001 - a thumbnail must never take the app down
        return image_id, QImage(), f"cannot decode: {e}"


class ThumbnailLoader(QObject):
    """Pending requests -> background tasks -> pixmaps in an LRU. Lives in the GUI thread."""

    ready = Signal(int)  # image id whose thumbnail (or failure) is now known

    def __init__(self, size: QSize = QSize(128, 128), parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self.cache_dir: Path | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, min(4, (os.cpu_count() or 2) - 1)))
        self._pending: OrderedDict[int, tuple[Path, str]] = OrderedDict()
        self._running: set[int] = set()
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self.errors: dict[int, str] = {}
        self.requested = 0  # requests that queued work (for tests and the benchmark)
        self.started = 0  # jobs that actually ran

    def set_cache_dir(self, cache_dir: Path | None) -> None:
        self.clear()
        self.cache_dir = cache_dir

    def set_size(self, size: QSize) -> None:
        if size != self.size:
            self.size = QSize(size)
            self.clear()

    def clear(self) -> None:
        self._pending.clear()
        self._pixmaps.clear()
        self.errors.clear()

    def pixmap(self, image_id: int) -> QPixmap | None:
        pm = self._pixmaps.get(image_id)
        if pm is not None:
            self._pixmaps.move_to_end(image_id)
        return pm

    def request(self, image_id: int, path: Path, checksum: str) -> None:
        if image_id in self._pixmaps or image_id in self.errors or image_id in self._running:
            return
        if image_id in self._pending:
            self._pending.move_to_end(image_id)  # still wanted: now the newest
        else:
            self._pending[image_id] = (path, checksum)
            self.requested += 1
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        self._dispatch()

    def retain(self, wanted: Iterable[int]) -> None:
        """Drop pending requests for rows that are no longer visible."""
        keep = set(wanted)
        for image_id in [i for i in self._pending if i not in keep]:
            del self._pending[image_id]

    def forget(self, image_ids: Iterable[int] | None = None) -> None:
        """Drop cached pixmaps (all, or some images) so they are made again."""
        if image_ids is None:
            self.clear()
            return
        for i in image_ids:
            self._pixmaps.pop(i, None)
            self.errors.pop(i, None)

    def pending_count(self) -> int:
        return len(self._pending)

    def wait(self, msecs: int = 10_000) -> bool:
        return self.pool.waitForDone(msecs)

    def _dispatch(self) -> None:
        # Only as many tasks as threads: the rest wait here, where a scroll can still
        # reorder or drop them, not in the pool's queue.
        while self._pending and len(self._running) < self.pool.maxThreadCount():
            image_id, (path, checksum) = self._pending.popitem(last=True)
            cache = thumb_path(self.cache_dir, checksum) if self.cache_dir and checksum else None
            self._running.add(image_id)
            self.started += 1
            job = partial(_thumbnail_job, image_id, path, cache, QSize(self.size))
            # A bound slot of this QObject: Qt drops the result if the loader is gone.
            run_task(job, self._on_done, pool=self.pool)

    def _on_done(self, result: ThumbResult) -> None:
        image_id, image, error = result
        self._running.discard(image_id)
        if error:
            self.errors[image_id] = error
        elif image.size() == self.size:
            self._pixmaps[image_id] = QPixmap.fromImage(image)
            while len(self._pixmaps) > MEMORY_ITEMS:
                self._pixmaps.popitem(last=False)
        self.ready.emit(image_id)
        self._dispatch()


def placeholder_pixmap(size: QSize, broken: bool = False) -> QPixmap:
    """A flat tile shown until a thumbnail arrives (or, crossed, when it cannot)."""
    pm = QPixmap(size)
    pm.fill(QColor(0, 0, 0, 0))
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    w, h = size.width(), size.height()
    inset = max(2, min(w, h) // 8)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(120, 120, 120, 60))
    p.drawRoundedRect(inset, inset, w - 2 * inset, h - 2 * inset, 4, 4)
    if broken:
        pen = p.pen()
        pen.setStyle(Qt.PenStyle.SolidLine)
        pen.setColor(QColor(200, 60, 60))
        pen.setWidth(2)
        p.setPen(pen)
        p.drawLine(2 * inset, 2 * inset, w - 2 * inset, h - 2 * inset)
        p.drawLine(w - 2 * inset, 2 * inset, 2 * inset, h - 2 * inset)
    p.end()
    return pm

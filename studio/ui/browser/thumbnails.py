"""Thumbnails for the browser (made off the GUI thread, cached on disk and in memory),
and the browser's list model and item painting that ask for them.

The browser asks for a thumbnail only when a view paints a row (`data()` with
DecorationRole), so a 100,000-image project costs what the visible rows cost. Asking is
cheap and idempotent: requests are de-duplicated, the queue is capped (the oldest
requests go first: they belong to rows scrolled past), the newest request runs first,
and `retain()` drops what is no longer on screen after a fast scroll.

Files: ``project.cache_dir / "thumbs" / <checksum>.jpg``, at most `DISK_SIDE` pixels on
the long side; keyed by checksum, so renaming or re-importing a file reuses its thumb.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    QStringListModel,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from studio.core import browse
from studio.core.browse import BrowseRow
from studio.core.errors import ImageFileError
from studio.core.imageinfo import decode_image
from studio.core.project import Project

DISK_SIDE = 256  # pixels, long side, of the thumbnails cached on disk
MAX_PENDING = 200  # requests waiting; older ones are dropped
MEMORY_ITEMS = 800  # pixmaps kept in memory (about 50 MB at 128 x 128)


def thumb_path(cache_dir: Path, checksum: str) -> Path:
    return cache_dir / "thumbs" / f"{checksum}.jpg"


def make_thumbnail(image_path: Path, cache_file: Path | None, size: QSize) -> QImage:
    """Read the cached JPEG, or decode the image and write the cache; scaled to fit
    `size`. Runs in a worker thread (QImage, unlike QPixmap, is fine there).
    Raises ImageFileError for unreadable images."""
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


class _Job(QRunnable):
    def __init__(self, loader: ThumbnailLoader, image_id: int, path: Path, cache: Path | None):
        super().__init__()
        self.loader, self.image_id, self.path, self.cache = loader, image_id, path, cache
        self.size = QSize(loader.size)

    def run(self) -> None:
        try:
            image = make_thumbnail(self.path, self.cache, self.size)
            self.loader._done.emit(self.image_id, image, "")
        except ImageFileError as e:
            self.loader._done.emit(self.image_id, QImage(), e.reason)
        except Exception as e:  # noqa: BLE001 - a thumbnail must never take the app down
            self.loader._done.emit(self.image_id, QImage(), f"cannot decode: {e}")


class ThumbnailLoader(QObject):
    """Pending requests -> worker jobs -> pixmaps in an LRU. Lives in the GUI thread."""

    ready = Signal(int)  # image id whose thumbnail (or failure) is now known
    _done = Signal(int, QImage, str)  # from the workers

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
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

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
        while self._pending and len(self._running) < self.pool.maxThreadCount():
            image_id, (path, checksum) = self._pending.popitem(last=True)
            cache = thumb_path(self.cache_dir, checksum) if self.cache_dir and checksum else None
            self._running.add(image_id)
            self.started += 1
            self.pool.start(_Job(self, image_id, path, cache))

    def _on_done(self, image_id: int, image: QImage, error: str) -> None:
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


# --- the browser's model and item painting --------------------------------------------------

PAGE = 128  # rows fetched per query when a view paints rows we have no details for
MAX_PAGES = 64
GRID_ICON = QSize(128, 96)
LIST_ICON = QSize(40, 30)
IdRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2

STATUS_COLORS = {
    "new": QColor("#9e9e9e"),
    "in_progress": QColor("#ffb300"),
    "done": QColor("#43a047"),
    "needs_review": QColor("#e53935"),
}
STATUS_LABELS = {
    "new": "New",
    "in_progress": "In progress",
    "done": "Done",
    "needs_review": "Needs review",
}


_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.ToolTipRole,
        IdRole,
        RowRole,
    }
)


class ImageListModel(QStringListModel):
    """Image ids in browser order; details and thumbnails fetched for painted rows.

    A QStringListModel of empty strings underneath, on purpose: QListView lays out by
    asking the model for its row count and indexes once per row, and a Python
    `rowCount` makes that 400,000 calls into Python for 100,000 images (about a second
    per layout). Here they stay in C++; only `data()` for painted rows reaches Python.
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.project: Project | None = None
        self._ids: list[int] = []
        self._row_of: dict[int, int] | None = None  # built on first use
        self._pages: OrderedDict[int, dict[int, BrowseRow]] = OrderedDict()
        self.compact = False
        self.thumbs = ThumbnailLoader(GRID_ICON, self)
        self.thumbs.ready.connect(self._thumb_ready)
        self._placeholder = placeholder_pixmap(GRID_ICON)
        self._broken = placeholder_pixmap(GRID_ICON, broken=True)

    # --- contents ---

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.thumbs.set_cache_dir(project.cache_dir if project else None)
        self.set_ids([])

    def set_ids(self, ids: Sequence[int]) -> None:
        self._ids = list(ids)
        self._row_of = None
        self._pages.clear()
        self.setStringList([""] * len(self._ids))  # resets the model

    def ids(self) -> list[int]:
        return self._ids

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, image_id: int) -> int | None:
        if self._row_of is None:
            self._row_of = {i: r for r, i in enumerate(self._ids)}
        return self._row_of.get(image_id)

    def invalidate(self) -> None:
        """Row details changed (status, split, shape count): refetch what is painted."""
        self._pages.clear()
        if self._ids:
            self.dataChanged.emit(self.index(0), self.index(len(self._ids) - 1))

    def set_compact(self, compact: bool) -> None:
        self.compact = compact
        size = LIST_ICON if compact else GRID_ICON
        self.thumbs.set_size(size)
        self._placeholder = placeholder_pixmap(size)
        self._broken = placeholder_pixmap(size, broken=True)
        self.invalidate()

    def row_info(self, row: int) -> BrowseRow | None:
        if self.project is None or not 0 <= row < len(self._ids):
            return None
        page = row // PAGE
        rows = self._pages.get(page)
        if rows is None:
            rows = browse.image_rows(self.project, self._ids[page * PAGE : (page + 1) * PAGE])
            self._pages[page] = rows
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        return rows.get(self._ids[row])

    # --- Qt model ---

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        # A delegate asks for a dozen roles per paint; answer the unused ones first.
        if role not in _ROLES or not index.isValid():
            return None
        row = index.row()
        if role == IdRole:
            return self._ids[row]
        info = self.row_info(row)
        if info is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if self.compact:
                return (
                    f"{info.name}\n{STATUS_LABELS[info.status]} · {info.split} · {info.n_objects}"
                )
            return info.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(info)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = (
                f"{info.path}\n{info.width} × {info.height} px · "
                f"{STATUS_LABELS[info.status]} · {info.split} · {info.n_objects} shapes"
            )
            error = self.thumbs.errors.get(info.id)
            return f"{tip}\ncannot show: {error}" if error else tip
        if role == RowRole:
            return info
        return None

    def _decoration(self, info: BrowseRow) -> QPixmap:
        pm = self.thumbs.pixmap(info.id)
        if pm is not None:
            return pm
        if info.id in self.thumbs.errors:
            return self._broken
        self.thumbs.request(info.id, info.abs_path, info.checksum)
        return self._placeholder

    def _thumb_ready(self, image_id: int) -> None:
        row = self.row_of(image_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ThumbDelegate(QStyledItemDelegate):
    """Thumbnail above the name in the grid (the view runs in list mode with wrapping,
    the cheap layout, so the delegate puts the picture on top), plus a status dot and
    the shape count."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        if not index.model().compact:  # type: ignore[attr-defined]
            option.decorationPosition = QStyleOptionViewItem.Position.Top
            option.decorationAlignment = Qt.AlignmentFlag.AlignCenter
            option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
            option.textElideMode = Qt.TextElideMode.ElideMiddle

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        view = option.widget
        grid = view.gridSize() if view is not None else QSize()  # type: ignore[attr-defined]
        if grid.isValid():
            return grid - QSize(4, 4)
        return super().sizeHint(option, index)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        info: BrowseRow | None = index.data(RowRole)
        if info is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        r: QRect = option.rect
        painter.setPen(QColor(30, 30, 30))
        painter.setBrush(STATUS_COLORS.get(info.status, QColor("gray")))
        painter.drawEllipse(r.left() + 5, r.top() + 5, 10, 10)
        if info.n_objects and not index.model().compact:  # type: ignore[attr-defined]
            text = str(info.n_objects)
            fm = painter.fontMetrics()
            w = fm.horizontalAdvance(text) + 8
            badge = QRect(r.right() - w - 4, r.top() + 4, w, fm.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(badge, 4, 4)
            painter.setPen(QColor("white"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

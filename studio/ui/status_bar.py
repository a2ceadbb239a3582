"""The window's status bar: the image shown, the cursor, the zoom and the project's counts.

It only formats what the window hands it; the window decides when a count is worth a
query (counts over a 100,000-image project are a scan, refreshed after bursts of edits).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from studio.core import browse
from studio.core.errors import StudioError
from studio.core.project import Project
from studio.core.records import ImageRecord


class StatusBar(QStatusBar):
    """Image name and size (left); cursor, zoom and counts (right, permanent)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.image_label = QLabel("")
        self.zoom_label = QLabel("")
        self.cursor_label = QLabel("")
        self.counts_label = QLabel("")
        self.cursor_label.setMinimumWidth(110)
        self.addWidget(self.image_label, 1)
        for w in (self.cursor_label, self.zoom_label, self.counts_label):
            self.addPermanentWidget(w)
        self._done_text = ""

    def show_image(self, image: ImageRecord | None) -> None:
        """Name and size in pixels as stored (after EXIF orientation)."""
        self.image_label.setText(f"{image.name}   {image.width} × {image.height}" if image else "")

    def show_image_of(self, project: Project | None, image_id: int) -> bool:
        """Name, size and shape count of `image_id`; False (and blank) if it is gone."""
        try:
            image = project.image(image_id) if project is not None else None
        except StudioError:
            image = None
        self.show_image(image)
        self.show_counts(len(project.annotations(image_ids=[image_id])) if image else None)
        return image is not None

    def refresh_counts(self, project: Project, image_id: int | None) -> None:
        """Re-count what is done in the whole project (a scan: after bursts of edits,
        not on every image change) and the shapes on `image_id`."""
        self.set_done_count(*browse.done_count(project))
        shapes = len(project.annotations(image_ids=[image_id])) if image_id is not None else None
        self.show_counts(shapes)

    def show_cursor(self, x: float, y: float) -> None:
        """`x`, `y`: the cursor in image pixels."""
        self.cursor_label.setText(f"x {int(x)}, y {int(y)}")

    def show_zoom(self, zoom: float) -> None:
        """`zoom`: screen pixels per image pixel."""
        self.zoom_label.setText(f"{zoom * 100:.0f}%")

    def set_done_count(self, done: int, total: int) -> None:
        """Images marked done out of all; shown with the next `show_counts`."""
        self._done_text = f"{done:,} / {total:,} done"

    def show_counts(self, shapes: int | None) -> None:
        """The done count, and the shapes on the shown image (None: no image shown)."""
        text = self._done_text
        if shapes is not None:
            text += f"  ·  {shapes} shape{'s' if shapes != 1 else ''}"
        self.counts_label.setText(text)

    def clear_labels(self) -> None:
        for label in (self.image_label, self.zoom_label, self.cursor_label, self.counts_label):
            label.setText("")

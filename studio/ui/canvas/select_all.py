"""Select all (Ctrl+A), also while the shown image's shapes still arrive.

The shapes of a dense image are built over event-loop turns (`layers/shape_pages`);
selecting the items built so far selected only part of the image. Reading and building
the rest at once would block the GUI thread for 150-250 ms, so the shapes built now are
selected at once and every shape once the last is built, in a turn of its own, unless
the selection or the image changed meanwhile (the user chose something else).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer

if TYPE_CHECKING:
    from studio.ui.canvas.view import CanvasView


def select_all_shapes(view: CanvasView) -> None:
    """Select every visible shape of the image shown (hidden ones are not selectable),
    those still arriving once they are built."""
    shapes = view.shapes
    view.select([i for i in shapes.items if shapes.is_visible(i)])
    if not shapes.pages.pending:
        return
    image_id, chosen = view.image_id, view.selected_annotation_ids()

    def select_the_rest() -> None:
        if view.image_id == image_id and view.selected_annotation_ids() == chosen:
            view.select([i for i in shapes.items if shapes.is_visible(i)])

    # After the turn that built the last shape: selecting thousands restyles each.
    shapes.pages.when_done(lambda: QTimer.singleShot(0, view, select_the_rest))

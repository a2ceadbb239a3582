"""Process-wide settings that keep the window's event loop responsive.

Python's cyclic garbage collector runs in whichever thread happens to allocate when a
threshold is crossed, and holds the GIL throughout. With torch loaded a full collection
takes 100-300 ms; run by a worker thread (thumbnails, the runs list's refresh), it froze
the GUI thread for that long while training plotted live (measured: 100 ms stalls with the
GUI thread idle). Far higher thresholds make collections rare; `gc.freeze()` after start-up
moves the long-lived objects (Qt, torch modules) out of every later collection.
"""

from __future__ import annotations

import gc

_tuned = False


def tune_gc() -> None:
    """Raise the collector's thresholds (idempotent). Reference counting still frees
    almost everything at once; only cycles wait longer."""
    global _tuned
    if not _tuned:
        gc.set_threshold(100_000, 50, 1000)
        _tuned = True


def freeze_startup_objects() -> None:
    """Call once the window is up: what exists now lives as long as the process."""
    gc.collect()
    gc.freeze()

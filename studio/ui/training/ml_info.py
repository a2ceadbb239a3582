"""What the training dock needs from the ML side, fetched without stalling the window.

Both are slow: `panel_info` imports torch (seconds, in a worker thread), and a model
summary builds the model (seconds of held GIL, so in a separate process).
"""

from __future__ import annotations

import gc
import importlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from studio.ml.run.preflight import PanelInfo


def panel_info(path: Path) -> PanelInfo:
    """`preflight.panel_info`, for a worker thread: it imports torch (seconds).

    Importing torch creates some 300,000 long-lived objects. With the garbage collector
    on, each full collection during the import stops every thread, the GUI's too, for up
    to 0.3 s, and every later one scans them all again. So the import runs with the
    collector off, and what exists then is frozen (`gc.freeze`): later collections only
    look at newer objects. Done once, by the first caller."""
    global _ML_IMPORTED
    if not _ML_IMPORTED:
        _ML_IMPORTED = True
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            importlib.import_module("studio.ml.run.preflight")
        finally:
            if was_enabled:
                gc.enable()
            gc.freeze()
    from studio.ml.run import preflight

    return preflight.panel_info(path)


_ML_IMPORTED = False


class ModelSummaries:
    """The composable detector's summaries, computed in one spawned low-priority process
    (building the model holds the GIL for seconds: in a thread it would freeze the
    window). `describe` blocks until the text is there: call it from a worker thread."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def describe(self, model: str, image_size: int | None, options: dict[str, Any]) -> str:
        from studio.ml.run import preflight

        with self._lock:
            if self._executor is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._executor = ProcessPoolExecutor(
                    1, multiprocessing.get_context("spawn"), preflight.init_summary_worker
                )
            future = self._executor.submit(preflight.summary_text, model, image_size, options)
        return future.result()

    def shutdown(self) -> None:
        """Stop the process once its current summary is done; never waits."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

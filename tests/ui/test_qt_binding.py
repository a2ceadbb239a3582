"""Guards the Qt binding itself: PySide6 6.12.0 returns None/True from emit() and void
calls without a reference on Python 3.11, which aborts the process after a few seconds
of mouse moves ("Fatal Python error: none_dealloc"). constraints.txt pins a good one."""

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget


class _Emitter(QObject):
    fired = Signal()


def test_signals_and_void_calls_keep_references_to_none_and_true(qapp):
    obj, widget = _Emitter(), QWidget()
    obj.fired.connect(lambda: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(5000):
        obj.fired.emit()
        widget.update()
        qapp.processEvents()
    # A leak would lose one reference per call: thousands. Allow a little noise.
    assert sys.getrefcount(None) - none_before > -50
    assert sys.getrefcount(True) - true_before > -50

"""Shared by every test layer: Qt runs headless, and no test touches the user's data."""

import os

# Before any Qt import: the window tests run without a display, in CI and on laptops.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

"""Shared by every test layer: Qt runs headless, and no test touches the user's data."""

import os
import tempfile

# Before any Qt import: the window tests run without a display, in CI and on laptops.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# platformdirs (demo project, caches, recent projects) follows the XDG variables on Linux:
# point them at a throwaway folder so a test run never writes into the user's home.
_sandbox = tempfile.mkdtemp(prefix="studio-tests-")
for _var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
    os.environ[_var] = os.path.join(_sandbox, _var.lower())

"""Architecture: ui -> ml -> core, and the core loads neither Qt nor torch."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "PySide6", "shiboken6", "pyqtgraph")


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    if beside.is_file():
        return str(beside)
    found = shutil.which("lint-imports")
    assert found, "lint-imports (import-linter) is not installed; pip install -e '.[test]'"
    return found


def test_import_contracts_are_kept() -> None:
    r = subprocess.run(
        [_lint_imports(), "--no-logo", "--no-cache"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"lint-imports failed:\n{r.stdout}\n{r.stderr}"
    # The contracts of pyproject.toml (six: layers, heavy imports, ml layers, ui features) all ran.
    m = re.search(r"Contracts: (\d+) kept, 0 broken", r.stdout)
    assert m and int(m.group(1)) >= 6, r.stdout


def test_core_and_cli_do_not_load_qt_or_torch() -> None:
    code = (
        "import sys\n"
        "import studio.core.project, studio.core.importing, studio.core.formats, studio.cli\n"
        "import studio.core.splits, studio.core.demo\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
        "print('studio.core.formats.coco' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    loaded, formats_loaded = r.stdout.splitlines()
    assert loaded == "[]", f"heavy modules loaded by the core: {loaded}"
    assert formats_loaded == "True"  # the check above did import what it claims


def test_studio_info_does_not_load_qt_or_torch(tmp_path: Path) -> None:
    """The headless verbs a user runs most stay light: `studio new` and `studio info`."""
    code = (
        "import sys\n"
        "from studio.cli import main\n"
        f"assert main(['new', {str(tmp_path / 'p')!r}]) == 0\n"
        f"assert main(['info', {str(tmp_path / 'p')!r}, '--json']) == 0\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "[]", r.stderr

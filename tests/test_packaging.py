"""An installed Studio must be complete: migrations inside the wheel, a working entry point."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_the_migrations_and_the_console_script(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("studio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = sorted(ROOT.glob("studio/core/migrations/versions/*.py"))
    assert versions
    for v in versions:
        assert f"studio/core/migrations/versions/{v.name}" in names
    assert "studio/core/migrations/env.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "studio = studio.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_desktop_entry_runs_the_console_script():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "packaging/studio.desktop")
    entry = cfg["Desktop Entry"]
    assert entry["Exec"].split()[0] == "studio"
    assert (ROOT / "resources" / f"{entry['Icon']}.svg").is_file()

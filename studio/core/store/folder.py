"""Where a project's files are: its folder, runs and cache, and how image paths are stored."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "studio.db"


@dataclass(frozen=True)
class ProjectFolder:
    """A project folder::

    DIR/studio.db     SQLite database
    DIR/runs/         one folder per training run
    DIR/cache/        thumbnails and other things that can be rebuilt
    """

    path: Path  # absolute, resolved

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def stored_path(self, file: Path) -> str:
        """How an image path is stored: relative to the project folder (POSIX
        separators) when the file lies inside it, else absolute."""
        file = Path(os.path.abspath(file))
        for candidate in (file, Path(os.path.realpath(file))):
            try:
                return candidate.relative_to(self.path).as_posix()
            except ValueError:
                pass
        return str(file)

    def abs_path(self, stored: str) -> Path:
        """The absolute path of a stored (possibly project-relative) path."""
        p = Path(stored)
        return p if p.is_absolute() else self.path / p

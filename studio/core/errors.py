"""Errors a user can act on. The CLI prints them as one line, with no traceback."""

from __future__ import annotations

from pathlib import Path


class StudioError(Exception):
    """A problem with the user's input or project, with a message fit to show as is."""


class ProjectError(StudioError):
    """The project folder or database cannot be used."""


class ImageFileError(StudioError):
    """An image file cannot be read. `reason` says why in a few words."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FormatError(StudioError):
    """An annotation file is malformed. `where` locates the problem in the file."""

    def __init__(self, path: Path | str, where: str, problem: str):
        self.path = Path(path)
        self.where = where
        self.problem = problem
        loc = f" ({where})" if where else ""
        super().__init__(f"{self.path}{loc}: {problem}")


class MissingImageError(FormatError):
    """An annotation file names an image that is nowhere to be found. `hint` says what a
    command-line user can do; `without_hint` is the message for a window, which offers
    its own way out (skipping missing images) instead of naming flags."""

    def __init__(self, path: Path | str, where: str, name: str, looked: str, hint: str = ""):
        self.name = name
        self.hint = hint
        self.without_hint = FormatError(
            path, where, f"image {name!r} not found (looked in {looked})"
        )
        super().__init__(path, where, f"image {name!r} not found (looked in {looked}){hint}")


class Cancelled(StudioError):
    """Raised inside long work when the caller asked it to stop."""

    def __init__(self) -> None:
        super().__init__("cancelled")

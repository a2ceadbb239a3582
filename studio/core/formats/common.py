"""Helpers shared by the annotation format readers and writers.

Coordinates are Studio's: floats, pixels of the displayed image (after EXIF orientation),
continuous, origin at the top-left corner of the top-left pixel, so pixel (i, j) covers
[i, i + 1) x [j, j + 1) and its centre is at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import gc
import json
import math
import os
import re
import shutil
import stat
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

from studio.core.errors import FormatError, MissingImageError, StudioError
from studio.core.imageinfo import IMAGE_EXTENSIONS, read_image_info
from studio.core.records import ImageRecord

# --- reading -------------------------------------------------------------------------------


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of containers.

    Each collection walks every live container, so a big JSON document (and the specs
    built from it) would be walked again and again; parsing a million-annotation COCO
    file takes about a third less time without that. Nothing built here is cyclic
    garbage, and the collector is restored (if it was on) however the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_regular_bytes(path: Path) -> bytes:
    """The bytes of a regular file; `FormatError` for anything else (a FIFO would block
    the import forever, a device would never end) or an unreadable file."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise FormatError(path, "", "not a regular file")
        return path.read_bytes()
    except OSError as e:
        raise FormatError(path, "", f"cannot read the file: {e.strerror or e}") from e


def read_text_file(path: Path, what: str) -> str:
    """UTF-8 text of a small text file (a class list, an image list); `FormatError`
    naming the file for binary content or a read error. `what` names it: "classes file"."""
    data = read_regular_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FormatError(path, f"byte {e.start}", f"the {what} is not UTF-8 text") from e


def load_json(path: Path) -> Any:
    """Parse a JSON file, turning syntax and encoding errors into `FormatError` with line/column."""
    data = read_regular_bytes(path)
    try:
        # json.loads on bytes detects UTF-8/16/32 and skips a UTF-8 byte order mark.
        with gc_paused():
            return json.loads(data)
    except json.JSONDecodeError as e:
        raise FormatError(
            path, f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}"
        ) from e
    except UnicodeDecodeError as e:
        raise FormatError(path, f"byte {e.start}", "the file is not UTF-8 text") from e
    except RecursionError:
        raise FormatError(path, "", "JSON nested too deeply to be an annotation file") from None
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise FormatError(path, "", f"invalid JSON: {e}") from None


def parse_xml(f: Path) -> ET.Element:
    """The root element of an XML file; `FormatError` with line and column if malformed."""
    try:
        return ET.parse(f).getroot()
    except ET.ParseError as e:
        line, col = e.position
        msg = str(e).split(":")[0]
        raise FormatError(f, f"line {line} column {col + 1}", f"malformed XML: {msg}") from e
    except OSError as e:
        raise FormatError(f, "", f"cannot read the file: {e.strerror or e}") from e


def is_number(v: object) -> bool:
    """True for a finite int or float (bool excluded: JSON true is not a coordinate; an
    integer too big for a float, such as a 400-digit one, excluded too)."""
    if type(v) is bool or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


# Largest image side a file may declare, in pixels: far beyond any camera or scanner, and
# small enough that a hostile 1e308 is refused rather than carried into messages and math.
MAX_DECLARED_SIDE = 1_000_000


def declared_side(v: object) -> bool:
    """True for a declared image width or height Studio accepts: a whole number of
    pixels in 1..MAX_DECLARED_SIDE (1e308, -3, 2.5, true and "64" are refused)."""
    return is_number(v) and 0 < v <= MAX_DECLARED_SIDE and float(v).is_integer()


def _path_text(name: str) -> str:
    # Annotation files written on Windows use backslashes; a backslash in a real file name
    # on POSIX is rare enough that treating it as a separator is the better bet.
    return name.replace("\\", "/")


# Folder listings shared by every resolver of the process (one per annotation file when a
# folder holds one label file per image), valid while the folder's mtime is unchanged:
# adding or removing an entry changes it.
_LISTINGS: dict[str, tuple[int, frozenset[str]]] = {}
_MAX_LISTINGS = 256


def _folder_files(folder: str) -> frozenset[str]:
    """Names of the plain files in `folder` (empty when it cannot be listed)."""
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return frozenset()
    cached = _LISTINGS.get(folder)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        with os.scandir(folder) as it:
            # DirEntry.is_file uses the type the listing returned: no stat per file.
            files = frozenset(e.name for e in it if e.is_file())
    except OSError:
        return frozenset()
    if len(_LISTINGS) >= _MAX_LISTINGS:
        _LISTINGS.pop(next(iter(_LISTINGS)))
    _LISTINGS[folder] = (mtime, files)
    return files


class ImageResolver:
    """Finds the image file an annotation file names, caching directory listings.

    Order tried for a name: the preferred candidates a reader passes (labelme: relative to
    the JSON file); the name itself if absolute; `images_dir / name`; the annotation file's
    folder / name; that folder / "images" / name; its parent / "images" / name; the extra
    candidates a reader passes (VOC: ../JPEGImages/name); `images_dir / basename`; for an
    absolute name (another machine's path), the annotation file's folder / basename.

    Listing each folder once and testing membership is much cheaper than a stat per
    candidate when a COCO file names 100,000 images (paths are plain strings for the same
    reason); a name missed that way (a case-insensitive file system) is still found by a
    real existence check before giving up.
    """

    def __init__(self, images_dir: Path | None = None):
        self.images_dir = os.path.abspath(images_dir) if images_dir is not None else None
        self._files: dict[str, frozenset[str]] = {}

    def candidates(
        self,
        name: str,
        ann_file: Path,
        prefer: Sequence[Path] = (),
        extra: Sequence[Path] = (),
    ) -> list[str]:
        """All paths tried for `name`, in order (may contain duplicates)."""
        rel = _path_text(name)
        join = os.path.join
        here = os.path.dirname(os.path.abspath(ann_file))
        out = [str(p) for p in prefer]
        if os.path.isabs(rel):
            out.append(rel)
        else:
            if self.images_dir is not None:
                out.append(join(self.images_dir, rel))
            out += [
                join(here, rel),
                join(here, "images", rel),
                join(os.path.dirname(here), "images", rel),
            ]
        out += [str(p) for p in extra]
        base = os.path.basename(rel)
        if self.images_dir is not None and base:
            out.append(join(self.images_dir, base))
        if base and (os.path.isabs(rel) or re.match(r"[A-Za-z]:/", rel)):
            # A path of the machine that wrote the file (labelme's "D:\\photos\\a.jpg"):
            # the image copied beside its annotation file.
            out.append(join(here, base))
        return out

    def _listed(self, p: str) -> bool:
        folder, name = os.path.split(p)
        files = self._files.get(folder)
        if files is None:
            files = self._files[folder] = _folder_files(folder or ".")
        return name in files

    def _by_stem(self, cands: Sequence[str]) -> list[str]:
        """Image files whose name without extension is a candidate's name, for names
        written without one (X-AnyLabeling's COCO export: "file_name": "demo")."""
        found: dict[str, None] = {}
        for p in cands:
            folder, name = os.path.split(p)
            if not name or os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                continue
            self._listed(p)
            for f in sorted(self._files.get(folder, ())):
                stem, ext = os.path.splitext(f)
                if stem == name and ext.lower() in IMAGE_EXTENSIONS:
                    found[os.path.abspath(os.path.join(folder, f))] = None
        return list(found)

    def resolve(
        self,
        name: str,
        ann_file: Path,
        where: str,
        prefer: Sequence[Path] = (),
        extra: Sequence[Path] = (),
    ) -> Path:
        """Absolute path of the first existing candidate; `FormatError` if none exists."""
        cands = self.candidates(name, ann_file, prefer, extra)
        for p in cands:
            if self._listed(p):
                return Path(os.path.abspath(p))
        for p in cands:
            if os.path.isfile(p):
                return Path(os.path.abspath(p))
        by_stem = self._by_stem(cands)
        if len(by_stem) == 1:
            return Path(by_stem[0])
        if len(by_stem) > 1:
            raise FormatError(
                ann_file,
                where,
                f"image {name!r} has no extension and {len(by_stem)} images have that name "
                f"({', '.join(os.path.basename(p) for p in by_stem[:3])}); add the extension",
            )
        return self._not_found(name, ann_file, where, cands)

    def _not_found(self, name: str, ann_file: Path, where: str, cands: Sequence[str]) -> Path:
        """An image of the project with this file name (wherever it sits), else, when
        the import skips missing images, a placeholder path noted as missing; else
        `MissingImageError`."""
        ctx = RESOLVING.get()
        base = os.path.basename(_path_text(name))
        if ctx is not None:
            known = ctx.known_by_name.get(base)
            if known is not None:
                return Path(known)
            if ctx.skip_missing:
                # A path per name that does not exist, so that two missing images stay two.
                placeholder = os.path.abspath(cands[0] if cands else name)
                ctx.missing[placeholder] = f"{ann_file}: {where}: {name}"
                return Path(placeholder)
        looked = ", ".join(dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p in cands))
        raise MissingImageError(
            ann_file, where, name, looked,
            "; pass --images with the folder that holds the images, or --skip-missing to "
            "import the rest",
        )  # fmt: skip


def with_cli_hint(exc: StudioError, hint: str) -> StudioError:
    """`exc` with `hint` (what a command-line user can do: "; pass --images ...")
    added to its message; `exc.without_hint` keeps the message without it, for the
    window, which offers its own way out (as `MissingImageError` does)."""
    exc.without_hint = StudioError(str(exc))  # type: ignore[attr-defined]
    exc.args = (f"{exc}{hint}",)
    return exc


@dataclass
class Resolving:
    """What an import knows while readers look for images: the project's images by
    file name (None where two share a name: ambiguous) and whether a missing image is
    skipped (noted in `missing`, placeholder path -> "file: where: name") or an error."""

    known_by_name: dict[str, str | None] = field(default_factory=dict)
    skip_missing: bool = False
    missing: dict[str, str] = field(default_factory=dict)


# Set by `studio.core.importing` around a reader: readers keep their plain signature
# (plugins implement it too) and every `ImageResolver` consults it.
RESOLVING: ContextVar[Resolving | None] = ContextVar("studio_resolving", default=None)


def display_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image as displayed, i.e. after EXIF orientation, in pixels.

    Raises `ImageFileError` if the file is not a readable image.
    """
    info = read_image_info(path)
    return info.width, info.height


# labelme's conventions for "not a class": regions to ignore and the background
# (labelme2coco and labelme2voc read them so, and its labels.txt lists them first).
NOT_A_CLASS = frozenset({"__ignore__", "_background_"})


def without_not_a_class(class_names: list[str] | None, warnings: list[str]) -> list[str] | None:
    """`class_names` (a classes file's) without labelme's not-a-class labels, each one
    left out noted in `warnings`: a labels.txt given as is makes no "__ignore__" class."""
    if class_names is None:
        return None
    dropped = [n for n in class_names if n in NOT_A_CLASS]
    if dropped:
        warnings.append(
            f"classes file: {', '.join(dropped)} left out (labelme's not-a-class labels)"
        )
    return [n for n in class_names if n not in NOT_A_CLASS]


def first_seen_classes(found: Iterable[str], class_names: list[str] | None) -> list[str]:
    """Class order for formats without a class list: `class_names` first, then by appearance."""
    order = dict.fromkeys(class_names or ())
    order.update(dict.fromkeys(found))
    return list(order)


def count_note(counts: dict[str, int], text: str) -> list[str]:
    """One warning per key with a non-zero count: text.format(n=count, key=key)."""
    return [text.format(n=n, key=k) for k, n in sorted(counts.items()) if n]


# --- writing -------------------------------------------------------------------------------


# Characters XML 1.0 cannot hold at all (not even as character references).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Characters that must not reach a file name or a one-name-a-line list.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 cannot hold replaced by U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def fmt_num(v: float) -> str:
    """Shortest text that reads back as the same float; integral values without ".0"."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def stored_parts(image: ImageRecord) -> tuple[tuple[str, ...], str]:
    """(folder parts, file name) of an image's stored path, for naming exported files.

    Relative stored paths keep their folders; an absolute one (an image outside the project
    folder) keeps only its last folder, enough to tell apart most collisions.
    """
    p = PurePath(_path_text(image.path))
    folders = p.parent.parts
    if p.is_absolute() or p.anchor:
        folders = folders[-1:] if len(folders) > 1 else ()
    folders = tuple(f for f in folders if f not in ("", ".", ".."))
    return folders, p.name


def unique_stems(images: Sequence[ImageRecord], nested: bool) -> dict[int, str]:
    """Image id -> export stem (file name without suffix), unique ignoring case.

    `nested=False` (YOLO, VOC: one flat folder): the image's stem, and where two images
    share a stem, each is prefixed with its relative folder ("sub__a"). `nested=True`
    (labelme: mirrors the folders): "sub/a". Stems still equal after that (a.jpg and
    a.png in one folder) get the suffix appended ("a_png"), then the image id. The result
    does not depend on the order of `images`. Compared case-insensitively because the
    export may be copied to Windows or macOS.
    """
    names: dict[int, str] = {}
    for im in images:
        folders, name = stored_parts(im)
        # A newline in a file name would split VOC's ImageSets lists and YOLO's lists.
        folders = tuple(_CONTROL.sub("_", f) for f in folders)
        stem = _CONTROL.sub("_", PurePath(name).stem)
        names[im.id] = "/".join((*folders, stem)) if nested else stem

    def clashes() -> set[int]:
        seen: dict[str, list[int]] = {}
        for iid, s in names.items():
            seen.setdefault(s.casefold(), []).append(iid)
        return {i for ids in seen.values() if len(ids) > 1 for i in ids}

    by_id = {im.id: im for im in images}
    if not nested:
        for iid in clashes():
            folders, name = stored_parts(by_id[iid])
            names[iid] = _CONTROL.sub("_", "__".join((*folders, PurePath(name).stem)))
    for iid in clashes():
        suffix = PurePath(stored_parts(by_id[iid])[1]).suffix.lstrip(".")
        if suffix:
            names[iid] = f"{names[iid]}_{suffix}"
    for iid in clashes():
        names[iid] = f"{names[iid]}_{iid}"
    return names


def link_or_copy(src: Path, dst: Path) -> None:
    """Put `src` at `dst`: a hard link where the file system allows it, else a copy.

    Raises `StudioError` if neither works (the image is gone, the disk is full, ...).
    """
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            if os.path.samefile(src, dst):
                return
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:
            # Another device, a file system without hard links, or no permission for them.
            shutil.copy2(src, dst)
    except OSError as e:
        raise StudioError(f"{src}: cannot copy to {dst}: {e.strerror or e}") from e


def relative_posix(target: Path, start: Path) -> str:
    """`target` relative to the folder `start`, with "/" separators; absolute if impossible."""
    try:
        return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:
        # Different drives on Windows have no relative path between them.
        return Path(target).as_posix()


_UMASK: list[int] = []


def _umask() -> int:
    """The process's umask (read once: reading it means setting it)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


@contextmanager
def atomic_output(path: Path, binary: bool = False) -> Iterator[IO]:
    """A file object to write `path` through: a temporary file beside it, renamed over
    `path` once the block ends without error, removed if it fails. So `path` holds the
    old content or the new one, never half of it, and a full disk leaves no stray file.

    Raises `StudioError` naming `path` when the folder cannot be made or the write fails.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise StudioError(f"{path}: cannot write: {e.strerror or e}") from e
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as f:
            yield f
        # mkstemp makes the file for its owner alone; a written file gets the mode any
        # new file gets (0644 under the usual umask), so others can read an export.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise StudioError(f"{path}: cannot write: {e.strerror or e}") from e
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all (see `atomic_output`)."""
    with atomic_output(path) as f:
        f.write(text)

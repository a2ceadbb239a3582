"""Find image files, read their size and checksum cheaply, decode them as displayed.

Two pixel grids matter for an image file:

* *stored*: the pixels as the file holds them, ``raw_width`` x ``raw_height``;
* *displayed*: after the EXIF orientation tag is applied, ``width`` x ``height``, which is
  what image viewers show and what every annotation in a project refers to.

Coordinates are continuous pixel coordinates: x to the right, y down, origin at the
top-left corner of the top-left pixel, so the centre of pixel (col, row) is at
(col + 0.5, row + 0.5) and a box around the whole image spans [0, width] x [0, height].
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import (
    BmpImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from studio.core.errors import ImageFileError, StudioError
from studio.core.image_integrity import (
    declared_size_problem,
    hash_file,
    os_reason,
    sniff,
    truncation_problem,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# The only formats PIL may identify a file as. Restricting the list keeps PIL from trying
# lenient plugins (TGA, ...) that can "identify" a text file, and from importing them all.
# Multi-picture JPEGs from cameras come back as "MPO" through the JPEG opener.
_PIL_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
# Importing these registers the formats above, so PIL needs no Image.init() (which
# imports every plugin it has) before the first open.
_PIL_PLUGINS = (
    BmpImagePlugin,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

_ORIENTATION_TAG = 0x0112

# How PIL's ImageOps.exif_transpose turns stored pixels into displayed ones.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# The same transforms on points: (swap x and y, then mirror x, then mirror y), where the
# mirrors use the displayed size. E.g. 6 (90 degrees clockwise): (x, y) -> (H - y, x).
_POINT_TRANSFORM: dict[int, tuple[bool, bool, bool]] = {
    1: (False, False, False),
    2: (False, True, False),
    3: (False, True, True),
    4: (False, False, True),
    5: (True, False, False),
    6: (True, True, False),
    7: (True, True, True),
    8: (True, False, True),
}

# PIL refuses images over MAX_IMAGE_PIXELS (a guard for servers opening uploads). Here
# the files are the user's own and 20000 x 20000 scans are legitimate, so the guard is
# lifted around our own Image.open only; the lock keeps concurrent callers from restoring
# each other's value. Opening parses headers (and reads a WebP file whole), which is
# quick next to decoding, so holding the lock costs little.
_BOMB_GUARD_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ImageFileInfo:
    """What `read_image_info` learns about a file without decoding its pixels.

    `width`/`height` are in displayed pixels (after EXIF orientation), `raw_width`/
    `raw_height` in stored pixels; they differ (swapped) for orientations 5 to 8.
    """

    width: int
    height: int
    raw_width: int
    raw_height: int
    orientation: int  # EXIF orientation tag 1..8; 1 when absent or invalid
    checksum: str  # hex blake2b (digest_size=16) of the file's bytes
    file_size: int  # bytes
    format: str  # PIL format name: "JPEG", "PNG", "MPO", "TIFF", "BMP", "WEBP"
    mode: str  # PIL mode of the stored pixels: "RGB", "L", "I;16", "CMYK", ...


def iter_image_files(folder: Path) -> Iterator[Path]:
    """Yield the image files under `folder`, recursively, in a deterministic order.

    Files match `IMAGE_EXTENSIONS` case-insensitively. Names starting with "." (hidden
    folders, and hidden files such as macOS "._x.jpg" resource forks) are skipped, and
    so are Studio project folders inside (their thumbnails are not the folder's images).
    Symlinks are followed, but each real folder is walked once, so loops end. Within a
    folder, entries come in code-point order of their names, so the whole sequence is
    sorted by path components. Sub-folders that cannot be listed are skipped.

    Raises `StudioError` if `folder` itself is not a readable folder.
    """
    folder = Path(folder)
    try:
        top = os.stat(folder)
        entries = _sorted_entries(folder)
    except NotADirectoryError:
        raise StudioError(f"{folder}: not a folder") from None
    except OSError as e:
        raise StudioError(f"{folder}: cannot list folder: {os_reason(e)}") from None

    seen = {(top.st_dev, top.st_ino)}
    stack = [iter(entries)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                st = entry.stat()
                key = (st.st_dev, st.st_ino)
                # A Studio project inside (its thumbnail cache, its runs) holds no images
                # of the folder's own.
                if key not in seen and not os.path.isfile(os.path.join(entry.path, "studio.db")):
                    seen.add(key)
                    stack.append(iter(_sorted_entries(entry.path)))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue  # unreadable folder or broken link: nothing in it to import


def _sorted_entries(folder: str | Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def read_image_info(path: Path) -> ImageFileInfo:
    """Read size, orientation, format and checksum of an image file without decoding it.

    Opens the file once and reads it once, in chunks, for the checksum; the same bytes
    show whether the file was cut short (JPEG without its end marker, PNG without IEND,
    BMP/WebP/TIFF declaring more bytes than there are). Headers come from PIL, which
    reads them lazily; pixels are never decoded, so corrupt pixel data that leaves the
    structure intact is only found by `decode_image`.

    Raises `ImageFileError` with a short reason for anything that is not a readable,
    complete image of a supported format.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ImageFileError(path, "unsupported extension")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ImageFileError(path, f"cannot read: {os_reason(e)}") from None
    with f:
        checksum, size, head, tail = hash_file(path, f)
        if size == 0:
            raise ImageFileError(path, "empty file (0 bytes)")
        # Before PIL: its WebP opener fails on a cut file with a less helpful message.
        problem = declared_size_problem(head, size)
        if problem:
            raise ImageFileError(path, problem)
        img = _open_pil(path, f, head)
        try:
            raw_w, raw_h = _stored_size(img)
            fmt = img.format or ""
            mode = img.mode
            orientation = _orientation_of(img)
            problem = truncation_problem(img, f, size, tail)
        except Exception as e:  # PIL parses some headers lazily; keep its errors in
            raise ImageFileError(path, _pil_reason(e, "corrupt header")) from None
        finally:
            img.close()
    if problem:
        raise ImageFileError(path, problem)
    if raw_w <= 0 or raw_h <= 0:
        raise ImageFileError(path, "image has zero size")
    width, height = (raw_h, raw_w) if orientation >= 5 else (raw_w, raw_h)
    return ImageFileInfo(
        width=width,
        height=height,
        raw_width=raw_w,
        raw_height=raw_h,
        orientation=orientation,
        checksum=checksum,
        file_size=size,
        format=fmt,
        mode=mode,
    )


def decode_image(path: Path, max_side: int | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8, shape (height, width, 3), as a viewer shows it.

    The EXIF orientation is applied (as PIL's `ImageOps.exif_transpose` does, with the
    orientation `read_image_info` reports), so the array is in displayed pixels. Gray,
    palette, CMYK and 1-bit images become RGB; alpha is composited on white; 16-bit and
    float images are contrast-stretched to 0..255 between their 0.5th and 99.5th
    percentiles.

    With `max_side`, the image is downsampled so that its longest side is at most
    `max_side` pixels (JPEGs are decoded at a reduced DCT scale first, which is much
    cheaper for huge photos). The scale is out_width / width along x and out_height /
    height along y, equal up to the rounding of the output size to whole pixels.

    Raises `ImageFileError` if the file cannot be read or decoded (corrupt, truncated).
    """
    path = Path(path)
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ImageFileError(path, f"cannot read: {os_reason(e)}") from None
    with f:
        img = _open_pil(path, f, None)
        try:
            orientation = _orientation_of(img)
            if img.format == "TIFF":
                img.load()
                # Pillow's TIFF loader applies the orientation itself and then drops the
                # tag (older versions did not); never apply it twice.
                if _ORIENTATION_TAG not in getattr(img, "tag_v2", {}):
                    orientation = 1
            im: Image.Image = img
            # Palette and bilevel pixels cannot be interpolated; convert those first.
            if max_side is not None and im.mode not in ("1", "P", "PA"):
                im = _reduce(im, max_side)
            im = _to_rgb(im)
            if max_side is not None:
                im = _reduce(im, max_side)
            method = _TRANSPOSE.get(orientation)
            if method is not None:
                im = im.transpose(method)
            # np.asarray would be a read-only view of a bytes copy; callers draw on it.
            arr = np.array(im, dtype=np.uint8)
        except MemoryError:
            raise ImageFileError(path, "not enough memory to decode") from None
        except Exception as e:
            raise ImageFileError(path, _pil_reason(e, "cannot decode")) from None
        finally:
            img.close()
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageFileError(path, f"cannot decode: unexpected pixel layout {arr.shape}")
    return arr


def orient_points(xy: np.ndarray, orientation: int, raw_width: int, raw_height: int) -> np.ndarray:
    """Map points from stored to displayed pixel coordinates for an EXIF orientation.

    `xy` is an (N, 2) array of continuous (x, y) coordinates in the stored image of size
    `raw_width` x `raw_height` (see the module docstring: a full-image box spans
    [0, raw_width] x [0, raw_height]). Returns a new float64 (N, 2) array in the
    displayed image, matching how `ImageOps.exif_transpose` moves the pixels: a pixel
    centre maps to the centre of the pixel it becomes. For orientations 5 to 8 the
    displayed image is `raw_height` wide and `raw_width` high.
    """
    try:
        swap, mirror_x, mirror_y = _POINT_TRANSFORM[orientation]
    except (KeyError, TypeError):
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}") from None
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {pts.shape}")
    out = pts[:, ::-1].copy() if swap else pts.copy()
    disp_w, disp_h = (raw_height, raw_width) if swap else (raw_width, raw_height)
    if mirror_x:
        out[:, 0] = disp_w - out[:, 0]
    if mirror_y:
        out[:, 1] = disp_h - out[:, 1]
    return out


def orient_mask(mask: np.ndarray, orientation: int) -> np.ndarray:
    """A [raw height, raw width] mask of the stored pixels as displayed for an EXIF
    orientation: the pixels move as `orient_points` moves their centres."""
    swap, mirror_x, mirror_y = _POINT_TRANSFORM[orientation]
    out = mask.T if swap else mask
    if mirror_x:
        out = out[:, ::-1]
    if mirror_y:
        out = out[::-1, :]
    return np.ascontiguousarray(out)


# --- helpers --------------------------------------------------------------------------


def _short(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _open_pil(path: Path, f: BinaryIO, head: bytes | None) -> Image.Image:
    """Identify the image in `f` (headers only) or raise ImageFileError."""
    try:
        with _BOMB_GUARD_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(f, formats=_PIL_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        if head is None:
            try:
                f.seek(0)
                head = f.read(16)
            except OSError as e:
                raise ImageFileError(path, f"cannot read: {os_reason(e)}") from None
        if not head:
            raise ImageFileError(path, "empty file (0 bytes)") from None
        sniffed = sniff(head)
        if sniffed:
            raise ImageFileError(path, f"corrupt or truncated {sniffed} header") from None
        raise ImageFileError(path, "not an image or unsupported format") from None
    except Exception as e:
        raise ImageFileError(path, _pil_reason(e, "corrupt header")) from None


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the stored pixels of an opened image."""
    if img.format == "TIFF":
        # Pillow's TIFF opener already reports the size as displayed, after orientation.
        tags = getattr(img, "tag_v2", {})
        width, height = tags.get(256), tags.get(257)  # ImageWidth, ImageLength
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return img.size


def _orientation_of(img: Image.Image) -> int:
    """The EXIF orientation 1..8 of an opened, not yet loaded image; 1 if absent or bad.

    Calls the base `Image.getexif` on purpose: PNG's override decodes all pixels to
    look for an eXIf chunk after the image data. `decode_image` uses this function too,
    so the orientation it applies always equals the one `read_image_info` reports.
    """
    try:
        value = Image.Image.getexif(img).get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    return 1


def _reduce(im: Image.Image, max_side: int) -> Image.Image:
    """Downsample so the longest side is at most `max_side`; JPEGs via libjpeg's draft."""
    w, h = im.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return im
    out = (max(1, round(w * scale)), max(1, round(h * scale)))
    box = None
    if im.format in ("JPEG", "MPO") and not getattr(im, "decoderconfig", ()):
        # Decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the output size for a
        # clean final resample; `box` is the original extent in drafted pixels, so the
        # resize below still maps the full original image onto the output exactly.
        drafted = im.draft(None, (2 * out[0], 2 * out[1]))
        if drafted is not None:
            box = drafted[1]
    return im.resize(out, Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB as a viewer would show it."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _stretch_to_uint8(np.asarray(im))
        return Image.fromarray(gray).convert("RGB")
    if mode == "La":  # PIL converts premultiplied gray only to its straight form
        im = im.convert("LA")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif im.mode in ("LA", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


def _stretch_to_uint8(a: np.ndarray) -> np.ndarray:
    """Map a 2-D high-bit-depth array to uint8, 0.5th percentile -> 0, 99.5th -> 255."""
    values = a.astype(np.float32)
    # Percentiles of a strided sample are plenty for a display stretch and keep a
    # 20000 x 20000 scan from sorting 400 million values.
    step = max(1, int(np.sqrt(values.size / 4_000_000)))
    sample = values[::step, ::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if hi <= lo:
        hi = lo + 1.0
    values -= lo
    values *= 255.0 / (hi - lo)
    np.nan_to_num(values, copy=False, nan=0.0)
    np.clip(values, 0.0, 255.0, out=values)
    return np.rint(values).astype(np.uint8)


def _pil_reason(e: Exception, what: str) -> str:
    """A reason for an exception raised while PIL parsed or decoded a file.

    PIL reports bad data as OSError too; only an OSError with an errno came from the OS.
    """
    if isinstance(e, OSError) and e.errno is not None:
        return f"cannot read: {os_reason(e)}"
    text = _short(e)
    if isinstance(e, OSError) and "truncated" in text:
        return "truncated file (image data incomplete)"
    if isinstance(e, EOFError):
        return "truncated file (unexpected end of data)"
    return f"{what}: {text}"

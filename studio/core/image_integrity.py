"""Is an image file whole? Checksums, format sniffing, and the end markers and declared
sizes that show a file was cut short, read from the bytes without decoding pixels."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from studio.core.errors import ImageFileError

_CHUNK = 1 << 20
_TAIL = 64  # bytes kept from the end of the file, to look for end markers
_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND\xaeB`\x82"  # chunk type + its (constant) CRC

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)


def os_reason(e: OSError) -> str:
    # strerror leaves out the file name, which the ImageFileError message already has.
    return e.strerror or str(e) or type(e).__name__


def hash_file(path: Path, f: io.BufferedReader) -> tuple[str, int, bytes, bytes]:
    """Return (checksum, size in bytes, first 16 bytes, last `_TAIL` bytes) of `f`."""
    digest = hashlib.blake2b(digest_size=16)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    size, head, tail = 0, b"", b""
    try:
        while n := f.readinto(buf):
            digest.update(view[:n])
            if len(head) < 16:
                head = (head + bytes(view[: min(n, 16)]))[:16]
            if n >= _TAIL:
                tail = bytes(view[n - _TAIL : n])
            else:
                tail = (tail + bytes(view[:n]))[-_TAIL:]
            size += n
    except OSError as e:
        raise ImageFileError(path, f"cannot read: {os_reason(e)}") from None
    return digest.hexdigest(), size, head, tail


def sniff(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def declared_size_problem(head: bytes, size: int) -> str | None:
    """Whether a BMP or WebP file is shorter than the size its first bytes declare."""
    if head[:2] == b"BM":
        declared = int.from_bytes(head[2:6], "little")
        if declared > size:
            return f"truncated file (BMP header says {declared} bytes, file has {size})"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared = int.from_bytes(head[4:8], "little") + 8  # RIFF size excludes 8 bytes
        if declared > size:
            return f"truncated file (WebP header says {declared} bytes, file has {size})"
    return None


def truncation_problem(img: Image.Image, f: BinaryIO, size: int, tail: bytes) -> str | None:
    """Why the file looks cut short, from its structure, size and tail; None if whole."""
    fmt = img.format
    if fmt in ("JPEG", "MPO"):
        # Phones append data after the JPEG (motion-photo videos, maker trailers), so when
        # the end marker is not near the end, look for it after the first scan starts.
        if _JPEG_EOI in tail:
            return None
        sos = _jpeg_first_scan(f)
        if sos is None or _find_after(f, sos, _JPEG_EOI) < 0:
            return "truncated file (no JPEG end marker)"
    elif fmt == "PNG":
        if _PNG_IEND in tail:
            return None
        if _find_after(f, 8, _PNG_IEND) < 0:
            return "truncated file (no PNG IEND chunk)"
    elif fmt == "BMP":
        for tile in img.tile:
            # Uncompressed rows are stride bytes each; some writers leave the size at 0.
            if tile.codec_name == "raw" and isinstance(tile.args, tuple) and len(tile.args) > 1:
                stride = tile.args[1]
                rows = tile.extents[3] - tile.extents[1] if tile.extents else 0
                if isinstance(stride, int) and tile.offset + stride * rows > size:
                    return "truncated file (BMP pixel data incomplete)"
    elif fmt == "TIFF":
        tags = getattr(img, "tag_v2", None)
        for offsets_tag, counts_tag in ((273, 279), (324, 325)):  # strips, tiles
            offsets = tags.get(offsets_tag) if tags is not None else None
            counts = tags.get(counts_tag) if tags is not None else None
            if isinstance(offsets, tuple) and isinstance(counts, tuple) and offsets:
                end = max(o + c for o, c in zip(offsets, counts, strict=False))
                if end > size:
                    return "truncated file (TIFF image data past end of file)"
    return None


def _jpeg_first_scan(f: BinaryIO) -> int | None:
    """Byte offset of the first SOS marker, walking the segments from SOI; None if broken.

    Before it, APP segments may hold an EXIF thumbnail with its own end marker; after
    it, the entropy-coded data escapes 0xFF bytes, so FF D9 can only be the real end.
    """
    f.seek(2)
    pos = 2
    while True:
        b = f.read(2)
        if len(b) < 2 or b[0] != 0xFF:
            return None
        marker = b[1]
        if marker == 0xFF:  # fill byte before a marker
            f.seek(pos + 1)
            pos += 1
            continue
        if marker == 0xDA:
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        length = f.read(2)
        if len(length) < 2:
            return None
        pos += 2 + int.from_bytes(length, "big")
        f.seek(pos)


def _find_after(f: BinaryIO, start: int, pattern: bytes) -> int:
    """Offset of the first `pattern` at or after `start` in `f`, or -1. Reads in chunks."""
    f.seek(start)
    pos = start
    carry = b""
    while chunk := f.read(_CHUNK):
        data = carry + chunk
        i = data.find(pattern)
        if i >= 0:
            return pos - len(carry) + i
        carry = data[-(len(pattern) - 1) :]
        pos += len(chunk)
    return -1

"""Tests for studio.core.imageinfo. All images are generated in tmp_path."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from studio.core.errors import ImageFileError, StudioError
from studio.core.imageinfo import (
    IMAGE_EXTENSIONS,
    ImageFileInfo,
    decode_image,
    iter_image_files,
    orient_points,
    read_image_info,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GRAY = (128, 128, 128)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Random RGB pixels: JPEGs of these have real entropy-coded data to cut short."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _marked(width: int = 60, height: int = 40) -> Image.Image:
    """Gray image with a 12x12 red block in the stored top-left corner."""
    img = Image.new("RGB", (width, height), GRAY)
    img.paste(RED, (0, 0, 12, 12))
    return img


def _red_centre(arr: np.ndarray) -> np.ndarray:
    """Centre (x, y) of the red pixels, in continuous pixel coordinates."""
    r, g, b = (arr[..., i].astype(int) for i in range(3))
    rows, cols = np.nonzero((r > 180) & (g < 90) & (b < 90))
    assert rows.size > 0, "red block not found"
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


def _reference(path: Path) -> np.ndarray:
    """What PIL's own exif_transpose shows, as RGB."""
    with Image.open(path) as img:
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


# --- orientation ----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.jpg"
    _marked().save(path, quality=95, exif=_exif(orientation))

    info = read_image_info(path)
    assert (info.raw_width, info.raw_height) == (60, 40)
    expected = (40, 60) if orientation >= 5 else (60, 40)
    assert (info.width, info.height) == expected
    assert info.orientation == orientation
    assert (info.format, info.mode) == ("JPEG", "RGB")

    arr = decode_image(path)
    assert arr.shape == (info.height, info.width, 3)
    assert arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, _reference(path))
    # The block's centre lands where orient_points sends the stored centre (6, 6).
    want = orient_points(np.array([[6.0, 6.0]]), orientation, 60, 40)[0]
    np.testing.assert_allclose(_red_centre(arr), want, atol=0.5)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_points_matches_exif_transpose_pixels(orientation: int) -> None:
    raw_w, raw_h = 7, 4
    # Each stored pixel holds a unique value, so every displayed pixel says where it was.
    stored = (np.arange(raw_w * raw_h, dtype=np.uint8) + 1).reshape(raw_h, raw_w)
    img = Image.fromarray(stored)
    img.getexif()[0x0112] = orientation
    shown = np.asarray(ImageOps.exif_transpose(img))

    for row, col in np.ndindex(*shown.shape):
        src = int(shown[row, col]) - 1
        src_row, src_col = divmod(src, raw_w)
        centre = np.array([[src_col + 0.5, src_row + 0.5]])
        mapped = orient_points(centre, orientation, raw_w, raw_h)
        np.testing.assert_allclose(mapped, [[col + 0.5, row + 0.5]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_points_full_image_box(orientation: int) -> None:
    corners = np.array([[0.0, 0.0], [7.0, 4.0]])
    out = orient_points(corners, orientation, 7, 4)
    disp = (4.0, 7.0) if orientation >= 5 else (7.0, 4.0)
    np.testing.assert_allclose(out.min(axis=0), [0.0, 0.0])
    np.testing.assert_allclose(out.max(axis=0), disp)
    assert orient_points(np.zeros((0, 2)), orientation, 7, 4).shape == (0, 2)


def test_orient_points_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        orient_points(np.zeros((1, 2)), 9, 7, 4)
    with pytest.raises(ValueError):
        orient_points(np.zeros((3,)), 1, 7, 4)


def test_invalid_orientation_tag_reads_as_1(tmp_path: Path) -> None:
    path = tmp_path / "bad_orientation.jpg"
    _marked().save(path, exif=_exif(9))
    info = read_image_info(path)
    assert (info.orientation, info.width, info.height) == (1, 60, 40)
    assert decode_image(path).shape == (40, 60, 3)


@pytest.mark.parametrize("orientation", [3, 6, 7])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("o.png", {}),
        ("o.tif", {}),
        ("o.tif", {"compression": "tiff_lzw"}),
        ("o.webp", {"lossless": True}),
    ],
)
def test_exif_orientation_in_other_formats(
    tmp_path: Path, name: str, kwargs: dict, orientation: int
) -> None:
    path = tmp_path / name
    _marked().save(path, exif=_exif(orientation), **kwargs)
    info = read_image_info(path)
    assert (info.raw_width, info.raw_height) == (60, 40)
    assert (info.orientation, info.width, info.height) == (
        (orientation, 40, 60) if orientation >= 5 else (orientation, 60, 40)
    )
    arr = decode_image(path)
    np.testing.assert_array_equal(arr, _reference(path))
    want = orient_points(np.array([[6.0, 6.0]]), orientation, 60, 40)[0]
    np.testing.assert_allclose(_red_centre(arr), want, atol=0.5)


def test_mpo_reads_as_jpeg_family(tmp_path: Path) -> None:
    # Multi-picture JPEGs (stereo cameras, some phones) carry several images; frame 0 shows.
    path = tmp_path / "stereo.jpg"
    _marked().save(path, "MPO", save_all=True, append_images=[_noise(60, 40)])
    info = read_image_info(path)
    assert (info.format, info.width, info.height) == ("MPO", 60, 40)
    np.testing.assert_array_equal(decode_image(path), _reference(path))


# --- pixel modes ----------------------------------------------------------------------


def test_16bit_png_is_stretched_to_full_range(tmp_path: Path) -> None:
    values = np.linspace(1000, 3000, 50 * 80).reshape(50, 80).astype(np.uint16)
    path = tmp_path / "depth.png"
    Image.fromarray(values).save(path)

    info = read_image_info(path)
    assert (info.width, info.height, info.mode) == (80, 50, "I;16")

    arr = decode_image(path)
    assert arr.shape == (50, 80, 3)
    assert arr.dtype == np.uint8
    assert arr.min() <= 2
    assert arr.max() >= 253
    # Brighter stored values stay brighter.
    assert arr[0, 0, 0] < arr[25, 40, 0] < arr[-1, -1, 0]


def test_grayscale_jpeg_decodes_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "gray.jpg"
    Image.new("L", (30, 20), 200).save(path)
    assert read_image_info(path).mode == "L"
    arr = decode_image(path)
    assert arr.shape == (20, 30, 3)
    assert arr.dtype == np.uint8
    assert abs(int(arr[10, 15, 1]) - 200) <= 2


def test_cmyk_jpeg_decodes_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    assert read_image_info(path).mode == "CMYK"
    arr = decode_image(path)
    assert arr.shape == (20, 30, 3)
    assert arr.dtype == np.uint8
    r, g, b = (int(v) for v in arr[10, 15])
    assert r > 230 and g < 25 and b < 25


def test_rgba_and_palette_png_decode_to_rgb(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (10, 8), (255, 0, 0, 0))  # fully transparent
    rgba.paste((0, 0, 255, 255), (0, 0, 5, 8))
    rgba.save(tmp_path / "alpha.png")
    arr = decode_image(tmp_path / "alpha.png")
    assert arr.shape == (8, 10, 3)
    assert tuple(arr[4, 2]) == BLUE
    assert tuple(arr[4, 8]) == (255, 255, 255)  # transparent shows as white

    _marked(20, 10).convert("P").save(tmp_path / "palette.png")
    arr = decode_image(tmp_path / "palette.png")
    assert arr.shape == (10, 20, 3)
    assert tuple(arr[2, 2]) == RED


@pytest.mark.parametrize(
    ("name", "kwargs", "fmt"),
    [
        ("a.bmp", {}, "BMP"),
        ("a.tif", {}, "TIFF"),
        ("a.tiff", {"compression": "tiff_lzw"}, "TIFF"),
        ("a.webp", {"lossless": True}, "WEBP"),
    ],
)
def test_bmp_tiff_webp(tmp_path: Path, name: str, kwargs: dict, fmt: str) -> None:
    img = _noise(33, 21)
    path = tmp_path / name
    img.save(path, **kwargs)
    info = read_image_info(path)
    assert (info.width, info.height, info.format, info.mode) == (33, 21, fmt, "RGB")
    assert info.file_size == path.stat().st_size
    np.testing.assert_array_equal(decode_image(path), np.asarray(img))


def test_huge_dimensions_read_without_bomb_error(tmp_path: Path) -> None:
    # A header-only 20000 x 20000 grayscale PNG: read_image_info never decodes pixels.
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    limit = Image.MAX_IMAGE_PIXELS

    info = read_image_info(path)
    assert (info.width, info.height) == (20000, 20000)
    assert Image.MAX_IMAGE_PIXELS == limit


# --- downsampling ---------------------------------------------------------------------


def test_max_side_downsamples_large_jpeg(tmp_path: Path) -> None:
    img = Image.new("RGB", (4000, 3000), RED)
    img.paste(BLUE, (2000, 0, 4000, 3000))  # stored left half red, right half blue
    path = tmp_path / "large.jpg"
    img.save(path, exif=_exif(6))  # shown rotated 90 degrees clockwise: 3000 x 4000

    arr = decode_image(path, max_side=500)
    assert arr.shape == (500, 375, 3)
    assert max(arr.shape[:2]) <= 500
    # Rotating clockwise puts the stored left half on top.
    assert tuple(int(v) > 200 for v in arr[60, 187]) == (True, False, False)
    assert tuple(int(v) > 200 for v in arr[440, 187]) == (False, False, True)

    small = tmp_path / "small.png"
    _marked(60, 40).save(small)
    assert decode_image(small, max_side=500).shape == (40, 60, 3)  # never enlarged
    assert decode_image(small, max_side=15).shape == (10, 15, 3)


# --- file names, checksums, listing ---------------------------------------------------


def test_unicode_file_names(tmp_path: Path) -> None:
    folder = tmp_path / "daten_ü"
    folder.mkdir()
    path = folder / "größe_日本.png"
    _marked(20, 10).save(path)

    assert list(iter_image_files(tmp_path)) == [path]
    info = read_image_info(path)
    assert (info.width, info.height, info.format) == (20, 10, "PNG")
    assert decode_image(path).shape == (10, 20, 3)


def test_checksum(tmp_path: Path) -> None:
    _noise(40, 30).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "copy.png").write_bytes(data)
    _noise(40, 30, seed=1).save(tmp_path / "other.png")

    a = read_image_info(tmp_path / "a.png")
    assert isinstance(a, ImageFileInfo)
    assert a.checksum == hashlib.blake2b(data, digest_size=16).hexdigest()
    assert a.file_size == len(data)
    assert read_image_info(tmp_path / "copy.png").checksum == a.checksum
    assert read_image_info(tmp_path / "other.png").checksum != a.checksum


def test_iter_image_files(tmp_path: Path) -> None:
    names = [
        "b.png",
        "A.JPG",
        "a.jpeg",
        "sub/c.Tiff",
        "sub/deeper/d.webp",
        "sub.bmp",
        "z/e.tif",
    ]
    ignored = ["notes.txt", "sub/readme.md", ".hidden/e.jpg", "sub/.cache/f.png", ".g.jpg"]
    for name in names + ignored:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    try:
        os.symlink(tmp_path, tmp_path / "sub" / "loop", target_is_directory=True)
    except (OSError, NotImplementedError):
        pass  # no symlinks on this system; the rest still applies

    found = list(iter_image_files(tmp_path))
    expected = sorted((tmp_path / n for n in names), key=lambda p: p.relative_to(tmp_path).parts)
    assert found == expected
    assert found == list(iter_image_files(tmp_path))  # deterministic
    assert all(p.suffix.lower() in IMAGE_EXTENSIONS for p in found)


def test_iter_image_files_on_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(StudioError):
        list(iter_image_files(tmp_path / "a.jpg"))


# --- broken files ---------------------------------------------------------------------


def _half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _make_broken(tmp_path: Path, case: str) -> Path:
    if case == "empty":
        path = tmp_path / "empty.jpg"
        path.write_bytes(b"")
    elif case == "text":
        path = tmp_path / "notes.jpg"
        path.write_text("this is not an image\n" * 20)
    elif case == "jpeg":
        path = tmp_path / "cut.jpg"
        _noise(200, 150).save(path, quality=90)
        _half(path)
    elif case == "jpeg_comment_eoi":
        # An end marker inside a header segment must not hide the truncation.
        path = tmp_path / "cut_comment.jpg"
        _noise(200, 150).save(path, quality=90, comment=b"odd \xff\xd9 comment")
        _half(path)
    elif case == "png":
        path = tmp_path / "cut.png"
        _noise(200, 150).save(path)
        _half(path)
    elif case == "bmp":
        path = tmp_path / "cut.bmp"
        _noise(200, 150).save(path)
        _half(path)
    elif case == "webp":
        path = tmp_path / "cut.webp"
        _noise(200, 150).save(path, lossless=True)
        _half(path)
    elif case == "tiff":
        path = tmp_path / "cut.tif"
        _noise(200, 150).save(path)
        _half(path)
    elif case == "gif":
        path = tmp_path / "anim.gif"
        Image.new("P", (10, 10)).save(path)
    elif case == "missing":
        path = tmp_path / "missing.png"
    else:
        raise AssertionError(case)
    return path


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("empty", "empty file (0 bytes)"),
        ("text", "not an image or unsupported format"),
        ("jpeg", "truncated file (no JPEG end marker)"),
        ("jpeg_comment_eoi", "truncated file (no JPEG end marker)"),
        ("png", "truncated file (no PNG IEND chunk)"),
        ("bmp", "truncated file (BMP header says"),
        ("webp", "truncated file (WebP header says"),
        ("tiff", "truncated file (TIFF image data past end of file)"),
        ("gif", "unsupported extension"),
        ("missing", "cannot read: "),
    ],
)
def test_read_image_info_errors(tmp_path: Path, case: str, reason: str) -> None:
    path = _make_broken(tmp_path, case)
    with pytest.raises(ImageFileError) as err:
        read_image_info(path)
    assert err.value.path == path
    assert err.value.reason.startswith(reason)
    assert path.name in str(err.value)


@pytest.mark.parametrize("case", ["empty", "text", "jpeg", "png", "missing"])
def test_decode_image_errors(tmp_path: Path, case: str) -> None:
    path = _make_broken(tmp_path, case)
    with pytest.raises(ImageFileError) as err:
        decode_image(path)
    assert path.name in str(err.value)
    assert err.value.reason


def test_jpeg_with_trailing_data_is_not_truncated(tmp_path: Path) -> None:
    # Phones append videos or maker trailers after the JPEG's end marker.
    path = tmp_path / "motion.jpg"
    _noise(64, 48).save(path)
    with path.open("ab") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(5000))
    info = read_image_info(path)
    assert (info.width, info.height) == (64, 48)
    assert decode_image(path).shape == (48, 64, 3)

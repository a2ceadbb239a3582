"""The one geometry module: boxes, areas, clipping, and polygon/mask conversions."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from studio.core.geometry import (
    bbox_of_mask,
    bbox_of_polygons,
    clip_bbox,
    clip_polygons,
    compressed_rle,
    inside,
    mask_from_polygons,
    mask_from_rle,
    polygon_area,
    polygons_from_rle,
    rasterized_polygon_area,
    rle_area,
    rle_bbox,
    rle_from_mask,
    rle_from_polygons,
)


def test_bbox_area_clip_inside() -> None:
    square = [0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]
    assert bbox_of_polygons([square, [10.0, 1.0, 11.0, 1.0, 11.0, 2.0]]) == (0, 0, 11, 4)
    assert polygon_area(square) == 16.0
    assert clip_bbox((-2, -2, 6, 6), 3, 3) == (0, 0, 3, 3)
    assert clip_polygons([[-1.0, 5.0, 2.0, 2.0, 9.0, -3.0]], 4, 4) == [[0, 4, 2, 2, 4, 0]]
    assert inside((0, 0, 4, 4), 4, 4) and not inside((0, 0, 4.1, 4), 4, 4)


def test_rle_round_trip_area_and_box() -> None:
    m = np.zeros((6, 8), np.uint8)
    m[1:4, 2:7] = 1
    rle = rle_from_mask(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [6, 8]
    assert np.array_equal(mask_from_rle(rle), m)
    assert rle_area(rle) == 15.0
    assert rle_bbox(rle) == (2.0, 1.0, 5.0, 3.0) == bbox_of_mask(m)
    assert bbox_of_mask(np.zeros((3, 3), np.uint8)) is None


def test_uncompressed_rle_becomes_compressed_with_str_counts() -> None:
    m = np.zeros((4, 5), np.uint8)
    m[1:3, 1:4] = 1
    counts = mask_utils.encode(np.asfortranarray(m))
    runs, pos, prev = [], 0, 0
    flat = m.flatten(order="F")
    for v in flat:  # uncompressed COCO RLE: alternating run lengths, starting with zeros
        if v != prev:
            runs.append(pos)
            pos, prev = 0, v
        pos += 1
    runs.append(pos)
    rle = compressed_rle({"size": [4, 5], "counts": runs})
    assert rle == {"size": [4, 5], "counts": counts["counts"].decode("ascii")}
    assert np.array_equal(mask_from_rle({"size": [4, 5], "counts": runs}), m)


def test_polygon_raster_matches_pycocotools_and_skips_degenerate_parts() -> None:
    square = [1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]
    expected = mask_utils.merge(mask_utils.frPyObjects([square], 8, 8))
    assert rasterized_polygon_area([square, [0.0, 0.0, 1.0, 1.0]], 8, 8) == pytest.approx(
        float(mask_utils.area(expected))
    )
    assert rle_from_polygons([[0.0, 0.0, 1.0, 1.0]], 8, 8) is None
    assert rasterized_polygon_area([[0.0, 0.0, 1.0, 1.0]], 8, 8) == 0.0
    assert mask_from_polygons([square], 8, 8).sum() == mask_utils.area(expected)


def test_polygons_from_rle_outlines_each_region() -> None:
    m = np.zeros((10, 10), np.uint8)
    m[1:4, 1:4] = 1
    m[7, 7] = 1  # a single pixel still becomes an outline
    parts = polygons_from_rle(rle_from_mask(m))
    assert len(parts) == 2
    assert all(len(p) >= 6 for p in parts)

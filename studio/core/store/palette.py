"""Class colours: as many distinguishable colours as there are classes (COCO has 80).

The first twenty are a hand-picked set (Sasha Trubetskoy's "20 distinct colours"), so
small projects look as they always did. Further colours are generated: each next one is
the candidate farthest, in CIELAB (where distance follows perceived difference), from
every colour already taken, among mid-lightness, clearly coloured candidates (greys
would vanish on photographs, very dark or pale colours on dark or light images).
"""

from __future__ import annotations

from functools import cache

import numpy as np

BASE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
)  # fmt: skip
GENERATED = 108  # colours beyond BASE before the sequence repeats (128 in all)
_L_RANGE, _MIN_CHROMA = (35.0, 88.0), 25.0


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB in 0..1 to CIELAB (D65)."""
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def _hex_to_rgb(colors: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colors])


@cache
def palette() -> tuple[str, ...]:
    """BASE then GENERATED more colours, each as far as possible from all before it."""
    steps = np.linspace(0.0, 1.0, 18)
    grid = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    lab = _srgb_to_lab(grid)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    keep = (lab[:, 0] >= _L_RANGE[0]) & (lab[:, 0] <= _L_RANGE[1]) & (chroma >= _MIN_CHROMA)
    grid, lab = grid[keep], lab[keep]
    taken = _srgb_to_lab(_hex_to_rgb(BASE))
    nearest = np.min(np.linalg.norm(lab[:, None, :] - taken[None, :, :], axis=2), axis=1)
    out = list(BASE)
    for _ in range(GENERATED):
        i = int(np.argmax(nearest))
        r, g, b = (round(v * 255) for v in grid[i])
        out.append(f"#{r:02x}{g:02x}{b:02x}")
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[i], axis=1))
    return tuple(out)


def class_color(index: int) -> str:
    """The colour for the `index`-th class (0-based), "#rrggbb"."""
    colors = palette()
    return colors[index % len(colors)]

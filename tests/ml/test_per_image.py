"""Per-image error counts for the browser: a hand-made case with known answers (an image
with predictions and no labels, one with labels and no predictions, a crowd label, a
prediction under the threshold), the error filters and sort keys, and agreement with the
report's own object lists on random data."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from studio.ml.analysis.errors import analyze_errors
from studio.ml.analysis.per_image import (
    ErrorFilter,
    ErrorIndex,
    ErrorSort,
    ImageErrors,
    filter_ids,
    per_image_arrays,
    per_image_errors,
    sort_ids,
)
from tests.ml.test_errors import A, B, _dets, _gt

UNSCORED = 99  # an image id the report never saw


@pytest.fixture
def counts() -> dict[int, ImageErrors]:
    gt = _gt(
        [
            (1, 1, A, 10, 10, 20, 20, False),  # found by a 0.9 prediction
            (2, 1, A, 100, 100, 20, 20, False),  # only a 0.2 prediction: missed at 0.3
            (3, 1, B, 150, 150, 40, 40, True),  # crowd: never missed
            (4, 3, A, 10, 10, 20, 20, False),  # image 3: labels, no predictions
            (5, 3, B, 60, 60, 20, 20, False),
            (6, 4, B, 30, 30, 30, 30, False),  # image 4: exactly right
        ],
        n_images=5,
    )
    dets = _dets(
        [
            (1, A, 10, 10, 20, 20, 0.9),  # TP
            (1, A, 50, 50, 10, 10, 0.4),  # FP (nothing there)
            (1, A, 100, 100, 20, 20, 0.2),  # under the threshold
            (1, B, 155, 155, 30, 30, 0.8),  # on the crowd label: neither TP nor FP
            (2, B, 0, 0, 10, 10, 0.5),  # image 2: predictions, no labels
            (2, A, 20, 20, 10, 10, 0.35),
            (4, B, 30, 30, 30, 30, 0.95),  # TP
            (5, A, 0, 0, 10, 10, 0.1),  # image 5: one prediction under the threshold
        ]
    )
    return per_image_errors(analyze_errors(gt, dets, iou=0.5, score=0.3, with_ap=False))


def test_hand_made_counts(counts):
    assert counts == {
        1: ImageErrors(tp=1, fp=1, fn=1, lowest_score=0.4, disagreement=0.5),
        2: ImageErrors(tp=0, fp=2, fn=0, lowest_score=0.35, disagreement=1.0),
        3: ImageErrors(tp=0, fp=0, fn=2, lowest_score=None, disagreement=1.0),
        4: ImageErrors(tp=1, fp=0, fn=0, lowest_score=0.95, disagreement=0.0),
        5: ImageErrors(tp=0, fp=0, fn=0, lowest_score=None, disagreement=0.0),
    }
    assert counts[1].text() == "TP 1 · FP 1 · miss 1"


def test_no_report_gives_no_counts():
    assert per_image_errors(None) == {}


@pytest.mark.parametrize(
    ("which", "want"),
    [
        (ErrorFilter.ANY, [5, UNSCORED, 1, 2, 3, 4]),
        (ErrorFilter.FALSE_POSITIVES, [1, 2]),
        (ErrorFilter.MISSED, [1, 3]),
        (ErrorFilter.ANY_ERROR, [1, 2, 3]),
        (ErrorFilter.CORRECT, [5, 4]),
    ],
)
def test_filters_keep_browser_order(counts, which, want):
    assert filter_ids([5, UNSCORED, 1, 2, 3, 4], counts, which) == want


@pytest.mark.parametrize(
    ("key", "want"),
    [
        (ErrorSort.FALSE_POSITIVES, [2, 1, 3, 4, 5, UNSCORED]),
        (ErrorSort.MISSED, [3, 1, 2, 4, 5, UNSCORED]),
        # no prediction at the threshold (3, 5) after every image with one
        (ErrorSort.LOWEST_CONFIDENCE, [2, 1, 4, 3, 5, UNSCORED]),
        (ErrorSort.DISAGREEMENT, [2, 3, 1, 4, 5, UNSCORED]),
    ],
)
def test_sort_keys_worst_first(counts, key, want):
    ids = [1, 2, 3, UNSCORED, 4, 5]
    assert sort_ids(ids, counts, key) == want
    assert sort_ids(ids, counts, key, descending=True) == want[::-1]


def test_agrees_with_the_reports_object_lists():
    """On random data: each image's counts are the report's TP / FP / FN objects of that
    image, and the lowest score is the minimum over its predictions at the threshold."""
    rng = np.random.default_rng(3)
    n_img, g, d = 40, 300, 600
    anns = [
        (i + 1, int(rng.integers(1, n_img + 1)), int(rng.integers(1, 3)),
         *rng.uniform(0, 150, 2), *rng.uniform(5, 50, 2), bool(rng.random() < 0.05))
        for i in range(g)
    ]  # fmt: skip
    gt = _gt(anns, n_img)
    src = rng.integers(0, g, d)
    rows = [
        (anns[s][1], anns[s][2] if rng.random() < 0.8 else 3 - anns[s][2],
         *(np.array(anns[s][3:7]) + rng.normal(0, 4, 4)), float(rng.random()))
        for s in src
    ]  # fmt: skip
    dets = _dets(rows)
    report = analyze_errors(gt, dets, iou=0.5, score=0.4, with_ap=False)
    counts = per_image_errors(report)
    for what in ("tp", "fp", "fn"):
        want = Counter(i for i, _ in report.items(what))
        assert {i: getattr(e, what) for i, e in counts.items() if getattr(e, what)} == want
    a = per_image_arrays(report)
    for i, low in zip(a.image_id, a.lowest_score, strict=True):
        s = dets.score[(dets.image_id == i) & (dets.score >= 0.4)]
        assert (np.isnan(low) and len(s) == 0) or low == s.min()


def test_index_attached_rebuilt_and_sparse_ids_agree(counts):
    """The index `per_image_errors` attaches, one rebuilt from a plain dict, and one
    over ids too sparse for the position table order ids alike."""
    ids = [1, 2, 3, UNSCORED, 4, 5]
    assert isinstance(counts.index, ErrorIndex)
    far = 10**12  # far beyond any position table: the searchsorted path
    sparse = {i * far: e for i, e in counts.items()}
    for key in ErrorSort:
        want = sort_ids(ids, counts.index, key)
        assert sort_ids(ids, dict(counts), key) == want
        assert sort_ids([i * far for i in ids], sparse, key) == [i * far for i in want]
    for which in ErrorFilter:
        want = filter_ids(ids, counts.index, which)
        assert filter_ids(ids, dict(counts), which) == want
        assert filter_ids([i * far for i in ids], sparse, which) == [i * far for i in want]

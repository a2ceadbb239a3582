"""Error counts per image, for the browser: true and false positives, missed labels, the
least confident prediction and how much the model and the labels disagree.

Torch- and Qt-free. Everything is read off an `ErrorReport` (so it follows the report's
score threshold and IoU, and pycocotools' matching: crowd labels are never missed, a
prediction matched to a crowd label or past the 100 best of its image and class is
neither TP nor FP). The images are those the report scored: every image with a label or
a prediction in it.

`filter_ids` and `sort_ids` (or an `ErrorIndex` built once per set of counts) apply the
browser's error filter and sort keys to an id list in browser order (what
`studio.core.browse.query_images` returns): numpy over arrays sorted by image id, a few
milliseconds for 100,000 ids.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from studio.ml.analysis.errors import ErrorReport, Outcome

LUT_SLACK = 1_000_000  # ids up to 4 x the counted images + this use a position table


class ErrorFilter(StrEnum):
    """Which images the browser's "Errors" filter keeps (images the report did not score
    pass only ANY)."""

    ANY = "any"
    FALSE_POSITIVES = "false_positives"  # fp > 0
    MISSED = "missed"  # fn > 0
    ANY_ERROR = "any_error"  # fp + fn > 0
    CORRECT = "correct"  # scored, fp == fn == 0


class ErrorSort(StrEnum):
    """The browser's error sort keys, each worst first (see `sort_ids`)."""

    FALSE_POSITIVES = "false_positives"  # most false positives first
    MISSED = "missed"  # most missed labels first
    LOWEST_CONFIDENCE = "lowest_confidence"  # least confident prediction first
    DISAGREEMENT = "disagreement"  # largest `ImageErrors.disagreement` first


@dataclass(frozen=True, slots=True)
class ImageErrors:
    """One image's errors at the report's score threshold and IoU.

    `lowest_score`: the lowest score among the image's predictions at or above the
    threshold (None when none is); scores are the model's, in [0, 1].
    `disagreement`: 1 - F1 of the image = (fp + fn) / (2 tp + fp + fn), 0 when both are
    empty. Chosen over e.g. (fp + fn) / max(labels, predictions) because it treats
    labels and predictions alike (swapping them gives the same value), stays in [0, 1],
    is 0 exactly when every prediction found a label and every label was found, 1 when
    nothing agrees, and is the per-image form of the F1 score users already read.
    """

    tp: int
    fp: int
    fn: int
    lowest_score: float | None
    disagreement: float

    @property
    def errors(self) -> int:
        return self.fp + self.fn

    def text(self) -> str:
        """The short line the browser shows: "TP 3 · FP 1 · miss 2"."""
        return f"TP {self.tp} · FP {self.fp} · miss {self.fn}"


@dataclass(frozen=True)
class PerImageArrays:
    """`per_image_arrays`' result: one entry per scored image, by ascending image id."""

    image_id: np.ndarray  # int64 [N]
    tp: np.ndarray  # int64 [N]
    fp: np.ndarray  # int64 [N]
    fn: np.ndarray  # int64 [N]
    lowest_score: np.ndarray  # float64 [N], NaN where no prediction reaches the threshold
    disagreement: np.ndarray  # float64 [N], see `ImageErrors.disagreement`


def per_image_arrays(report: ErrorReport) -> PerImageArrays:
    """Vectorised per-image counts of `report` (bincounts over the report's outcome
    arrays; no Python loop over images or objects)."""
    labels, dets = report.labels, report.dets
    ids = np.unique(np.concatenate([labels.image_id, dets.image_id]))
    n = len(ids)
    d_img = np.searchsorted(ids, dets.image_id)
    l_img = np.searchsorted(ids, labels.image_id)
    outcome = report.pred_outcome
    tp = np.bincount(d_img[outcome == Outcome.TP], minlength=n).astype(np.int64)
    fp = np.bincount(d_img[outcome == Outcome.FP], minlength=n).astype(np.int64)
    missed = (report.label_pred < 0) & ~labels.crowd
    fn = np.bincount(l_img[missed], minlength=n).astype(np.int64)
    lowest = np.full(n, np.inf)
    above = outcome != Outcome.BELOW
    np.minimum.at(lowest, d_img[above], dets.score[above])  # unbuffered: no sort needed
    lowest[np.isinf(lowest)] = np.nan
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        disagreement = np.where(denom > 0, (fp + fn) / np.maximum(denom, 1), 0.0)
    return PerImageArrays(ids, tp, fp, fn, lowest, disagreement)


class PerImageErrors(dict[int, ImageErrors]):
    """Image id -> `ImageErrors`, carrying its `ErrorIndex` (built from the arrays, off
    the GUI thread where the counts are made) so that the browser need not rebuild it."""

    index: ErrorIndex | None = None


def per_image_errors(report: ErrorReport | None) -> PerImageErrors:
    """Image id -> `ImageErrors` of every image `report` scored (empty without one)."""
    if report is None:
        return PerImageErrors()
    a = per_image_arrays(report)
    lowest = [None if math.isnan(s) else s for s in a.lowest_score.tolist()]
    out = PerImageErrors(
        (i, ImageErrors(tp, fp, fn, low, dis))
        for i, tp, fp, fn, low, dis in zip(
            a.image_id.tolist(), a.tp.tolist(), a.fp.tolist(), a.fn.tolist(), lowest,
            a.disagreement.tolist(), strict=True,
        )
    )  # fmt: skip
    out.index = ErrorIndex(a.image_id, a.fp, a.fn, a.lowest_score, a.disagreement)
    return out


class ErrorIndex:
    """Per-image counts as arrays sorted by image id, so that the browser's filter and
    sort over a long id list are a few numpy passes (100,000 ids: milliseconds), not a
    Python call per id. Build one per set of counts (`of`) and reuse it."""

    def __init__(
        self,
        image_id: np.ndarray,
        fp: np.ndarray,
        fn: np.ndarray,
        lowest_score: np.ndarray,
        disagreement: np.ndarray,
    ):
        """Arrays as in `PerImageArrays`; `image_id` ascending and unique."""
        n = len(image_id)
        self.image_id, self.fp, self.fn = image_id, fp, fn
        # Image ids are SQLite row ids, dense from 1: a position table indexed by id
        # finds 100,000 ids in about a millisecond (searchsorted: tens). Far sparser
        # ids (not seen in practice) fall back to searchsorted.
        top = int(image_id[-1]) + 1 if n else 0
        self._lut: np.ndarray | None = None
        if n and image_id[0] >= 0 and top <= 4 * n + LUT_SLACK:
            self._lut = np.full(top, -1, dtype=np.int64)
            self._lut[image_id] = np.arange(n)
        # Sort keys, smaller first: worst first for each key; no prediction at the
        # threshold (NaN -> +inf) after every image with one.
        self._keys = {
            ErrorSort.FALSE_POSITIVES: -fp,
            ErrorSort.MISSED: -fn,
            ErrorSort.LOWEST_CONFIDENCE: np.nan_to_num(lowest_score, nan=np.inf),
            ErrorSort.DISAGREEMENT: -disagreement,
        }

    @classmethod
    def of(cls, counts: Mapping[int, ImageErrors]) -> ErrorIndex:
        """The index of `counts`: the one `per_image_errors` attached, else built."""
        index = getattr(counts, "index", None)
        if isinstance(index, ErrorIndex):
            return index
        n = len(counts)
        ids = np.fromiter(counts.keys(), np.int64, n)
        order = np.argsort(ids)
        rows = list(counts.values())

        def col(get: Callable[[ImageErrors], float], dtype: type) -> np.ndarray:
            return np.fromiter(map(get, rows), dtype, n)[order]

        return cls(
            ids[order],
            col(lambda e: e.fp, np.int64),
            col(lambda e: e.fn, np.int64),
            col(lambda e: math.nan if e.lowest_score is None else e.lowest_score, np.float64),
            col(lambda e: e.disagreement, np.float64),
        )

    def __len__(self) -> int:
        return len(self.image_id)

    def passes(self, which: ErrorFilter) -> np.ndarray:
        """bool [N]: which counted images pass `which`."""
        errors = self.fp + self.fn
        return {
            ErrorFilter.ANY: np.ones(len(self), dtype=bool),
            ErrorFilter.FALSE_POSITIVES: self.fp > 0,
            ErrorFilter.MISSED: self.fn > 0,
            ErrorFilter.ANY_ERROR: errors > 0,
            ErrorFilter.CORRECT: errors == 0,
        }[ErrorFilter(which)]

    def _locate(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids as an array, their positions here, whether they are counted)."""
        a = np.fromiter(ids, np.int64, len(ids))
        if not len(self):
            return a, np.zeros(len(a), dtype=np.int64), np.zeros(len(a), dtype=bool)
        if self._lut is not None:
            inside = (a >= 0) & (a < len(self._lut))
            pos = np.where(inside, self._lut[np.where(inside, a, 0)], -1)
            return a, np.maximum(pos, 0), pos >= 0
        pos = np.minimum(np.searchsorted(self.image_id, a), len(self) - 1)
        return a, pos, self.image_id[pos] == a

    def filter(self, ids: Sequence[int], which: ErrorFilter) -> list[int]:
        """The ids of `ids` (order kept) whose counts pass `which`; every id for ANY."""
        if ErrorFilter(which) == ErrorFilter.ANY:
            return list(ids)
        a, pos, counted = self._locate(ids)
        return a[counted & self.passes(which)[pos]].tolist()

    def sort(self, ids: Sequence[int], key: ErrorSort, descending: bool = False) -> list[int]:
        """See `sort_ids`."""
        a, pos, counted = self._locate(ids)
        scored = a[counted]
        order = np.argsort(self._keys[ErrorSort(key)][pos[counted]], kind="stable")
        out = np.concatenate([scored[order], a[~counted]])
        return (out[::-1] if descending else out).tolist()


def filter_ids(
    ids: Sequence[int], counts: Mapping[int, ImageErrors] | ErrorIndex, which: ErrorFilter
) -> list[int]:
    """The ids of `ids` (order kept) whose counts pass `which`; every id for ANY (images
    without counts pass only ANY)."""
    index = counts if isinstance(counts, ErrorIndex) else ErrorIndex.of(counts)
    return index.filter(ids, which)


def sort_ids(
    ids: Sequence[int],
    counts: Mapping[int, ImageErrors] | ErrorIndex,
    key: ErrorSort,
    descending: bool = False,
) -> list[int]:
    """`ids` ordered by `key`, worst first: most false positives, most missed labels,
    lowest least-confident score (images with no prediction at the threshold after the
    others), largest disagreement. Ties keep the order of `ids`; images without counts
    come last. `descending` gives exactly the reverse order."""
    index = counts if isinstance(counts, ErrorIndex) else ErrorIndex.of(counts)
    return index.sort(ids, key, descending)

"""The predictions layer: a run's stored predictions on the shown image, drawn apart
from the labels (dashed outlines, a score tag), filtered live by a score threshold, and
optionally coloured by their outcome against the labels.

Nothing here runs a model: the predictions are rows already in the database (see
`studio.ml.analysis.stored_predictions`). Items for every stored prediction of the image
are made once per image; moving the score threshold only flips the visibility of the
items whose side of the threshold changed, so 500 predictions refilter in a few ms.
Matching is the Evaluation panel's (`prediction_matching`: pycocotools' rules, on mask
IoU when the predictions carry masks, else on box IoU) on this image alone, at the chosen
IoU: TP green, FP red, labels no prediction above the threshold found orange. The pairs
and their IoUs are computed once per image (and when its labels change); a new IoU
threshold only re-runs the greedy assignment, a new score threshold not even that.
Scene coordinates are image pixels as displayed; boxes are (x, y, w, h).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, QPixmap
from PySide6.QtWidgets import (
    QAbstractGraphicsShapeItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
)

from studio.core.errors import StudioError
from studio.core.kinds import awaiting_review
from studio.core.project import Project
from studio.core.records import AnnotationRecord, ImageRecord
from studio.ml.analysis.errors import Outcome
from studio.ml.analysis.mask_iou import IouType
from studio.ml.analysis.matching import image_pairs
from studio.ui.canvas.layers.base import SceneLayer
from studio.ui.canvas.layers.prediction_matching import PreparedImage, outcomes, prepare
from studio.ui.canvas.scene_items import (
    FALLBACK_COLOR,
    Z_SHAPES,
    TagItem,
    cosmetic_pen,
    polygons_path,
)

Z_PREDICTIONS = Z_SHAPES + 5  # over the labels, under selected labels and handles
TAG_LIMIT = 60  # from this many drawn predictions on, only the selected one is tagged
ERROR_COLORS = {"tp": "#2ecc40", "fp": "#ff4136", "missed": "#ff851b", "other": "#aaaaaa"}
DASH = Qt.PenStyle.DashLine


class _Pens:
    """Dashed pens (normal, selected) per colour, made once and shared."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool], Any] = {}

    def get(self, color: str, selected: bool = False) -> Any:
        key = (color, selected)
        pen = self._cache.get(key)
        if pen is None:
            c = QColor(color)
            if not c.isValid():
                c = QColor(FALLBACK_COLOR)
            pen = cosmetic_pen(c.lighter(130) if selected else c, 3.5 if selected else 2.0, DASH)
            self._cache[key] = pen
        return pen


def _make_item(row: dict[str, Any]) -> QAbstractGraphicsShapeItem:
    """A polygon prediction as a path, anything else (boxes, masks) by its box."""
    if row.get("polygons"):
        item: QAbstractGraphicsShapeItem = QGraphicsPathItem(polygons_path(row["polygons"]))
    else:
        x, y, w, h = row["bbox"]
        item = QGraphicsRectItem(QRectF(x, y, w, h))
    item.setZValue(Z_PREDICTIONS)
    return item


class PredictionLayer(SceneLayer):
    """The chosen run's predictions on the shown image. Set the run with `set_run`, the
    threshold with `set_score_threshold`, the IoU with `set_iou`, the colouring with
    `set_errors_shown`; call `reload` after new predictions were stored and
    `reload_labels` after the image's labels changed."""

    name = "predictions"
    z = Z_PREDICTIONS

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.score_threshold = 0.3
        self.iou = 0.5
        self.errors_shown = True
        self.project: Project | None = None
        self.image: ImageRecord | None = None
        self.rows: list[dict[str, Any]] = []  # stored predictions of the image
        self.labels: list[AnnotationRecord] = []
        self.items: list[QAbstractGraphicsShapeItem] = []
        self.shown = np.zeros(0, dtype=bool)  # per row: drawn now
        self.outcome = np.zeros(0, dtype=np.int8)  # per row: `Outcome` (ignoring score)
        self.label_score = np.zeros(0)  # per label: score of the TP that found it, or -1
        self.scores = np.zeros(0)  # per row
        self.covered = np.zeros(0, dtype=bool)  # per row: a label of its class is on it
        self._masks: list[tuple[int, Any]] | None = None  # decoded once per image
        self._prepared: PreparedImage | None = None  # pairs of rows x labels, any IoU
        self.dismissed: set[int] = set()  # prediction ids rejected in this session
        self.selected: int | None = None  # prediction id
        self.class_colors: dict[int, str] = {}
        self.class_names: dict[int, str] = {}
        self._tags: dict[int, TagItem] = {}  # row index -> its tag
        self._tag_on = np.zeros(0, dtype=bool)  # per row: its tag is shown
        self._colors: list[str] = []  # per row, while `errors_shown` and the classes hold
        self._missed_ids: list[int] = []
        self._missed_items: list[QGraphicsRectItem] = []
        self._mask_item = QGraphicsPixmapItem()
        self._mask_item.setZValue(Z_PREDICTIONS - 0.5)
        self._pens = _Pens()

    # --- the Layer hooks ---------------------------------------------------------------

    def attach(self, scene: QGraphicsScene) -> None:
        super().attach(scene)
        scene.addItem(self._mask_item)

    def show_image(self, image: ImageRecord, project: Project) -> None:
        self.project, self.image = project, image
        self.reload()

    def clear(self) -> None:
        self.image = None
        self._set_rows([], [])

    def _apply_visible(self) -> None:
        self._refilter(force=True)

    # --- settings ----------------------------------------------------------------------

    def set_run(self, run_id: int | None) -> None:
        """Show this run's predictions (None: none)."""
        if run_id != self.run_id:
            self.run_id = run_id
            self.dismissed.clear()
            self.reload()

    def set_score_threshold(self, score: float) -> None:
        """Draw the predictions scoring at least `score` (0..1); no re-inference."""
        self.score_threshold = float(score)
        self._refilter()

    def set_iou(self, iou: float) -> None:
        """Match predictions to labels at IoU >= `iou` (0..1]."""
        if iou != self.iou:
            self.iou = float(iou)
            self._match(pair_again=False)
            self._refilter(force=True)

    def set_errors_shown(self, on: bool) -> None:
        """Colour by outcome (TP / FP / missed) or by class."""
        self.errors_shown = on
        self._refilter(force=True)

    def set_classes(self, colors: dict[int, str], names: dict[int, str]) -> None:
        self.class_colors, self.class_names = dict(colors), dict(names)
        self._refilter(force=True)

    def dismiss(self, pred_ids: Iterable[int]) -> None:
        """Hide these predictions for the session (rejected in review)."""
        self.dismissed |= set(pred_ids)
        if self.selected in self.dismissed:
            self.selected = None
        self._refilter(force=True)

    def select(self, pred_id: int | None) -> None:
        """Highlight one prediction (and tag it whatever the density)."""
        self.selected = pred_id
        self._refilter(force=True)

    # --- reading -----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the shown image's predictions and labels again."""
        p, im = self.project, self.image
        if p is None or im is None or self.run_id is None:
            self._set_rows([], [])
            return
        if not self.class_colors:
            classes = p.classes()
            self.class_colors = {c.id: c.color for c in classes}
            self.class_names = {c.id: c.name for c in classes}
        self._set_rows(p.predictions(self.run_id, [im.id]), self._truth())

    def reload_labels(self) -> None:
        """The image's labels or status changed: match again (e.g. after accepting a
        prediction, or after the image's review was marked done). Without a run there
        is nothing to match: no reading (42 ms per edit on an image of 3,000 shapes)."""
        if self.project is not None and self.image is not None and self.run_id is not None:
            self.labels = self._truth()
            self._match()
            self._refilter(force=True)

    def _truth(self) -> list[AnnotationRecord]:
        """The shown image's labels, less the shapes pre-labelled on it while it waits
        for review: the model's own output would match itself as true positives."""
        p, im = self.project, self.image
        if p is None or im is None:
            return []
        try:
            status = p.image(im.id).status
        except StudioError:  # deleted: the canvas lets go of it next
            return []
        anns = p.annotations(image_ids=[im.id])
        return [a for a in anns if not awaiting_review(a.source, status)]

    def _set_rows(self, rows: list[dict[str, Any]], labels: list[AnnotationRecord]) -> None:
        scene = self.scene
        for item in [*self.items, *self._tags.values()]:
            if scene is not None:
                scene.removeItem(item)
        self.items, self._tags = [], {}
        self.rows, self.labels = rows, labels
        if self.selected is not None and all(r["id"] != self.selected for r in rows):
            self.selected = None
        for row in rows:
            item = _make_item(row)
            item.setVisible(False)
            if scene is not None:
                scene.addItem(item)
            self.items.append(item)
        self.shown = np.zeros(len(rows), dtype=bool)
        self.scores = np.array([r["score"] for r in rows], dtype=np.float64)
        self._masks = None
        self._match()
        self._refilter(force=True)

    def _match(self, pair_again: bool = True) -> None:
        """Outcome of each prediction at `iou` (as if every one counted) and, per label,
        the score of the TP that found it: a label is missed at a threshold above it.
        `pair_again`: rows or labels changed, so pair them again (rasterising masks); a new
        IoU alone reuses the pairs."""
        n, labs = len(self.rows), self.labels
        if not n:
            self._prepared = None
            self.outcome = np.zeros(0, dtype=np.int8)
            self.label_score = np.full(len(labs), -1.0)
            self.covered = np.zeros(0, dtype=bool)
            return
        if pair_again or self._prepared is None:
            h, w = (self.image.height, self.image.width) if self.image is not None else (0, 0)
            self._prepared = prepare(self.rows, labs, h, w)
        got = outcomes(self._prepared, self.iou)
        self.outcome, self.label_score = got.outcome, got.label_score
        # A prediction with a label of its class on the very same spot was accepted:
        # the label shows it (undo the acceptance and it comes back).
        self.covered = self._prepared.covered

    # --- drawing -----------------------------------------------------------------------

    def _wanted(self) -> np.ndarray:
        want = (self.scores >= self.score_threshold) & ~self.covered
        if self.dismissed:
            ids = np.array([r["id"] for r in self.rows], dtype=np.int64)
            want &= ~np.isin(ids, list(self.dismissed))
        return want & self.visible

    def _refilter(self, force: bool = False) -> None:
        """Show the items at or above the threshold; restyle all of them when `force`
        (colours changed), else touch only those whose visibility flipped."""
        want = self._wanted() if len(self.rows) else np.zeros(0, dtype=bool)
        if force:
            self._colors = [self._color(i) for i in range(len(self.rows))]
        flips = np.flatnonzero(want != self.shown) if not force else np.arange(len(want))
        for i in flips.tolist():
            if want[i]:
                self._style(i)
            self.items[i].setVisible(bool(want[i]))
        self.shown = want
        self._update_tags(force)
        self._update_missed(force)
        self._update_masks()

    def _color(self, i: int) -> str:
        if not self.errors_shown:
            return self.class_colors.get(self.rows[i]["class_id"], FALLBACK_COLOR)
        o = self.outcome[i]
        return ERROR_COLORS["tp" if o == Outcome.TP else "fp" if o == Outcome.FP else "other"]

    def color_of(self, i: int) -> str:
        """The outline colour of row `i`: its outcome's, or its class's."""
        return self._colors[i] if i < len(self._colors) else self._color(i)

    def _style(self, i: int) -> None:
        selected = self.rows[i]["id"] == self.selected
        item = self.items[i]
        item.setPen(self._pens.get(self.color_of(i), selected))
        item.setZValue(Z_PREDICTIONS + (0.5 if selected else 0.0))

    def _update_tags(self, force: bool) -> None:
        """Tag each drawn prediction with its class and score while there are few,
        else only the selected one; only tags whose state changed are touched."""
        ids = np.array([r["id"] for r in self.rows], dtype=np.int64)
        few = int(self.shown.sum()) < TAG_LIMIT
        on = self.shown & (few | (ids == (self.selected or -1)))
        was = self._tag_on if len(self._tag_on) == len(on) and not force else ~on
        for i in np.flatnonzero(on & ~was).tolist():
            self._tag(i).setVisible(True)
        for i in np.flatnonzero(~on & was).tolist():
            tag = self._tags.get(i)
            if tag is not None:
                tag.setVisible(False)
        self._tag_on = on

    def _tag(self, i: int) -> TagItem:
        tag = self._tags.get(i)
        if tag is None:
            tag = self._tags[i] = TagItem()
            tag.setZValue(Z_PREDICTIONS + 1)
            if self.scene is not None:
                self.scene.addItem(tag)
        row = self.rows[i]
        name = self.class_names.get(row["class_id"], f"class {row['class_id']}")
        x, y = row["bbox"][0], row["bbox"][1]
        tag.show_tag(f"{name} {row['score']:.2f}", QColor(self.color_of(i)), QPointF(x, y))
        return tag

    def missed_label_ids(self) -> list[int]:
        """Labels of the image no prediction at or above the threshold found (crowd
        labels are never missed)."""
        if not self.visible or not self.errors_shown or self.run_id is None:
            return []
        return [
            a.id
            for a, s in zip(self.labels, self.label_score.tolist(), strict=True)
            if not a.iscrowd and s < self.score_threshold
        ]

    def _update_missed(self, force: bool) -> None:
        missed = self.missed_label_ids() if self.rows else []
        if missed == self._missed_ids and not force:
            return
        self._missed_ids = missed
        scene = self.scene
        for item in self._missed_items:
            if scene is not None:
                scene.removeItem(item)
        self._missed_items = []
        by_id = {a.id: a for a in self.labels}
        pen = cosmetic_pen(QColor(ERROR_COLORS["missed"]), 3.0, Qt.PenStyle.DotLine)
        for ann_id in missed:
            x, y, w, h = by_id[ann_id].bbox
            item = QGraphicsRectItem(QRectF(x, y, w, h))
            item.setPen(pen)
            item.setZValue(Z_PREDICTIONS)
            if scene is not None:
                scene.addItem(item)
            self._missed_items.append(item)

    def _update_masks(self) -> None:
        """One translucent image of the shown mask predictions, in their colours."""
        has_masks = any(r.get("rle") for r in self.rows)
        if not has_masks or self.image is None or not self.shown.any():
            self._mask_item.setVisible(False)
            return
        if self._masks is None:
            from studio.core.geometry import mask_from_rle

            self._masks = [(i, mask_from_rle(r["rle"])) for i, r in enumerate(self.rows)
                           if r.get("rle")]  # fmt: skip
        h, w = self.image.height, self.image.width
        rgba = np.zeros((h, w, 4), dtype=np.uint8)
        for i, mask in self._masks:
            if self.shown[i] and mask.shape == (h, w):
                c = QColor(self.color_of(i))
                rgba[mask.astype(bool)] = (c.red(), c.green(), c.blue(), 70)
        qimg = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self._mask_item.setPixmap(QPixmap.fromImage(qimg))
        self._mask_item.setVisible(True)

    # --- queries -----------------------------------------------------------------------

    def visible_ids(self) -> list[int]:
        """Ids of the predictions drawn now, highest score first."""
        idx = np.flatnonzero(self.shown)
        idx = idx[np.argsort(-self.scores[idx], kind="stable")]
        return [self.rows[i]["id"] for i in idx.tolist()]

    def new_object_ids(self) -> list[int]:
        """The drawn predictions that would each add an object, highest score first: none
        overlapping a label of its class at the matching IoU (a TP, or a duplicate of
        one), nor a higher-scoring such prediction of its class."""
        prep, shown = self._prepared, self.visible_ids()
        if prep is None or not shown:
            return shown
        d, p = prep.dets, prep.pairs
        same = prep.labels.class_id[p.label] == d.class_id[p.pred]
        on_label = set(p.pred[same & (p.iou >= self.iou)].tolist())
        index = {r["id"]: i for i, r in enumerate(self.rows)}
        idx = np.array([index[i] for i in shown], dtype=np.int64)
        on = [int(i) in on_label for i in idx]
        pp = image_pairs(d.image_id[idx], d.box[idx], d.image_id[idx], d.box[idx])
        cls = d.class_id[idx]
        clash = (pp.pred != pp.label) & (cls[pp.pred] == cls[pp.label]) & (pp.iou >= self.iou)
        # Those on a label stand for it: a prediction on one of them is its duplicate.
        kept = {k for k in range(len(idx)) if on[k]}
        for k in range(len(idx)):  # highest score first: a rival kept earlier wins
            if not on[k] and kept.isdisjoint(pp.label[clash & (pp.pred == k)].tolist()):
                kept.add(k)
        return [self.rows[idx[k]]["id"] for k in sorted(kept) if not on[k]]

    def row(self, pred_id: int) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["id"] == pred_id), None)

    def outcome_of(self, pred_id: int) -> str:
        """ "tp", "fp" or "other" (crowd, excess) at the current IoU."""
        i = next(i for i, r in enumerate(self.rows) if r["id"] == pred_id)
        o = self.outcome[i]
        return "tp" if o == Outcome.TP else "fp" if o == Outcome.FP else "other"

    def iou_type(self) -> IouType:
        """What the matching measured on this image: masks (SEGM) when its predictions
        carry masks, else boxes (BBOX), as the Evaluation panel decides."""
        return self._prepared.iou_type if self._prepared is not None else IouType.BBOX

    def counts(self) -> dict[str, int]:
        """TP, FP and missed labels on this image at the threshold and IoU (accepted
        predictions, hidden under their label, still count)."""
        o = self.outcome[self.scores >= self.score_threshold]
        return {
            "tp": int((o == Outcome.TP).sum()),
            "fp": int((o == Outcome.FP).sum()),
            "fn": len(self.missed_label_ids()),
        }

    def prediction_at(self, x: float, y: float) -> int | None:
        """The smallest drawn prediction whose outline encloses (x, y) (image pixels)."""
        best, area = None, float("inf")
        for i in np.flatnonzero(self.shown).tolist():
            bx, by, bw, bh = self.rows[i]["bbox"]
            if bx <= x <= bx + bw and by <= y <= by + bh and bw * bh < area:
                best, area = self.rows[i]["id"], bw * bh
        return best

    def outline(self, pred_id: int) -> QPainterPath:
        """The drawn item's shape (for tests and screenshots)."""
        i = next(i for i, r in enumerate(self.rows) if r["id"] == pred_id)
        return self.items[i].shape()

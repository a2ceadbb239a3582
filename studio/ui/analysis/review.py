"""Review: a prediction accepted becomes a normal label; all through undoable commands.

Accepting a stored prediction adds it as an annotation with source "manual" (a person
has looked at it; the score is not kept): one `AddAnnotations` step per click, one for
"accept all above the threshold". Accepting a pre-labelled shape (an annotation with
source "predicted", see `studio prelabel`) replaces it by a manual copy, one step.
Rejecting a stored prediction only hides it for the session (it is the model's output,
kept for the statistics); rejecting a pre-labelled shape deletes it. No Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from studio.core.kinds import ShapeKind, Source
from studio.core.project import Project, make_annotation_row
from studio.core.records import AnnotationRecord
from studio.core.undo import commands as C
from studio.core.undo.stack import Command

if TYPE_CHECKING:
    from studio.core.store import Store


def label_row(prediction: dict[str, Any]) -> dict:
    """The annotation row (source manual) for a stored prediction row."""
    kind = prediction.get("kind") or ShapeKind.BOX
    if kind == ShapeKind.POLYGON and not prediction.get("polygons"):
        kind = ShapeKind.BOX
    return make_annotation_row(
        prediction["image_id"], prediction["class_id"], kind, bbox=tuple(prediction["bbox"]),
        polygons=prediction.get("polygons"), rle=prediction.get("rle"), source=Source.MANUAL,
    )  # fmt: skip


def accept_predictions(project: Project, predictions: Sequence[dict[str, Any]]) -> list[int]:
    """Add these predictions as labels, one undo step; returns the new annotation ids."""
    if not predictions:
        return []
    return project.add_annotations([label_row(r) for r in predictions])


class AcceptPrelabelled(Command):
    """Make pre-labelled shapes (source "predicted") normal labels: each is replaced by
    a manual copy of itself."""

    def __init__(self, records: Sequence[AnnotationRecord]):
        self.delete = C.DeleteAnnotations([a.id for a in records])
        self.add = C.AddAnnotations([_manual_copy(a) for a in records])
        self.text = "accept shape" if len(records) == 1 else f"accept {len(records)} shapes"

    @property
    def ids(self) -> list[int]:
        return self.add.ids

    def do(self, store: Store) -> None:
        self.delete.do(store)
        self.add.do(store)

    def undo(self, store: Store) -> None:
        self.add.undo(store)
        self.delete.undo(store)


def _manual_copy(a: AnnotationRecord) -> dict:
    return make_annotation_row(
        a.image_id, a.class_id, a.kind, bbox=a.bbox, polygons=a.polygons, rle=a.rle,
        source=Source.MANUAL, iscrowd=a.iscrowd,
    )  # fmt: skip


def reject_prelabelled(project: Project, ann_ids: Sequence[int]) -> list[int]:
    """Delete the pre-labelled shapes among `ann_ids` (one undo step); their ids."""
    ids = [a.id for a in project.annotations(ids=list(ann_ids)) if a.source == Source.PREDICTED]
    if ids:
        project.delete_annotations(ids)
    return ids


def accept_prelabelled(project: Project, ann_ids: Sequence[int]) -> list[int]:
    """Accept the pre-labelled shapes among `ann_ids` (others are left alone)."""
    records = [a for a in project.annotations(ids=list(ann_ids)) if a.source == Source.PREDICTED]
    if not records:
        return []
    cmd = AcceptPrelabelled(records)
    project.execute(cmd)
    return cmd.ids

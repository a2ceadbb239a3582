"""The fixed sets of values the project stores, each defined once.

They are `StrEnum`s: a member equals its string (`ShapeKind.BOX == "box"`), so values
read from the database, a JSON file or a message compare and serialise unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class ShapeKind(StrEnum):
    BOX = "box"
    POLYGON = "polygon"
    MASK = "mask"


class Source(StrEnum):
    """Where an annotation came from."""

    MANUAL = "manual"
    IMPORTED = "imported"
    PREDICTED = "predicted"


class ImageStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    NEEDS_REVIEW = "needs_review"


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class RunStatus(StrEnum):
    """A training run's life: queued -> running -> finished | stopped | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)


def awaiting_review(source: str, status: str) -> bool:
    """A shape a model pre-labelled on an image still waiting for its review: the model's
    own output, no ground truth for training, evaluation or the error overlay until the
    image is marked done."""
    return source == Source.PREDICTED and status == ImageStatus.NEEDS_REVIEW


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain string values of `enum`, in definition order (for messages and CHECKs)."""
    return tuple(m.value for m in enum)

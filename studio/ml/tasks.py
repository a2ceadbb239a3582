"""What a model learns to output: the one definition of the training tasks.

The lowest module of the ml layer: models, data, evaluation and everything above them
read the task from here. A `StrEnum`, so a task read from a config file, a checkpoint or
the database compares and serialises as its plain string.
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    DETECTION = "detection"  # boxes and labels
    INSTANCE_SEGMENTATION = "instance_segmentation"  # boxes, labels and a mask per object
    SEMANTIC_SEGMENTATION = "semantic_segmentation"  # one class label per pixel


TASKS: tuple[str, ...] = tuple(t.value for t in Task)

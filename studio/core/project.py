"""The project: the one API through which everything reads and writes a project.

A project is a folder::

    DIR/studio.db     SQLite database (images, classes, annotations, runs, metrics, ...)
    DIR/runs/         one folder per training run (config, checkpoints, frozen dataset)
    DIR/cache/        thumbnails and other things that can be rebuilt

`Project` is a thin facade over one repository per table (`studio.core.store`), which
own their SQL and emit the change events. Every public method runs its own short
transaction, so an edit is on disk when the method returns and a crash loses nothing
finished. Edits that a user makes go through `Project.execute` (or the helpers that
build commands) so that they can be undone. Code that needs the raw, non-undoable
writes (imports) uses `project.store`.
Coordinates are pixels of the image as displayed (after EXIF orientation), floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from studio.core.db import open_engine
from studio.core.errors import ProjectError, StudioError
from studio.core.events import ProjectEvents
from studio.core.kinds import Source
from studio.core.records import (
    SPLITS,
    STATUSES,
    AnnotationRecord,
    BBox,
    ClassRecord,
    ExportSnapshot,
    ImageRecord,
    RunRecord,
)
from studio.core.shapes import (
    attribute_columns,
    make_annotation_row,
    shape_changes,
    validate_bbox,
    validate_polygons,
)
from studio.core.store import Store
from studio.core.store.classes import PALETTE
from studio.core.store.folder import DB_NAME, ProjectFolder
from studio.core.store.runs import MetricRow
from studio.core.store.snapshot import read_snapshot, write_dataset_snapshot
from studio.core.store.summary import project_summary
from studio.core.undo import commands as C
from studio.core.undo.stack import Command, UndoStack

# Imported from here by the window and the canvas; they live beside their tables.
__all__ = [
    "DB_NAME",
    "PALETTE",
    "Project",
    "make_annotation_row",
    "validate_bbox",
    "validate_polygons",
]


class Project:
    """An open project. Not thread-safe for writes from several threads at once; the
    window writes from its GUI thread and reads from workers through `Project.open`
    copies or the read methods (SQLite WAL lets readers run beside the writer)."""

    def __init__(self, path: Path, engine: Engine):
        self.path = path
        self.folder = ProjectFolder(path)
        self.db_path = self.folder.db_path
        self.runs_dir = self.folder.runs_dir
        self.cache_dir = self.folder.cache_dir
        self.engine = engine
        self.events = ProjectEvents()
        self.store = Store.open(self.folder, engine, self.events)
        self.undo_stack = UndoStack(self.store)

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Project:
        """A new, empty project in `path` (created if missing)."""
        path = Path(path).expanduser().resolve()
        if (path / DB_NAME).exists():
            raise ProjectError(f"{path}: a project already exists here")
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path}: exists and is not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
            engine = open_engine(path / DB_NAME, create=True)
            return cls._with_folders(path, engine)
        except OSError as e:  # a read-only folder, a full disk
            raise ProjectError(f"{path}: cannot create the project: {e.strerror or e}") from e

    @classmethod
    def open(cls, path: Path | str) -> Project:
        """The project in folder `path` (or whose studio.db `path` is)."""
        path = Path(path).expanduser().resolve()
        if path.is_file() and path.name == DB_NAME:
            path = path.parent
        if not path.is_dir():
            raise ProjectError(f"{path}: no such project folder")
        engine = open_engine(path / DB_NAME, create=False)
        return cls._with_folders(path, engine)

    @classmethod
    def _with_folders(cls, path: Path, engine: Engine) -> Project:
        project = cls(path, engine)
        project.runs_dir.mkdir(exist_ok=True)
        project.cache_dir.mkdir(exist_ok=True)
        return project

    @classmethod
    def open_or_create(cls, path: Path | str) -> Project:
        p = Path(path).expanduser()
        return cls.open(p) if (p / DB_NAME).exists() else cls.create(p)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- paths --------------------------------------------------------------------------

    def stored_path(self, file: Path) -> str:
        """How an image path is stored: relative to the project folder (POSIX
        separators) when the file lies inside it, else absolute."""
        return self.folder.stored_path(file)

    def abs_path(self, stored: str) -> Path:
        return self.folder.abs_path(stored)

    # --- settings -----------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self.store.settings.get(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        self.store.settings.set(key, value)

    def delete_setting(self, key: str) -> None:
        self.store.settings.delete(key)

    # --- classes ------------------------------------------------------------------------

    def classes(self) -> list[ClassRecord]:
        return self.store.classes.list()

    def class_by_name(self, name: str) -> ClassRecord | None:
        return self.store.classes.by_name(name)

    def class_counts(self) -> dict[int, int]:
        """Annotations per class id."""
        return self.store.classes.annotation_counts()

    def add_class(self, name: str, color: str | None = None) -> int:
        """Add a class (undoable). Returns its id."""
        cmd = C.AddClass(name, color)
        self.execute(cmd)
        return cmd.class_id

    def ensure_classes(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of the named classes, creating the missing ones (not undoable: used by
        imports, which land as one unit)."""
        return self.store.classes.ensure(names)

    def rename_class(self, class_id: int, name: str) -> None:
        self.execute(C.SetClassFields(class_id, name=name))

    def recolor_class(self, class_id: int, color: str) -> None:
        self.execute(C.SetClassFields(class_id, color=color))

    def reorder_classes(self, ordered_ids: Sequence[int]) -> None:
        self.execute(C.ReorderClasses(list(ordered_ids)))

    def merge_classes(self, source_ids: Sequence[int], target_id: int) -> int:
        """Move every annotation of `source_ids` to `target_id` and delete the sources
        (undoable). Returns the number of annotations changed."""
        cmd = C.MergeClasses(list(source_ids), target_id)
        self.execute(cmd)
        return cmd.changed

    def delete_class(self, class_id: int) -> int:
        """Delete a class and its annotations (undoable). Returns annotations deleted."""
        cmd = C.DeleteClass(class_id)
        self.execute(cmd)
        return cmd.deleted_count

    # --- images -------------------------------------------------------------------------

    def images(
        self,
        split: str | None = None,
        status: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[ImageRecord]:
        """Images ordered by path."""
        return self.store.images.list(split, status, ids)

    def image(self, image_id: int) -> ImageRecord:
        return self.store.images.get(image_id)

    def image_ids(self) -> list[int]:
        return self.store.images.ids()

    def image_count(self) -> int:
        return self.store.images.count()

    def known_paths_and_checksums(self) -> tuple[dict[str, int], dict[str, int]]:
        """{stored path: id} and {checksum: id}, for imports to skip what is here."""
        return self.store.images.known_paths_and_checksums()

    def set_status(self, image_ids: Sequence[int], status: str) -> None:
        if status not in STATUSES:
            raise StudioError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        self.execute(C.SetImageField(list(image_ids), "status", status))

    def set_split(self, image_ids: Sequence[int], split: str) -> None:
        if split not in SPLITS:
            raise StudioError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self.execute(C.SetImageField(list(image_ids), "split", split))

    def delete_images(self, image_ids: Sequence[int]) -> None:
        """Remove images (and their annotations) from the project; files stay on disk."""
        self.execute(C.DeleteImages(list(image_ids)))

    # --- annotations --------------------------------------------------------------------

    def annotations(
        self, image_ids: Sequence[int] | None = None, ids: Sequence[int] | None = None
    ) -> list[AnnotationRecord]:
        return self.store.annotations.list(image_ids, ids)

    def annotation_count(self) -> int:
        return self.store.annotations.count()

    def add_annotation(
        self,
        image_id: int,
        class_id: int,
        kind: str,
        *,
        bbox: BBox | None = None,
        polygons: list[list[float]] | None = None,
        rle: dict | None = None,
        source: str = Source.MANUAL,
        score: float | None = None,
    ) -> int:
        """Add one shape (undoable); returns its id. Boxes need `bbox` (x, y, w, h);
        polygons need `polygons` (the box is derived); masks need `rle` and `bbox`."""
        row = make_annotation_row(image_id, class_id, kind, bbox, polygons, rle, source, score)
        return self.add_annotations([row])[0]

    def add_annotations(self, rows: list[dict]) -> list[int]:
        """Add several shapes as one undo step; rows as made by `make_annotation_row`."""
        cmd = C.AddAnnotations(rows)
        self.execute(cmd)
        return cmd.ids

    def update_annotation(
        self,
        ann_id: int,
        *,
        bbox: BBox | None = None,
        polygons: list[list[float]] | None = None,
        class_id: int | None = None,
        gesture: object | None = None,
    ) -> None:
        """Move, resize, reshape or re-class one shape (undoable). Successive calls with
        the same `gesture` token (one mouse drag) merge into one undo step."""
        self.update_annotations(
            {ann_id: {"bbox": bbox, "polygons": polygons, "class_id": class_id}}, gesture=gesture
        )

    def update_annotations(self, changes: dict[int, dict], gesture: object | None = None) -> None:
        """Several shape edits {id: {"bbox"?, "polygons"?, "class_id"?}} as one step."""
        new = {i: f for i, f in ((i, shape_changes(ch)) for i, ch in changes.items()) if f}
        if new:
            self.execute(C.UpdateAnnotations(new, gesture))

    def set_annotation_class(self, ann_ids: Sequence[int], class_id: int) -> None:
        self.update_annotations({i: {"class_id": class_id} for i in ann_ids})

    def set_attributes(self, ann_ids: Sequence[int], **fields: Any) -> None:
        """Set attributes of shapes as one undo step: occluded, truncated, difficult
        (bools), group_id (an int >= 0, or None for no group), notes (text; "" for none).
        Unnamed attributes stay as they are. Bad values raise `StudioError`, changing
        nothing."""
        if ann_ids:
            self.execute(C.SetAnnotationAttributes(list(ann_ids), attribute_columns(fields)))

    def delete_annotations(self, ann_ids: Sequence[int]) -> None:
        if ann_ids:
            self.execute(C.DeleteAnnotations(list(ann_ids)))

    # --- undo ---------------------------------------------------------------------------

    def execute(self, cmd: Command) -> None:
        """Run an undoable command (see `studio.core.undo.commands`)."""
        self.undo_stack.push(cmd)

    def undo(self) -> str | None:
        return self.undo_stack.undo()

    def redo(self) -> str | None:
        return self.undo_stack.redo()

    # --- info and snapshots -------------------------------------------------------------

    def info(self) -> dict:
        """Counts for `studio info --json`: one query per table, all indexed."""
        return project_summary(self.engine, self.path)

    def snapshot(self, split: str | None = None) -> ExportSnapshot:
        """Classes, images and annotations read in one transaction, for exporters and
        training snapshots. `split` limits images (and their annotations) to one split."""
        return read_snapshot(self.engine, self.folder, split)

    def write_coco_snapshot(self, out_json: Path, split: str | None = None) -> dict:
        """Write a run's dataset.json: COCO with database ids, file names as stored
        (relative to the project folder for images inside it, whose path is the
        "studio_root"), displayed-pixel coordinates, and each image's "studio_split"
        and "studio_status". The one writer of that file; returns the data written."""
        return write_dataset_snapshot(self.engine, self.folder, Path(out_json), split)

    # --- runs, metrics, predictions -----------------------------------------------------

    def create_run(self, name: str, model: str, task: str, config: dict) -> RunRecord:
        return self.store.runs.create(name, model, task, config)

    def run(self, run_id: int) -> RunRecord:
        return self.store.runs.get(run_id)

    def runs(self) -> list[RunRecord]:
        return self.store.runs.list()

    def update_run(
        self,
        run_id: int,
        *,
        status: str | None = None,
        epoch: int | None = None,
        best_metric: float | None = None,
        best_metric_name: str | None = None,
        error: str | None = None,
        config: dict | None = None,
    ) -> None:
        """Set the given fields of a run (None: unchanged; error="" clears it); an ending
        status stamps finished_at."""
        self.store.runs.update(
            run_id, config, status=status, epoch=epoch, best_metric=best_metric,
            best_metric_name=best_metric_name, error=error,
        )  # fmt: skip

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its metrics, predictions and folder."""
        self.store.runs.delete(run_id)

    def add_metrics(self, run_id: int, rows: Sequence[MetricRow]) -> None:
        """Bulk-insert (kind "iter"|"epoch", step, epoch, name, value) rows."""
        self.store.runs.add_metrics(run_id, rows)

    def metrics(self, run_id: int, kind: str | None = None) -> list[MetricRow]:
        return self.store.runs.metrics(run_id, kind)

    def replace_predictions(self, run_id: int, rows: Sequence[dict]) -> int:
        """Replace a run's stored predictions. Rows: image_id, class_id, kind, bbox,
        polygons (optional), rle (optional), score."""
        return self.store.predictions.replace(run_id, rows)

    def predictions(self, run_id: int, image_ids: Sequence[int] | None = None) -> list[dict]:
        return self.store.predictions.list(run_id, image_ids)

    def set_current_model(self, run_id: int | None) -> None:
        self.store.runs.set_current_model(run_id)

    def current_model(self) -> int | None:
        return self.store.runs.current_model()

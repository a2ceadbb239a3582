"""The project: the one API through which everything reads and writes a project.

A project is a folder::

    DIR/studio.db     SQLite database (images, classes, annotations, runs, metrics, ...)
    DIR/runs/         one folder per training run (config, checkpoints, frozen dataset)
    DIR/cache/        thumbnails and other things that can be rebuilt

Every public method runs its own short transaction, so an edit is on disk when the
method returns and a crash loses nothing finished. Edits that a user makes go through
`Project.execute` (or the helpers that build commands) so that they can be undone;
the `_`-prefixed methods are the raw, non-undoable writes the commands use.
Coordinates are pixels of the image as displayed (after EXIF orientation), floats.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from studio.core import schema as S
from studio.core.db import open_engine
from studio.core.errors import ProjectError, StudioError
from studio.core.events import ProjectEvents
from studio.core.geometry import bbox_of_polygons
from studio.core.records import (
    KINDS,
    SOURCES,
    SPLITS,
    STATUSES,
    AnnotationRecord,
    BBox,
    ClassRecord,
    ExportSnapshot,
    ImageRecord,
    RunRecord,
)
from studio.core.undo.commands import Command, UndoStack

DB_NAME = "studio.db"

# Distinct, readable on dark and light images; new classes cycle through them.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000",
    "#aaffc3", "#808000", "#ffd8b1", "#000075", "#a9a9a9", "#ffe119",
)  # fmt: skip

_ANN_COLS = (
    S.Annotation.id, S.Annotation.image_id, S.Annotation.class_id, S.Annotation.kind,
    S.Annotation.x, S.Annotation.y, S.Annotation.w, S.Annotation.h, S.Annotation.polygons,
    S.Annotation.rle, S.Annotation.iscrowd, S.Annotation.source, S.Annotation.score,
)  # fmt: skip
_IMG_COLS = (
    S.Image.id, S.Image.path, S.Image.width, S.Image.height, S.Image.orientation,
    S.Image.checksum, S.Image.file_size, S.Image.status, S.Image.split,
)  # fmt: skip


class Project:
    """An open project. Not thread-safe for writes from several threads at once; the
    window writes from its GUI thread and reads from workers through `Project.open`
    copies or the read methods (SQLite WAL lets readers run beside the writer)."""

    def __init__(self, path: Path, engine: Engine):
        self.path = path
        self.db_path = path / DB_NAME
        self.runs_dir = path / "runs"
        self.cache_dir = path / "cache"
        self.engine = engine
        self.events = ProjectEvents()
        self.undo_stack = UndoStack(self)

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Project:
        path = Path(path).expanduser().resolve()
        if (path / DB_NAME).exists():
            raise ProjectError(f"{path}: a project already exists here")
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{path}: exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
        engine = open_engine(path / DB_NAME, create=True)
        (path / "runs").mkdir(exist_ok=True)
        (path / "cache").mkdir(exist_ok=True)
        return cls(path, engine)

    @classmethod
    def open(cls, path: Path | str) -> Project:
        path = Path(path).expanduser().resolve()
        if path.is_file() and path.name == DB_NAME:
            path = path.parent
        if not path.is_dir():
            raise ProjectError(f"{path}: no such project folder")
        engine = open_engine(path / DB_NAME, create=False)
        (path / "runs").mkdir(exist_ok=True)
        (path / "cache").mkdir(exist_ok=True)
        return cls(path, engine)

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
        file = Path(os.path.abspath(file))
        for candidate in (file, Path(os.path.realpath(file))):
            try:
                return candidate.relative_to(self.path).as_posix()
            except ValueError:
                pass
        return str(file)

    def abs_path(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.path / p

    # --- settings -----------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as conn:
            row = conn.execute(select(S.Setting.value).where(S.Setting.key == key)).first()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(S.Setting).values(key=key, value=json.dumps(value))
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def delete_setting(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(S.Setting).where(S.Setting.key == key))

    # --- classes ------------------------------------------------------------------------

    def classes(self) -> list[ClassRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    S.LabelClass.id, S.LabelClass.name, S.LabelClass.color, S.LabelClass.position
                ).order_by(S.LabelClass.position, S.LabelClass.id)
            ).all()
        return [ClassRecord(*r) for r in rows]

    def class_by_name(self, name: str) -> ClassRecord | None:
        return next((c for c in self.classes() if c.name == name), None)

    def class_counts(self) -> dict[int, int]:
        """Annotations per class id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.Annotation.class_id, func.count()).group_by(S.Annotation.class_id)
            ).all()
        return dict(rows)

    def add_class(self, name: str, color: str | None = None) -> int:
        """Add a class (undoable). Returns its id."""
        from studio.core.undo.commands import AddClass

        cmd = AddClass(name, color)
        self.execute(cmd)
        return cmd.class_id

    def ensure_classes(self, names: Iterable[str]) -> dict[str, int]:
        """Ids of the named classes, creating the missing ones (not undoable: used by
        imports, which land as one unit)."""
        existing = {c.name: c.id for c in self.classes()}
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            with self.engine.begin() as conn:
                self._insert_classes(conn, missing)
            existing = {c.name: c.id for c in self.classes()}
            self.events.classes_changed.emit()
        return existing

    def _insert_classes(self, conn, names: Sequence[str]) -> None:
        n = conn.execute(select(func.count()).select_from(S.LabelClass)).scalar_one()
        pos = conn.execute(select(func.max(S.LabelClass.position))).scalar() or 0
        conn.execute(
            insert(S.LabelClass),
            [
                {"name": nm, "color": PALETTE[(n + i) % len(PALETTE)], "position": pos + 1 + i}
                for i, nm in enumerate(names)
            ],
        )

    def rename_class(self, class_id: int, name: str) -> None:
        from studio.core.undo.commands import SetClassFields

        self.execute(SetClassFields(class_id, name=name))

    def recolor_class(self, class_id: int, color: str) -> None:
        from studio.core.undo.commands import SetClassFields

        self.execute(SetClassFields(class_id, color=color))

    def reorder_classes(self, ordered_ids: Sequence[int]) -> None:
        from studio.core.undo.commands import ReorderClasses

        self.execute(ReorderClasses(list(ordered_ids)))

    def merge_classes(self, source_ids: Sequence[int], target_id: int) -> int:
        """Move every annotation of `source_ids` to `target_id` and delete the sources
        (undoable). Returns the number of annotations changed."""
        from studio.core.undo.commands import MergeClasses

        cmd = MergeClasses(list(source_ids), target_id)
        self.execute(cmd)
        return cmd.changed

    def delete_class(self, class_id: int) -> int:
        """Delete a class and its annotations (undoable). Returns annotations deleted."""
        from studio.core.undo.commands import DeleteClass

        cmd = DeleteClass(class_id)
        self.execute(cmd)
        return cmd.deleted

    # --- images -------------------------------------------------------------------------

    def _image_record(self, row: Sequence) -> ImageRecord:
        return ImageRecord(
            id=row[0], path=row[1], abs_path=self.abs_path(row[1]), width=row[2],
            height=row[3], orientation=row[4], checksum=row[5], file_size=row[6],
            status=row[7], split=row[8],
        )  # fmt: skip

    def images(
        self,
        split: str | None = None,
        status: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[ImageRecord]:
        """Images ordered by path."""
        q = select(*_IMG_COLS).order_by(S.Image.path)
        if split is not None:
            q = q.where(S.Image.split == split)
        if status is not None:
            q = q.where(S.Image.status == status)
        if ids is not None:
            q = q.where(S.Image.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [self._image_record(r) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_IMG_COLS).where(S.Image.id == image_id)).first()
        if row is None:
            raise StudioError(f"image {image_id} is not in the project")
        return self._image_record(row)

    def image_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(S.Image.id).order_by(S.Image.path)).scalars())

    def image_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(S.Image)).scalar_one()

    def known_paths_and_checksums(self) -> tuple[dict[str, int], dict[str, int]]:
        """{stored path: id} and {checksum: id}, for imports to skip what is here."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.Image.id, S.Image.path, S.Image.checksum)).all()
        return {r[1]: r[0] for r in rows}, {r[2]: r[0] for r in rows}

    def set_status(self, image_ids: Sequence[int], status: str) -> None:
        from studio.core.undo.commands import SetImageField

        if status not in STATUSES:
            raise StudioError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        self.execute(SetImageField(list(image_ids), "status", status))

    def set_split(self, image_ids: Sequence[int], split: str) -> None:
        from studio.core.undo.commands import SetImageField

        if split not in SPLITS:
            raise StudioError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        self.execute(SetImageField(list(image_ids), "split", split))

    def delete_images(self, image_ids: Sequence[int]) -> None:
        """Remove images (and their annotations) from the project; files stay on disk."""
        from studio.core.undo.commands import DeleteImages

        self.execute(DeleteImages(list(image_ids)))

    # --- annotations --------------------------------------------------------------------

    @staticmethod
    def _ann_record(r: Sequence) -> AnnotationRecord:
        return AnnotationRecord(
            id=r[0], image_id=r[1], class_id=r[2], kind=r[3], bbox=(r[4], r[5], r[6], r[7]),
            polygons=json.loads(r[8]) if r[8] else None, rle=json.loads(r[9]) if r[9] else None,
            iscrowd=bool(r[10]), source=r[11], score=r[12],
        )  # fmt: skip

    def annotations(
        self, image_ids: Sequence[int] | None = None, ids: Sequence[int] | None = None
    ) -> list[AnnotationRecord]:
        q = select(*_ANN_COLS).order_by(S.Annotation.image_id, S.Annotation.id)
        if image_ids is not None:
            q = q.where(S.Annotation.image_id.in_(list(image_ids)))
        if ids is not None:
            q = q.where(S.Annotation.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [self._ann_record(r) for r in rows]

    def annotation_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(S.Annotation)).scalar_one()

    def add_annotation(
        self,
        image_id: int,
        class_id: int,
        kind: str,
        *,
        bbox: BBox | None = None,
        polygons: list[list[float]] | None = None,
        rle: dict | None = None,
        source: str = "manual",
        score: float | None = None,
    ) -> int:
        """Add one shape (undoable); returns its id. Boxes need `bbox` (x, y, w, h);
        polygons need `polygons` (the box is derived); masks need `rle` and `bbox`."""
        from studio.core.undo.commands import AddAnnotations

        row = make_annotation_row(image_id, class_id, kind, bbox, polygons, rle, source, score)
        cmd = AddAnnotations([row])
        self.execute(cmd)
        return cmd.ids[0]

    def add_annotations(self, rows: list[dict]) -> list[int]:
        """Add several shapes as one undo step; rows as made by `make_annotation_row`."""
        from studio.core.undo.commands import AddAnnotations

        cmd = AddAnnotations(rows)
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
        from studio.core.undo.commands import UpdateAnnotations

        new: dict[int, dict] = {}
        for ann_id, ch in changes.items():
            fields: dict[str, Any] = {}
            if ch.get("polygons") is not None:
                polys = [list(map(float, p)) for p in ch["polygons"]]
                validate_polygons(polys)
                fields["polygons"] = json.dumps(polys)
                fields.update(zip("xywh", bbox_of_polygons(polys), strict=True))
            elif ch.get("bbox") is not None:
                validate_bbox(ch["bbox"])
                fields.update(zip("xywh", map(float, ch["bbox"]), strict=True))
            if ch.get("class_id") is not None:
                fields["class_id"] = int(ch["class_id"])
            if fields:
                new[ann_id] = fields
        if new:
            self.execute(UpdateAnnotations(new, gesture))

    def set_annotation_class(self, ann_ids: Sequence[int], class_id: int) -> None:
        self.update_annotations({i: {"class_id": class_id} for i in ann_ids})

    def delete_annotations(self, ann_ids: Sequence[int]) -> None:
        from studio.core.undo.commands import DeleteAnnotations

        if ann_ids:
            self.execute(DeleteAnnotations(list(ann_ids)))

    # --- undo ---------------------------------------------------------------------------

    def execute(self, cmd: Command) -> None:
        self.undo_stack.push(cmd)

    def undo(self) -> str | None:
        return self.undo_stack.undo()

    def redo(self) -> str | None:
        return self.undo_stack.redo()

    # --- raw writes used by commands and imports (no undo) -------------------------------

    def _insert_annotation_rows(self, rows: list[dict]) -> list[int]:
        """Insert rows (dicts of Annotation columns, with or without "id") in one
        transaction; returns their ids."""
        ids: list[int] = []
        with self.engine.begin() as conn:
            for row in rows:
                res = conn.execute(insert(S.Annotation).values(**row))
                ids.append(row.get("id") or res.inserted_primary_key[0])
        self.events.annotations_changed.emit(sorted({r["image_id"] for r in rows}))
        return ids

    def _annotation_rows(self, ann_ids: Sequence[int]) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.Annotation.__table__).where(S.Annotation.id.in_(list(ann_ids)))
            ).mappings()
            return [dict(r) for r in rows]

    def _delete_annotation_rows(self, ann_ids: Sequence[int]) -> list[dict]:
        rows = self._annotation_rows(ann_ids)
        with self.engine.begin() as conn:
            conn.execute(delete(S.Annotation).where(S.Annotation.id.in_(list(ann_ids))))
        self.events.annotations_changed.emit(sorted({r["image_id"] for r in rows}))
        return rows

    def _update_annotation_rows(self, changes: dict[int, dict]) -> None:
        now = S.utcnow()
        with self.engine.begin() as conn:
            for ann_id, fields in changes.items():
                conn.execute(
                    update(S.Annotation)
                    .where(S.Annotation.id == ann_id)
                    .values(**fields, updated_at=now)
                )
            image_ids = conn.execute(
                select(S.Annotation.image_id).where(S.Annotation.id.in_(list(changes)))
            ).scalars()
            image_ids = sorted(set(image_ids))
        self.events.annotations_changed.emit(image_ids)

    # --- info ---------------------------------------------------------------------------

    def info(self) -> dict:
        """Counts for `studio info --json`: one query per table, all indexed."""
        with self.engine.connect() as conn:
            n_images = conn.execute(select(func.count()).select_from(S.Image)).scalar_one()
            n_ann = conn.execute(select(func.count()).select_from(S.Annotation)).scalar_one()
            per_class = dict(
                conn.execute(
                    select(S.LabelClass.name, func.count(S.Annotation.id))
                    .select_from(S.LabelClass)
                    .outerjoin(S.Annotation, S.Annotation.class_id == S.LabelClass.id)
                    .group_by(S.LabelClass.id)
                    .order_by(S.LabelClass.position, S.LabelClass.id)
                ).all()
            )
            kinds = dict(
                conn.execute(
                    select(S.Annotation.kind, func.count()).group_by(S.Annotation.kind)
                ).all()
            )
            splits = dict(
                conn.execute(select(S.Image.split, func.count()).group_by(S.Image.split)).all()
            )
            statuses = dict(
                conn.execute(select(S.Image.status, func.count()).group_by(S.Image.status)).all()
            )
            n_labelled = conn.execute(
                select(func.count(func.distinct(S.Annotation.image_id)))
            ).scalar_one()
            n_runs = conn.execute(select(func.count()).select_from(S.Run)).scalar_one()
        return {
            "project": str(self.path),
            "images": n_images,
            "labelled_images": n_labelled,
            "annotations": n_ann,
            "classes": per_class,
            "kinds": {k: kinds.get(k, 0) for k in KINDS},
            "splits": {s: splits.get(s, 0) for s in SPLITS},
            "statuses": {s: statuses.get(s, 0) for s in STATUSES},
            "runs": n_runs,
        }

    # --- export snapshot ----------------------------------------------------------------

    def snapshot(self, split: str | None = None) -> ExportSnapshot:
        """Classes, images and annotations read in one transaction, for exporters and
        training snapshots. `split` limits images (and their annotations) to one split."""
        with self.engine.connect() as conn, conn.begin():
            classes = [
                ClassRecord(*r)
                for r in conn.execute(
                    select(
                        S.LabelClass.id,
                        S.LabelClass.name,
                        S.LabelClass.color,
                        S.LabelClass.position,
                    ).order_by(S.LabelClass.position, S.LabelClass.id)
                )
            ]
            iq = select(*_IMG_COLS).order_by(S.Image.path)
            aq = select(*_ANN_COLS).order_by(S.Annotation.image_id, S.Annotation.id)
            if split is not None:
                iq = iq.where(S.Image.split == split)
                aq = aq.join(S.Image, S.Image.id == S.Annotation.image_id).where(
                    S.Image.split == split
                )
            images = [self._image_record(r) for r in conn.execute(iq)]
            anns = [self._ann_record(r) for r in conn.execute(aq)]
        return ExportSnapshot(
            project_dir=self.path, classes=classes, images=images, annotations=anns
        )

    def write_coco_snapshot(self, out_json: Path, split: str | None = None) -> dict:
        """Write a COCO file that training reads: database ids, ABSOLUTE file names,
        displayed-pixel coordinates, and each image's split as "studio_split"."""
        from studio.core.formats.coco import coco_dict

        snap = self.snapshot(split)
        data = coco_dict(snap, absolute_paths=True)
        split_of = {im.id: im.split for im in snap.images}
        for im in data["images"]:
            im["studio_split"] = split_of[im["id"]]
        tmp = Path(out_json).with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, out_json)
        return data

    # --- runs ---------------------------------------------------------------------------

    def _run_record(self, r: S.Run) -> RunRecord:
        return RunRecord(
            id=r.id, name=r.name, model=r.model, task=r.task, status=r.status, epoch=r.epoch,
            best_metric=r.best_metric, best_metric_name=r.best_metric_name,
            config=json.loads(r.config or "{}"), created_at=r.created_at,
            finished_at=r.finished_at, error=r.error, dir=self.abs_path(r.dir),
        )  # fmt: skip

    def create_run(self, name: str, model: str, task: str, config: dict) -> RunRecord:
        from sqlalchemy.orm import Session

        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:60] or "run"
        with Session(self.engine) as s, s.begin():
            run = S.Run(name=name, model=model, task=task, status="queued",
                        config=json.dumps(config), dir="")  # fmt: skip
            s.add(run)
            s.flush()
            run_id = run.id
            run_dir = self.runs_dir / f"{run_id:04d}-{safe}"
            run.dir = self.stored_path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.events.runs_changed.emit(None)
        return self.run(run_id)

    def run(self, run_id: int) -> RunRecord:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            r = s.get(S.Run, run_id)
            if r is None:
                raise StudioError(f"run {run_id} does not exist in {self.path}")
            return self._run_record(r)

    def runs(self) -> list[RunRecord]:
        from sqlalchemy.orm import Session

        with Session(self.engine) as s:
            return [self._run_record(r) for r in s.scalars(select(S.Run).order_by(S.Run.id))]

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
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
            if status in ("finished", "stopped", "failed"):
                values["finished_at"] = S.utcnow()
        for key, val in (("epoch", epoch), ("best_metric", best_metric),
                         ("best_metric_name", best_metric_name), ("error", error)):  # fmt: skip
            if val is not None:
                values[key] = val
        if config is not None:
            values["config"] = json.dumps(config)
        if values:
            with self.engine.begin() as conn:
                conn.execute(update(S.Run).where(S.Run.id == run_id).values(**values))
            self.events.runs_changed.emit(run_id)

    def delete_run(self, run_id: int) -> None:
        """Delete a run with its metrics, predictions and folder."""
        run = self.run(run_id)
        with self.engine.begin() as conn:
            conn.execute(delete(S.Run).where(S.Run.id == run_id))
        if self.get_setting("current_model") == run_id:
            self.set_setting("current_model", None)
        if run.dir.is_dir() and run.dir.resolve().is_relative_to(self.runs_dir.resolve()):
            shutil.rmtree(run.dir, ignore_errors=True)
        self.events.runs_changed.emit(None)

    def add_metrics(self, run_id: int, rows: Sequence[tuple[str, int, int, str, float]]) -> None:
        """Bulk-insert (kind "iter"|"epoch", step, epoch, name, value) rows."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(S.Metric),
                [{"run_id": run_id, "kind": k, "step": st, "epoch": ep, "name": n, "value": float(v)}
                 for k, st, ep, n, v in rows],
            )  # fmt: skip
        self.events.runs_changed.emit(run_id)

    def metrics(
        self, run_id: int, kind: str | None = None
    ) -> list[tuple[str, int, int, str, float]]:
        q = select(S.Metric.kind, S.Metric.step, S.Metric.epoch, S.Metric.name, S.Metric.value)
        q = q.where(S.Metric.run_id == run_id).order_by(S.Metric.id)
        if kind is not None:
            q = q.where(S.Metric.kind == kind)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def replace_predictions(self, run_id: int, rows: Sequence[dict]) -> int:
        """Replace a run's stored predictions. Rows: image_id, class_id, kind, bbox,
        polygons (optional), rle (optional), score."""
        payload = [
            {
                "run_id": run_id, "image_id": r["image_id"], "class_id": r["class_id"],
                "kind": r.get("kind", "box"), "x": float(r["bbox"][0]), "y": float(r["bbox"][1]),
                "w": float(r["bbox"][2]), "h": float(r["bbox"][3]),
                "polygons": json.dumps(r["polygons"]) if r.get("polygons") else None,
                "rle": json.dumps(r["rle"]) if r.get("rle") else None, "score": float(r["score"]),
            }
            for r in rows
        ]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(delete(S.Prediction).where(S.Prediction.run_id == run_id))
            if payload:
                conn.execute(insert(S.Prediction), payload)
        self.events.runs_changed.emit(run_id)
        return len(payload)

    def predictions(self, run_id: int, image_ids: Sequence[int] | None = None) -> list[dict]:
        t = S.Prediction
        q = select(t.image_id, t.class_id, t.kind, t.x, t.y, t.w, t.h, t.polygons, t.rle, t.score)
        q = q.where(t.run_id == run_id)
        if image_ids is not None:
            q = q.where(t.image_id.in_(list(image_ids)))
        with self.engine.connect() as conn:
            return [
                {"image_id": r[0], "class_id": r[1], "kind": r[2], "bbox": (r[3], r[4], r[5], r[6]),
                 "polygons": json.loads(r[7]) if r[7] else None,
                 "rle": json.loads(r[8]) if r[8] else None, "score": r[9]}
                for r in conn.execute(q)
            ]  # fmt: skip

    def set_current_model(self, run_id: int | None) -> None:
        self.set_setting("current_model", run_id)
        self.events.runs_changed.emit(run_id)

    def current_model(self) -> int | None:
        return self.get_setting("current_model")


# --- validation shared by edits and imports -----------------------------------------------


def validate_bbox(bbox: Sequence[float]) -> None:
    if len(bbox) != 4:
        raise StudioError(f"a box needs 4 numbers (x, y, w, h), got {len(bbox)}")
    if not all(map(_finite, bbox)):
        raise StudioError(f"box {tuple(bbox)} has a non-finite coordinate")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise StudioError(f"box {tuple(bbox)} has zero or negative size")


def validate_polygons(polygons: Sequence[Sequence[float]]) -> None:
    if not polygons:
        raise StudioError("a polygon needs at least one part")
    for part in polygons:
        if len(part) % 2 or len(part) < 6:
            raise StudioError(
                f"a polygon part needs at least 3 points (x, y pairs), got {len(part)} numbers"
            )
        if not all(map(_finite, part)):
            raise StudioError("a polygon has a non-finite coordinate")


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


def make_annotation_row(
    image_id: int,
    class_id: int,
    kind: str,
    bbox: BBox | None = None,
    polygons: list[list[float]] | None = None,
    rle: dict | None = None,
    source: str = "manual",
    score: float | None = None,
    iscrowd: bool = False,
) -> dict:
    """A validated row for the annotations table (without id)."""
    if kind not in KINDS:
        raise StudioError(f"unknown shape kind {kind!r}; use one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise StudioError(f"unknown source {source!r}")
    poly_json = rle_json = None
    if kind == "polygon":
        if polygons is None:
            raise StudioError("a polygon needs points")
        polygons = [list(map(float, p)) for p in polygons]
        validate_polygons(polygons)
        bbox = bbox_of_polygons(polygons)
        poly_json = json.dumps(polygons)
    elif kind == "mask":
        if rle is None or bbox is None:
            raise StudioError("a mask needs its RLE and its box")
        rle_json = json.dumps(rle)
    if bbox is None:
        raise StudioError("a box needs x, y, w, h")
    validate_bbox(bbox)
    now = S.utcnow()
    return {
        "image_id": image_id, "class_id": class_id, "kind": kind,
        "x": float(bbox[0]), "y": float(bbox[1]), "w": float(bbox[2]), "h": float(bbox[3]),
        "polygons": poly_json, "rle": rle_json, "iscrowd": bool(iscrowd), "source": source,
        "score": score, "created_at": now, "updated_at": now,
    }  # fmt: skip

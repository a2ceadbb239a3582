"""Annotations (the annotations table): the shapes users draw or import.

The row-level writes here are not undoable by themselves; the undo commands call them
and keep what they need to reverse them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from studio.core import schema as S
from studio.core.events import ProjectEvents
from studio.core.records import NO_ATTRIBUTES, AnnotationRecord, Attributes, Polygons
from studio.core.store.rows import chunks

ANNOTATION_COLUMNS = (
    S.Annotation.id, S.Annotation.image_id, S.Annotation.class_id, S.Annotation.kind,
    S.Annotation.x, S.Annotation.y, S.Annotation.w, S.Annotation.h, S.Annotation.polygons,
    S.Annotation.rle, S.Annotation.iscrowd, S.Annotation.source, S.Annotation.score,
    S.Annotation.area, S.Annotation.occluded, S.Annotation.truncated, S.Annotation.difficult,
    S.Annotation.group_id, S.Annotation.notes,
)  # fmt: skip
# Column order of the tuples `insert_values` takes.
INSERT_COLUMNS = (
    "image_id", "class_id", "kind", "x", "y", "w", "h", "polygons", "rle", "iscrowd",
    "source", "score", "created_at", "updated_at", "area", "occluded", "truncated",
    "difficult", "group_id", "notes",
)  # fmt: skip
# Columns whose change makes an imported area stale.
GEOMETRY_COLUMNS = frozenset({"x", "y", "w", "h", "polygons", "rle", "kind"})
_INSERT_SQL = (
    f"INSERT INTO annotations ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))})"
)
# The canvas reads an image of thousands of shapes a page per event-loop turn: building
# and compiling the SQLAlchemy statement each time cost ~0.6 ms of a ~2.5 ms page, so
# the pages' statements are fixed SQL (same columns, same order as ANNOTATION_COLUMNS).
_SELECT_SQL = f"SELECT {', '.join(c.name for c in ANNOTATION_COLUMNS)} FROM annotations"
_PAGE_SQL = f"{_SELECT_SQL} WHERE image_id = ? AND id > ? ORDER BY id LIMIT ?"
_PAGE_IN_BOX_SQL = (
    f"{_SELECT_SQL} WHERE image_id = ? AND id > ? "
    "AND x <= ? AND x + w >= ? AND y <= ? AND y + h >= ? ORDER BY id"
)


_PARSE = object()  # annotation_record's default: parse the row's polygons itself


def annotation_record(r: Sequence, polygons: Polygons | None | object = _PARSE) -> AnnotationRecord:
    """An `AnnotationRecord` from a row of `ANNOTATION_COLUMNS`; `polygons`: the row's
    polygons already parsed (see `annotation_records`)."""
    if polygons is _PARSE:
        polygons = json.loads(r[8]) if r[8] else None
    return AnnotationRecord(
        id=r[0], image_id=r[1], class_id=r[2], kind=r[3], bbox=(r[4], r[5], r[6], r[7]),
        polygons=polygons, rle=json.loads(r[9]) if r[9] else None,
        iscrowd=bool(r[10]), source=r[11], score=r[12], area=r[13],
        attributes=attributes_of(r[14:19]),
    )  # fmt: skip


def annotation_records(rows: Sequence[Sequence]) -> list[AnnotationRecord]:
    """Records of rows of `ANNOTATION_COLUMNS`, their polygons parsed by one
    `json.loads` (per-call overhead was a fifth of reading 3,000 polygons)."""
    texts = [r[8] for r in rows if r[8]]
    parsed = iter(json.loads(f"[{','.join(texts)}]") if texts else ())
    return [annotation_record(r, next(parsed) if r[8] else None) for r in rows]


def attributes_of(r: Sequence) -> Attributes:
    """`Attributes` from (occluded, truncated, difficult, group_id, notes) columns; the
    shared default object when nothing is set (most shapes), to save memory."""
    if not (r[0] or r[1] or r[2]) and r[3] is None and not r[4]:
        return NO_ATTRIBUTES
    return Attributes(bool(r[0]), bool(r[1]), bool(r[2]), r[3], r[4] or "")


def attribute_values(a: Attributes) -> tuple:
    """Column values (occluded, truncated, difficult, group_id, notes) of `a`, as the
    database stores them: 0/1 flags, NULL for no group and no notes."""
    return (int(a.occluded), int(a.truncated), int(a.difficult), a.group_id, a.notes or None)


class AnnotationRepo:
    """Reads and writes annotations. Each write emits `annotation_rows_changed` with the
    ids of the rows it touched, then `annotations_changed` with the ids of the images
    whose shapes changed (see `ProjectEvents`)."""

    def __init__(self, engine: Engine, events: ProjectEvents):
        self.engine = engine
        self.events = events

    def list(
        self, image_ids: Sequence[int] | None = None, ids: Sequence[int] | None = None
    ) -> list[AnnotationRecord]:
        """Annotations ordered by image id then id, optionally of some images or ids."""
        q = select(*ANNOTATION_COLUMNS).order_by(S.Annotation.image_id, S.Annotation.id)
        if image_ids is not None:
            q = q.where(S.Annotation.image_id.in_(list(image_ids)))
        if ids is not None:
            q = q.where(S.Annotation.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return annotation_records(rows)

    def page(self, image_id: int, after_id: int, limit: int) -> list[AnnotationRecord]:
        """At most `limit` annotations of one image with ids above `after_id`, in id
        order: an image of thousands of shapes read a page at a time (the canvas shows
        the first page at once and reads the rest between frames)."""
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(_PAGE_SQL, (image_id, after_id, limit)).all()
        return annotation_records(rows)

    def page_in_box(
        self, image_id: int, after_id: int, box: tuple[float, float, float, float]
    ) -> list[AnnotationRecord]:
        """Annotations of one image with ids above `after_id` whose box meets `box`
        (x, y, w, h in image pixels; touching counts), in id order: what lies under the
        cursor among the rows the canvas has not read yet, without reading the rest."""
        x, y, w, h = box
        params = (image_id, after_id, x + w, x, y + h, y)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(_PAGE_IN_BOX_SQL, params).all()
        return annotation_records(rows)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(S.Annotation)).scalar_one()

    def image_class_pairs(self) -> list[tuple[int, int]]:
        """Distinct (image id, class id) pairs: which classes each image contains."""
        with self.engine.connect() as conn:
            q = select(S.Annotation.image_id, S.Annotation.class_id).distinct()
            return [tuple(r) for r in conn.execute(q)]

    def rows(self, ann_ids: Sequence[int]) -> list[dict]:
        """Full rows (every column) of the given annotations."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(S.Annotation.__table__).where(S.Annotation.id.in_(list(ann_ids)))
            ).mappings()
            return [dict(r) for r in rows]

    def insert_rows(self, rows: list[dict]) -> list[int]:
        """Insert rows (dicts of annotation columns, with or without "id") in one
        transaction; returns their ids, in order. One executemany per set of columns:
        a paste or an undone delete of 3,000 shapes took 2-3 s row by row."""
        ids: list[int] = [0] * len(rows)
        with self.engine.begin() as conn:
            for keys, idx in _by_columns(rows).items():
                batch = [rows[i] for i in idx]
                if "id" in keys and all(r["id"] is not None for r in batch):
                    conn.execute(insert(S.Annotation), batch)
                    new = [r["id"] for r in batch]
                elif conn.dialect.insert_executemany_returning_sort_by_parameter_order:
                    q = insert(S.Annotation).returning(
                        S.Annotation.id, sort_by_parameter_order=True
                    )
                    new = list(conn.execute(q, batch).scalars())
                else:  # SQLite before 3.35 has no RETURNING: one row at a time
                    new = [
                        conn.execute(insert(S.Annotation).values(**r)).inserted_primary_key[0]
                        for r in batch
                    ]
                for i, ann_id in zip(idx, new, strict=True):
                    ids[i] = ann_id
        self._changed(ids, {r["image_id"] for r in rows})
        return ids

    def delete_rows(self, ann_ids: Sequence[int]) -> list[dict]:
        """Delete annotations; returns their full rows (to re-insert on undo)."""
        rows = self.rows(ann_ids)
        with self.engine.begin() as conn:
            conn.execute(delete(S.Annotation).where(S.Annotation.id.in_(list(ann_ids))))
        self._changed([r["id"] for r in rows], {r["image_id"] for r in rows})
        return rows

    def update_rows(self, changes: dict[int, dict]) -> None:
        """Set columns per annotation id ({id: {column: value}}), and updated_at. A
        change of geometry that does not set `area` clears it (an imported area describes
        the imported shape only). One executemany per set of columns: a drag of 3,000
        selected shapes took 2-7 s statement by statement."""
        now = S.utcnow()
        rows = []
        for ann_id, fields in changes.items():
            if "area" not in fields and not GEOMETRY_COLUMNS.isdisjoint(fields):
                fields = {**fields, "area": None}
            # Parameters named apart from the columns, which SQLAlchemy reserves.
            rows.append(
                {f"v_{k}": v for k, v in fields.items()} | {"v_updated_at": now, "_id": ann_id}
            )
        with self.engine.begin() as conn:
            for keys, idx in _by_columns(rows).items():
                cols = [k.removeprefix("v_") for k in keys if k != "_id"]
                q = (
                    update(S.Annotation)
                    .where(S.Annotation.id == bindparam("_id"))
                    .values({c: bindparam(f"v_{c}") for c in cols})
                )
                conn.execute(q, [rows[i] for i in idx])
            image_ids: set[int] = set()
            for part in chunks(list(changes)):
                q = select(S.Annotation.image_id).where(S.Annotation.id.in_(part)).distinct()
                image_ids.update(conn.execute(q).scalars())
        self._changed(list(changes), image_ids)

    def _changed(self, ann_ids: Sequence[int], image_ids: set[int]) -> None:
        """Tell listeners which rows (annotation ids) and images a committed write
        touched: the rows first, so that a listener can refresh just those."""
        self.events.annotation_rows_changed.emit(sorted(ann_ids))
        self.events.annotations_changed.emit(sorted(image_ids))

    @staticmethod
    def insert_values(conn: Connection, values: list[tuple]) -> None:
        """Bulk-insert tuples in `INSERT_COLUMNS` order inside the caller's transaction
        (imports: a million rows, so plain executemany with no per-row SQLAlchemy work).
        No event: the caller emits once it has committed."""
        if values:
            conn.exec_driver_sql(_INSERT_SQL, values)


def _by_columns(rows: Sequence[dict]) -> dict[tuple[str, ...], list[int]]:
    """Indices of `rows` grouped by the columns each sets (sorted), for executemany."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(tuple(sorted(row)), []).append(i)
    return groups

"""Image listing for the browser: filters, sort orders and per-option counts.

Everything here is a handful of set-based SQL statements, whatever the project size: the
browser lists 100,000 images by asking for their ids in one query and then the rows it
shows, a page at a time. No ORM objects, no per-image Python loops over the database.

Filters combine with AND between kinds and OR within one kind:

* ``classes``: ids; images with at least one shape of any of these classes;
* ``status`` / ``split``: one value or several;
* ``source``: ``"manual"`` (has shapes a person drew or imported), ``"predicted"`` (has
  predicted shapes, or predictions of the project's current model), ``"unlabelled"``
  (no shapes at all);
* ``text``: case-insensitive substring of the image's stored path.

The counts shown next to each filter option are *facet* counts: how many images the
listing would hold with that option chosen and every *other* filter kept, which is what
a user wants to know before clicking it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    true,
)

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.kinds import ImageStatus, Source
from studio.core.records import SPLITS, STATUSES

if TYPE_CHECKING:
    from studio.core.project import Project

SORTS = ("name", "date", "objects")
SOURCE_FILTERS = ("manual", "predicted", "unlabelled")
_HUMAN_SOURCES = (Source.MANUAL.value, Source.IMPORTED.value)

_img = S.Image.__table__
_ann = S.Annotation.__table__
_pred = S.Prediction.__table__


@dataclass(frozen=True, slots=True)
class BrowseRow:
    """What the browser shows for one image. Cheap to make: a page of them is built
    for every screenful scrolled, so paths stay strings until a thumbnail needs one."""

    id: int
    path: str  # as stored: relative to the project folder (POSIX) or absolute
    project_dir: Path
    width: int
    height: int
    status: str
    split: str
    checksum: str
    n_objects: int

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def abs_path(self) -> Path:
        p = Path(self.path)
        return p if p.is_absolute() else self.project_dir / p


def _as_tuple(value: str | Sequence[str] | None, allowed: Sequence[str], what: str):
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise StudioError(f"unknown {what} {bad[0]!r}; use one of {', '.join(allowed)}")
    return values


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Filters:
    """The WHERE clauses of one listing, by filter kind, so facets can leave one out."""

    def __init__(self, project: Project, classes, status, split, source, text) -> None:
        self.clauses: dict[str, ColumnElement[bool]] = {}
        self.current_model: int | None = project.current_model()
        if classes is not None:
            self.clauses["classes"] = self.has_class(list(classes))
        if (st := _as_tuple(status, STATUSES, "status")) is not None:
            self.clauses["status"] = _img.c.status.in_(st)
        if (sp := _as_tuple(split, SPLITS, "split")) is not None:
            self.clauses["split"] = _img.c.split.in_(sp)
        if (src := _as_tuple(source, SOURCE_FILTERS, "source")) is not None:
            self.clauses["source"] = or_(*(self.source_clause(s) for s in src)) if src else false()
        if text:
            pattern = f"%{_escape_like(text.strip())}%"
            self.clauses["text"] = _img.c.path.like(pattern, escape="\\")

    @staticmethod
    def has_class(class_ids: list[int]) -> ColumnElement[bool]:
        if not class_ids:
            return false()
        # IN (subquery) lets SQLite walk ix_annotations_class_id once and build a set,
        # rather than probing annotations for each of 100,000 images.
        return _img.c.id.in_(select(_ann.c.image_id).where(_ann.c.class_id.in_(class_ids)))

    def source_clause(self, source: str) -> ColumnElement[bool]:
        if source == "manual":
            return _img.c.id.in_(select(_ann.c.image_id).where(_ann.c.source.in_(_HUMAN_SOURCES)))
        if source == "predicted":
            clause = _img.c.id.in_(
                select(_ann.c.image_id).where(_ann.c.source == Source.PREDICTED.value)
            )
            if self.current_model is not None:
                clause = or_(
                    clause,
                    _img.c.id.in_(
                        select(_pred.c.image_id).where(_pred.c.run_id == self.current_model)
                    ),
                )
            return clause
        # unlabelled: one probe of ix_annotations_image_id per image
        return ~exists().where(_ann.c.image_id == _img.c.id)

    def where(self, leave_out: str | None = None) -> ColumnElement[bool]:
        parts = [c for k, c in self.clauses.items() if k != leave_out]
        return and_(true(), *parts)


def _n_objects():
    return (
        select(func.count()).where(_ann.c.image_id == _img.c.id).correlate(_img).scalar_subquery()
    )


def _fetch(conn, stmt) -> list[tuple]:
    """Run a Core statement on the raw sqlite3 connection.

    For 100,000-row id lists SQLAlchemy's per-row result processing costs as much as
    the query itself (about 40 ms); these statements return plain ints and strings, so
    the driver's tuples are all we need.
    """
    comp = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = [comp.params[k] for k in comp.positiontup or ()]
    return conn.connection.driver_connection.execute(str(comp), params).fetchall()


def query_images(
    project: Project,
    *,
    classes: Sequence[int] | None = None,
    status: str | Sequence[str] | None = None,
    split: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    text: str | None = None,
    sort: str = "name",
    descending: bool = False,
    ids: Sequence[int] | None = None,
) -> list[int]:
    """Ids of the images that pass the filters, in the requested order.

    `sort` is "name" (stored path), "date" (date added) or "objects" (number of shapes,
    ties by path); `descending` gives exactly the reverse order. `ids`: only among these
    (a few hundred at most: one bound parameter each).
    """
    if sort not in SORTS:
        raise StudioError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    f = _Filters(project, classes, status, split, source, text)
    q: Select[Any] = select(_img.c.id).where(f.where())
    if ids is not None:
        q = q.where(_img.c.id.in_(list(ids)))
    with project.engine.connect() as conn:
        if sort == "date":
            # Rows are inserted in import order, so id breaks ties among images added
            # in the same second the way the user added them.
            ids = [r[0] for r in _fetch(conn, q.order_by(_img.c.created_at, _img.c.id))]
        else:
            ids = [r[0] for r in _fetch(conn, q.order_by(_img.c.path))]
        if sort == "objects":
            # One pass over the covering image_id index and a stable sort in Python is
            # several times cheaper than a correlated count per image in ORDER BY.
            per_image = dict(
                _fetch(conn, select(_ann.c.image_id, func.count()).group_by(_ann.c.image_id))
            )
            ids.sort(key=lambda i: per_image.get(i, 0))
    if descending:
        ids.reverse()
    return ids


def filter_counts(
    project: Project,
    *,
    classes: Sequence[int] | None = None,
    status: str | Sequence[str] | None = None,
    split: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """Facet counts for the filter options, given the current filters.

    Returns ``{"total": n, "classes": {class_id: n}, "status": {s: n}, "split": {s: n},
    "source": {s: n}}`` where each number counts *images*, and each facet is counted with
    every filter applied except its own (``total`` applies them all). Every status,
    split, source and class appears, with 0 where no image matches.
    """
    f = _Filters(project, classes, status, split, source, text)

    def count_where(leave_out: str | None) -> Select[Any]:
        return select(func.count()).select_from(_img).where(f.where(leave_out))

    with project.engine.connect() as conn:
        total = _fetch(conn, count_where(None))[0][0]
        by_status = dict(
            _fetch(
                conn,
                select(_img.c.status, func.count())
                .where(f.where("status"))
                .group_by(_img.c.status),
            )
        )
        by_split = dict(
            _fetch(
                conn,
                select(_img.c.split, func.count()).where(f.where("split")).group_by(_img.c.split),
            )
        )
        by_class = dict(_fetch(conn, _class_counts_query(f)))
        by_source = _source_counts(conn, f, count_where("source"))
        class_ids = [r[0] for r in _fetch(conn, select(S.LabelClass.id))]
    return {
        "total": total,
        "classes": {cid: by_class.get(cid, 0) for cid in class_ids},
        "status": {s: by_status.get(s, 0) for s in STATUSES},
        "split": {s: by_split.get(s, 0) for s in SPLITS},
        "source": by_source,
    }


def _restrict(f: _Filters, leave_out: str, image_col) -> ColumnElement[bool]:
    """`image_col` among the images passing every filter but `leave_out`; TRUE when no
    other filter is set, so the query reads annotations alone."""
    if any(k != leave_out for k in f.clauses):
        return image_col.in_(select(_img.c.id).where(f.where(leave_out)))
    return true()


def _class_counts_query(f: _Filters) -> Select[Any]:
    # "+ 0" keeps SQLite from walking ix_annotations_class_id for the GROUP BY, which
    # costs a random table read per shape; one sequential scan is 2-3x faster.
    return (
        select(_ann.c.class_id, func.count(func.distinct(_ann.c.image_id)))
        .where(_restrict(f, "classes", _ann.c.image_id))
        .group_by(_ann.c.class_id + 0)
    )


def _source_counts(conn, f: _Filters, count_all: Select[Any]) -> dict[str, int]:
    # One pass over annotations gives, per image, whether it has human and predicted
    # shapes; the images absent from it are the unlabelled ones.
    per_image = (
        select(
            _ann.c.image_id.label("image_id"),
            func.max(case((_ann.c.source.in_(_HUMAN_SOURCES), 1), else_=0)).label("human"),
            func.max(case((_ann.c.source == Source.PREDICTED.value, 1), else_=0)).label("pred"),
        )
        .where(_restrict(f, "source", _ann.c.image_id))
        .group_by(_ann.c.image_id)
        .subquery()
    )
    human, pred, labelled = _fetch(
        conn,
        select(func.sum(per_image.c.human), func.sum(per_image.c.pred), func.count()),
    )[0]
    if f.current_model is not None:
        # Stored predictions of the current model count too: a separate, rare query.
        pred = _fetch(
            conn,
            select(func.count())
            .select_from(_img)
            .where(f.where("source"), f.source_clause("predicted")),
        )[0][0]
    unlabelled = _fetch(conn, count_all)[0][0] - labelled
    return {"manual": human or 0, "predicted": pred or 0, "unlabelled": unlabelled}


# Plain SQL: the grid asks for a page on every screenful scrolled, and compiling the
# equivalent Core statement costs more than running it.
_ROWS_SQL = (
    "SELECT i.id, i.path, i.width, i.height, i.status, i.split, i.checksum, "
    "(SELECT COUNT(*) FROM annotations a WHERE a.image_id = i.id) "
    "FROM images i WHERE i.id IN ({})"
)


def image_rows(project: Project, image_ids: Sequence[int]) -> dict[int, BrowseRow]:
    """The browser's row data for some images (one page of the grid), in one query."""
    ids = [int(i) for i in image_ids]
    if not ids:
        return {}
    root = project.path
    out: dict[int, BrowseRow] = {}
    with project.engine.connect() as conn:
        cur = conn.connection.driver_connection
        for k in range(0, len(ids), 900):  # below SQLite's host-parameter limit
            chunk = ids[k : k + 900]
            sql = _ROWS_SQL.format(",".join("?" * len(chunk)))
            for r in cur.execute(sql, chunk):
                out[r[0]] = BrowseRow(r[0], r[1], root, *r[2:])
    return out


def next_unlabelled(project: Project, order: Sequence[int], current: int | None) -> int | None:
    """The image to label after `current`, walking `order` (the browser's list) forward
    and wrapping around: the first "new" image without shapes, else the first "new" one.
    None when every other image in `order` is past "new"."""
    with project.engine.connect() as conn:
        rows = conn.execute(
            select(_img.c.id, exists().where(_ann.c.image_id == _img.c.id)).where(
                _img.c.status == ImageStatus.NEW.value
            )
        ).all()
    new = {r[0] for r in rows}
    empty = {r[0] for r in rows if not r[1]}
    if not order:
        return None
    start = order.index(current) + 1 if current in order else 0
    walk = [*order[start:], *order[:start]]
    for wanted in (empty, new):
        found = next((i for i in walk if i in wanted and i != current), None)
        if found is not None:
            return found
    return None


def done_count(project: Project) -> tuple[int, int]:
    """(images marked done, all images), for the status bar."""
    with project.engine.connect() as conn:
        done, total = conn.execute(
            select(
                func.sum(case((_img.c.status == ImageStatus.DONE.value, 1), else_=0)), func.count()
            )
        ).one()
    return done or 0, total


__all__ = [
    "SORTS",
    "SOURCE_FILTERS",
    "BrowseRow",
    "done_count",
    "filter_counts",
    "image_rows",
    "next_unlabelled",
    "query_images",
]

"""Images (the images table): listing, status and split edits, deletion with the
annotations and predictions that hang on an image, and bulk inserts for imports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, select, update

from studio.core import schema as S
from studio.core.errors import StudioError
from studio.core.events import ProjectEvents
from studio.core.kinds import Split
from studio.core.records import ImageRecord
from studio.core.store.folder import ProjectFolder
from studio.core.store.rows import full_rows, reinsert

IMAGE_COLUMNS = (
    S.Image.id, S.Image.path, S.Image.width, S.Image.height, S.Image.orientation,
    S.Image.checksum, S.Image.file_size, S.Image.status, S.Image.split,
)  # fmt: skip
# The columns a command may set on many images at once.
EDITABLE_FIELDS = ("status", "split")


def image_record(row: Sequence, folder: ProjectFolder) -> ImageRecord:
    """An `ImageRecord` from a row of `IMAGE_COLUMNS`."""
    return ImageRecord(
        id=row[0], path=row[1], abs_path=folder.abs_path(row[1]), width=row[2],
        height=row[3], orientation=row[4], checksum=row[5], file_size=row[6],
        status=row[7], split=row[8],
    )  # fmt: skip


@dataclass
class DeletedImages:
    """Deleted image rows with their annotations and predictions, to restore on undo."""

    images: list[dict]
    annotations: list[dict]
    predictions: list[dict]


class ImageRepo:
    """Reads and writes images and emits `images_changed`."""

    def __init__(self, engine: Engine, events: ProjectEvents, folder: ProjectFolder):
        self.engine = engine
        self.events = events
        self.folder = folder

    # --- reading ---------------------------------------------------------------------

    def list(
        self,
        split: str | None = None,
        status: str | None = None,
        ids: Sequence[int] | None = None,
    ) -> list[ImageRecord]:
        """Images ordered by path, optionally of one split, one status, or given ids."""
        q = select(*IMAGE_COLUMNS).order_by(S.Image.path)
        if split is not None:
            q = q.where(S.Image.split == split)
        if status is not None:
            q = q.where(S.Image.status == status)
        if ids is not None:
            q = q.where(S.Image.id.in_(list(ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [image_record(r, self.folder) for r in rows]

    def get(self, image_id: int) -> ImageRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(*IMAGE_COLUMNS).where(S.Image.id == image_id)).first()
        if row is None:
            raise StudioError(f"image {image_id} is not in the project")
        return image_record(row, self.folder)

    def ids(self) -> list[int]:
        """All image ids, ordered by path."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(S.Image.id).order_by(S.Image.path)).scalars())

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(S.Image)).scalar_one()

    def known_paths_and_checksums(self) -> tuple[dict[str, int], dict[str, int]]:
        """{stored path: id} and {checksum: id}, for imports to skip what is here."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.Image.id, S.Image.path, S.Image.checksum)).all()
        return {r[1]: r[0] for r in rows}, {r[2]: r[0] for r in rows}

    def splits(self) -> dict[int, str]:
        """{image id: split} of every image."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(S.Image.id, S.Image.split)).all())

    # --- status and split (the undo commands call these) ---------------------------------

    def set_field(self, ids: Sequence[int], field: str, value: str) -> dict[int, str]:
        """Set one of `EDITABLE_FIELDS` on the given images (and their updated_at);
        returns the old {id: value}, read in the same transaction."""
        assert field in EDITABLE_FIELDS
        col = getattr(S.Image, field)
        with self.engine.begin() as conn:
            old = dict(conn.execute(select(S.Image.id, col).where(S.Image.id.in_(ids))).all())
            conn.execute(
                update(S.Image)
                .where(S.Image.id.in_(ids))
                .values({field: value, "updated_at": S.utcnow()})
            )
        self.events.images_changed.emit(ids)
        return old

    def restore_field(self, old: dict[int, str], field: str, ids: Sequence[int]) -> None:
        """Write back the {id: value} that `set_field` returned for `ids`."""
        with self.engine.begin() as conn:
            for value in set(old.values()):
                same = [i for i, v in old.items() if v == value]
                conn.execute(update(S.Image).where(S.Image.id.in_(same)).values({field: value}))
        self.events.images_changed.emit(list(ids))

    def write_splits(self, splits: dict[int, str]) -> None:
        """Set many images' splits at once ({id: split})."""
        with self.engine.begin() as conn:
            for split in Split:
                ids = [i for i, s in splits.items() if s == split]
                if ids:
                    # A temporary table would be faster still; executemany is fine at 100k.
                    conn.exec_driver_sql(
                        "UPDATE images SET split = ? WHERE id = ?", [(split.value, i) for i in ids]
                    )
        self.events.images_changed.emit(None)

    # --- deletion ----------------------------------------------------------------------

    def delete(self, ids: Sequence[int]) -> DeletedImages:
        """Remove images with their annotations and predictions (files stay on disk);
        returns the rows for undo."""
        ids = list(ids)
        with self.engine.begin() as conn:
            deleted = DeletedImages(
                images=full_rows(conn, S.Image, S.Image.id.in_(ids)),
                annotations=full_rows(conn, S.Annotation, S.Annotation.image_id.in_(ids)),
                predictions=full_rows(conn, S.Prediction, S.Prediction.image_id.in_(ids)),
            )
            conn.execute(delete(S.Image).where(S.Image.id.in_(ids)))
        self.events.images_changed.emit(ids)
        return deleted

    def restore(self, deleted: DeletedImages, ids: list[int]) -> None:
        """Undo `delete` of `ids`."""
        with self.engine.begin() as conn:
            for model, rows in (
                (S.Image, deleted.images),
                (S.Annotation, deleted.annotations),
                (S.Prediction, deleted.predictions),
            ):
                reinsert(conn, model, rows)
        self.events.images_changed.emit(ids)
        self.events.annotations_changed.emit(ids)

    # --- bulk inserts for imports --------------------------------------------------------

    @staticmethod
    def insert_many(conn: Connection, rows: list[dict]) -> int | None:
        """Insert image rows (dicts of image columns, all with the same keys) inside the
        caller's transaction; returns the id of the first, or None for no rows. The ids
        of the others follow it consecutively (one writer, one transaction,
        AUTOINCREMENT key). No event: the caller emits once it has committed.

        executemany through the DB-API cursor: SQLAlchemy's per-row work is the
        bottleneck for a hundred thousand rows, SQLite itself is not."""
        if not rows:
            return None
        cols = list(rows[0])
        sql = f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        conn.exec_driver_sql(sql, [tuple(r[c] for c in cols) for r in rows])
        return conn.execute(select(S.Image.id).where(S.Image.path == rows[0]["path"])).scalar_one()

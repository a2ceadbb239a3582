"""The project database's tables (SQLAlchemy 2 typed ORM).

Geometry columns hold pixels of the image as displayed (after EXIF orientation), as
floats. Every schema change needs an Alembic revision under `migrations/versions/`;
`tests/core/test_migrations.py` fails when the models and the migrations disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    orientation: Mapped[int] = mapped_column(Integer, default=1)
    checksum: Mapped[str] = mapped_column(String, index=True)
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String, default="new", index=True)
    split: Mapped[str] = mapped_column(String, default="train", index=True)
    created_at: Mapped[str] = mapped_column(String, default=utcnow)
    updated_at: Mapped[str] = mapped_column(String, default=utcnow)

    # Checks spelt with OR, not IN (...): SQLite rebuilds an IN list's ephemeral table for
    # every inserted row, which tripled the cost of a million-row import.
    __table_args__ = (
        CheckConstraint(
            "status = 'new' OR status = 'in_progress' OR status = 'done' OR status = 'needs_review'",
            name="status",
        ),
        CheckConstraint("split = 'train' OR split = 'val' OR split = 'test'", name="split"),
        # Ids are never reused: undo re-inserts deleted rows with their old ids.
        {"sqlite_autoincrement": True},
    )


class LabelClass(Base):
    __tablename__ = "label_classes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    color: Mapped[str] = mapped_column(String)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String, default=utcnow)
    # The key (1-9) that picks this class; NULL: none. Kept per class (migration 0004).
    hotkey: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Annotation(Base):
    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    # JSON text: a list of flat [x0, y0, x1, y1, ...] lists for polygons, a COCO RLE
    # dict for masks. Kept as text so the database stays readable by any SQLite tool.
    polygons: Mapped[str | None] = mapped_column(Text, nullable=True)
    rle: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Square pixels, as an imported file gave it (COCO `area`); NULL once the shape is
    # edited or when the source had none: then it is computed from the geometry.
    area: Mapped[float | None] = mapped_column(Float, nullable=True)
    iscrowd: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String, default="manual")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[str] = mapped_column(String, default=utcnow)
    updated_at: Mapped[str] = mapped_column(String, default=utcnow)
    # Attributes (migration 0005): VOC's flags, labelme's group_id, free-text notes.
    occluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    difficult: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)  # NULL: none

    __table_args__ = (
        # Covering indexes for the browser's filters, counts and "sort by objects".
        Index("ix_annotations_image_id_source", "image_id", "source"),
        Index("ix_annotations_class_id_image_id", "class_id", "image_id"),
        CheckConstraint("kind = 'box' OR kind = 'polygon' OR kind = 'mask'", name="kind"),
        CheckConstraint(
            "source = 'manual' OR source = 'imported' OR source = 'predicted'", name="source"
        ),
        {"sqlite_autoincrement": True},
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    task: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String, default="queued")
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    best_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_metric_name: Mapped[str | None] = mapped_column(String, nullable=True)
    config: Mapped[str] = mapped_column(Text, default="{}")
    dir: Mapped[str] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[str] = mapped_column(String, default=utcnow)
    finished_at: Mapped[str | None] = mapped_column(String, nullable=True)


class Metric(Base):
    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String)  # "iter" or "epoch"
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String)
    value: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_metrics_run_id_kind", "run_id", "kind"),)


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    polygons: Mapped[str | None] = mapped_column(Text, nullable=True)
    rle: Mapped[str | None] = mapped_column(Text, nullable=True)
    score: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_predictions_run_id_image_id", "run_id", "image_id"),)


class Setting(Base):
    """Per-project key/value settings (JSON values): last image, train settings, ..."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)

"""Covering indexes for the browser: (image_id, source) and (class_id, image_id).

Filter counts and "sort by number of objects" at 100,000 images read only the index.
The single-column indexes they replace are prefixes of the new ones.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_index("ix_annotations_image_id")
        batch.drop_index("ix_annotations_class_id")
        batch.create_index("ix_annotations_image_id_source", ["image_id", "source"])
        batch.create_index("ix_annotations_class_id_image_id", ["class_id", "image_id"])


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_index("ix_annotations_class_id_image_id")
        batch.drop_index("ix_annotations_image_id_source")
        batch.create_index("ix_annotations_class_id", ["class_id"])
        batch.create_index("ix_annotations_image_id", ["image_id"])

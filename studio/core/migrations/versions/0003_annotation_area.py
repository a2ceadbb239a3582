"""Annotations keep the area an imported file gave them (COCO `area`).

COCO evaluation buckets objects by `area` (small/medium/large), and COCO's files hold
the polygon's area, not the rasterised mask's pixel count. The column holds the imported
value in square pixels of the image as displayed; NULL means "compute it from the
geometry" and is what an edit of the shape writes.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy): instant on a project with millions of rows.
    op.add_column("annotations", sa.Column("area", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("area")

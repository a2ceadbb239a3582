"""Annotations carry attributes: VOC's occluded, truncated and difficult flags,
labelme's group id, and free-text notes.

The flags are NOT NULL with a server default of 0, so existing rows read as "not
flagged" without a rewrite; group_id and notes are NULL (none).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("occluded", "truncated", "difficult")


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy): instant on a project with millions of rows,
    # since SQLite stores a constant default in the schema, not in each row.
    for name in FLAGS:
        op.add_column(
            "annotations",
            sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.text("0")),
        )
    op.add_column("annotations", sa.Column("group_id", sa.Integer(), nullable=True))
    op.add_column("annotations", sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotations") as batch:
        for name in ("notes", "group_id", *reversed(FLAGS)):
            batch.drop_column(name)

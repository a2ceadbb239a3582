"""Each class keeps its own hotkey (1-9), so that merging, deleting or reordering
classes never renumbers the others.

Existing classes get keys 1-9 in the order the class list showed them (position, then
id), which is what their keys were before; the rest get none.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("label_classes", sa.Column("hotkey", sa.Integer(), nullable=True))
    conn = op.get_bind()
    ids = conn.execute(sa.text("SELECT id FROM label_classes ORDER BY position, id")).scalars()
    for key, class_id in zip(range(1, 10), list(ids), strict=False):
        conn.execute(
            sa.text("UPDATE label_classes SET hotkey = :key WHERE id = :id"),
            {"key": key, "id": class_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("label_classes") as batch:
        batch.drop_column("hotkey")

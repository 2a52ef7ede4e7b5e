"""interactions keep why a call ended unseen, and a compact timeline

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("timeline", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch_op:
        batch_op.drop_column("timeline")
        batch_op.drop_column("end_reason")

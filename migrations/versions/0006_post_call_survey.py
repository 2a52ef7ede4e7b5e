"""post-call survey: the answers on the interaction, one answer per question and call

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("survey", sa.JSON(), nullable=True))
    # Nothing wrote survey answers before this revision, so no call holds two for one question.
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_survey_responses_call_question", ["call_id", "question"])


def downgrade() -> None:
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_survey_responses_call_question", type_="unique")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("survey")

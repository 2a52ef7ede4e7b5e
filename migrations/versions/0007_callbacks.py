"""callbacks: calls back promised to customers, with their tries; the latest consent by one index seek

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:38:49.315792
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.Enum('scheduled', 'dialling', 'done', 'failed', 'refused', name='callback_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_result', sa.String(length=16), nullable=True),
    sa.Column('last_reason', sa.String(length=255), nullable=True),
    sa.Column('last_call_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by'], ['agents.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index('ix_callbacks_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_callbacks_status_due', ['status', 'due_at'], unique=False)
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_customer_purpose')
        batch_op.create_index('ix_consents_customer_purpose', ['customer_id', 'purpose', 'channel', 'at', 'id'],
                              unique=False)



def downgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_customer_purpose')
        batch_op.create_index('ix_consents_customer_purpose', ['customer_id', 'purpose', 'channel', 'at'],
                              unique=False)
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index('ix_callbacks_status_due')
        batch_op.drop_index('ix_callbacks_customer_id')

    op.drop_table('callbacks')

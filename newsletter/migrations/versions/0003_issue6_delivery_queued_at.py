"""delivery.queued_at: when a send task last took the row, so the send tick re-queues only lost work

Revision ID: issue6_delivery_queued_at
Revises: issue3_profile_embedding
Create Date: 2026-11-25
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue6_delivery_queued_at'
down_revision = 'issue3_profile_embedding'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queued_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('queued_at')

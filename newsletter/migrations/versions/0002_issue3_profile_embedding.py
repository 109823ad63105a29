"""subscriber profile vector, stored with the hash of the profile text it was computed from

Revision ID: issue3_profile_embedding
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue3_profile_embedding'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profile_embedding', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('profile_key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('profile_key')
        batch_op.drop_column('profile_embedding')

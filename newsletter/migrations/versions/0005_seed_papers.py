"""subscriber: seed papers (ids of stored papers the reader wrote or liked), learned from like saved papers; the
profile's facets, stored with the hash of the text they came from

Revision ID: seed_papers_v1
Revises: issue15_paper_feed_fields
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = 'seed_papers_v1'
down_revision = 'issue15_paper_feed_fields'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seed_paper_ids', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('profile_facets', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('profile_facets')
        batch_op.drop_column('seed_paper_ids')

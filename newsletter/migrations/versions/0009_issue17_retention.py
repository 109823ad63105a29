"""retention: edition.pruned_at, and the tallies that keep a pruned edition's figures

Revision ID: issue17_retention
Revises: issue15_message_keys
Create Date: 2026-12-08
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = 'issue17_retention'
down_revision = 'issue15_message_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('edition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pruned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table('edition_tally',
                    sa.Column('edition_id', sa.Integer(), nullable=False),
                    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
                    sa.Column('deliveries', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['edition_id'], ['edition.id']),
                    sa.PrimaryKeyConstraint('edition_id', 'status'))
    op.create_table('edition_paper_tally',
                    sa.Column('edition_id', sa.Integer(), nullable=False),
                    sa.Column('paper_id', sa.Integer(), nullable=False),
                    sa.Column('sent', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['edition_id'], ['edition.id']),
                    sa.ForeignKeyConstraint(['paper_id'], ['paper.id']),
                    sa.PrimaryKeyConstraint('edition_id', 'paper_id'))


def downgrade() -> None:
    op.drop_table('edition_paper_tally')
    op.drop_table('edition_tally')
    with op.batch_alter_table('edition', schema=None) as batch_op:
        batch_op.drop_column('pruned_at')
